"""What other programs may do with the corpus, whatever the protocol: ask (in a conversation),
list the documents, read a document or a span of it, check the index's health, and keep a
reader's verdict on an answer (qa.storage.feedback, beside the index).

The REST API (`qa.web.api`) and the MCP server (`qa.web.mcp_server`) are thin layers over
`CorpusService`; its errors carry the HTTP status they stand for. Passages and documents carry
the address where the same server serves their original file (`/corpus/<source>`, a PDF at
`#page=N`: qa.web.originals). Nothing here changes the
corpus or the index: the analysts' actions are only in the web chat's Index tab.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import anyio.to_thread

from qa.conversation import Conversation
from qa.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    QAError,
    check_text,
)
from qa.feedback import record_asked
from qa.ingest.readers import PDF_SUFFIXES
from qa.storage.feedback import MAX_TEXT, VERDICTS, FeedbackRecord, ShownPassage

if TYPE_CHECKING:
    from qa.engine import QA

MAX_FILTER_CHARS = 500
# Where the web server serves the corpus's original files and pictures of PDF pages (qa.web.originals).
FILES = "/corpus/"
PAGES = "/corpus-page/"

log = logging.getLogger("qa.web.service")

_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
# Index states in which no answer can come, whatever the request.
_NOT_READY = (IndexMissingError, IndexCorruptError, IndexMismatchError, IndexLockedError)


class ServiceError(QAError):
    """A request that cannot be served; `status` is its HTTP status."""

    status = 400


class NotFound(ServiceError):
    status = 404


class NotReady(ServiceError):
    status = 503


def check_filters(
    docs: Sequence[str] | str | None,
    author: str | None,
    date_from: str | None,
    date_to: str | None,
    labels: tuple[str, str] = ("date_from", "date_to"),
) -> dict[str, Any]:
    """The filters as `QA.ask` takes them: blanks dropped, dates checked (QAError naming the field)."""
    if isinstance(docs, str):
        docs = [docs]
    doc_ids = [d for d in (docs or []) if isinstance(d, str) and d.strip()]
    dates: dict[str, str | None] = {}
    for (name, value), label in zip((("date_from", date_from), ("date_to", date_to)), labels):
        value = (value or "").strip()
        if value and not _DATE.match(value):
            raise QAError(f"{label} must look like 2020, 2020-12 or 2020-12-08 (got {value!r})")
        dates[name] = value or None
    return {"doc": doc_ids or None, "author": (author or "").strip() or None, **dates}


def is_pdf(source: str) -> bool:
    return PurePosixPath(source).suffix.lower() in PDF_SUFFIXES


def original_url(source: str, page: int | None = None) -> str:
    """Where the server serves a document's original file (at `page`, for a PDF), from its root."""
    return FILES + quote(source) + (f"#page={int(page)}" if page else "")


def with_links(answer: dict[str, Any]) -> dict[str, Any]:
    """`qa ask --json` with each passage's `url`: its original file, a PDF at the passage's page."""
    for passage in answer.get("passages", ()):
        source = passage.get("source", "")
        passage["url"] = original_url(source, passage.get("page") if is_pdf(source) else None)
    return answer


class CorpusService:
    """The read-only operations on an open index; `ask_async` answers at most `concurrency` at once."""

    def __init__(self, engine: QA, concurrency: int = 4) -> None:
        self.engine = engine
        # Requests wait for a slot without holding a worker thread, so a flood of API or MCP
        # questions cannot take the threads the web chat's handlers run in.
        self._answering = anyio.CapacityLimiter(max(1, concurrency))

    async def ask_async(self, question: str, k: int = 5, mode: str = "hybrid", **options: Any) -> dict[str, Any]:
        """`ask` in a worker thread, once one of the `concurrency` slots is free."""
        call = functools.partial(self.ask, question, k, mode, **options)
        return await anyio.to_thread.run_sync(call, limiter=self._answering)

    def ask(
        self,
        question: str,
        k: int = 5,
        mode: str = "hybrid",
        *,
        doc: Sequence[str] | str | None = None,
        author: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        history: Iterable[object] = (),
        channel: str = "api",
    ) -> dict[str, Any]:
        """The answer as `qa ask --json` prints it; `history` holds the earlier questions, oldest first.

        The question is recorded as asked (QA_FEEDBACK): `channel` says through what (api, mcp)."""
        with _statuses():
            filters = check_filters(doc, author, date_from, date_to)
            conversation = Conversation.from_history(self.engine, history or ())
            answer = conversation.ask(self.engine, question, k=k, mode=mode, **filters)
            record_asked(self.engine, conversation, channel)
            return with_links(answer.to_dict())

    def feedback(
        self,
        question: str,
        verdict: str,
        *,
        answer: str = "",
        searched_query: str = "",
        history: Sequence[str] = (),
        passages: Sequence[Mapping[str, Any]] = (),
        rank: int | None = None,
    ) -> dict[str, Any]:
        """Keep a reader's verdict on an answer this API gave (a stateless client sends back what it
        was shown); each passage's document and span are checked against the index."""
        with _statuses():
            store = self.engine.feedback
            if store is None:
                raise NotFound("feedback is switched off on this server (QA_FEEDBACK=off)")
            check_text(question, "the question", MAX_TEXT)
            check_text(answer, "the answer", MAX_TEXT)
            check_text(searched_query, "searched_query", MAX_TEXT)
            for i, earlier in enumerate(history):
                check_text(earlier, f"history[{i}]", MAX_TEXT)
            shown = []
            for i, p in enumerate(passages):
                check_text(p["doc_id"], f"passages[{i}].doc_id", MAX_FILTER_CHARS)
                try:
                    length = len(self.engine.document(p["doc_id"]).text)
                except QAError:
                    raise ServiceError(f"passages[{i}]: there is no document '{p['doc_id']}' in the index") from None
                if not 0 <= p["start"] <= p["end"] <= length:
                    raise ServiceError(
                        f"passages[{i}]: span {p['start']}:{p['end']} is outside the document "
                        f"'{p['doc_id']}' (0:{length})"
                    )
                shown.append(ShownPassage(p["doc_id"], p["start"], p["end"], p["rank"]))
            if len({p.rank for p in shown}) != len(shown):
                raise ServiceError("two passages have the same rank")
            if verdict not in VERDICTS:
                raise ServiceError(f"the verdict must be one of {', '.join(VERDICTS)} (got {verdict!r})")
            record = FeedbackRecord(
                kind=verdict,
                question=question,
                searched=searched_query or question,
                history=tuple(history),
                passages=tuple(shown),
                answer=answer,
                rank=rank,
                index_version=self.engine.reader.name,
                channel="api",
            ).checked()
            record_id = store.add(record)
            return {"id": record_id, **{k: v for k, v in record.to_dict().items() if k != "id"}}

    def documents(self) -> list[dict[str, Any]]:
        """The indexed documents as `qa docs --json` lists them."""
        with _statuses():
            self._refresh()
            return [d.to_dict() for d in self.engine.documents()]

    def document(self, doc_id: str, start: int | None = None, end: int | None = None) -> dict[str, Any]:
        """A document's metadata and text, or text[start:end] (bounds checked), as `qa show --json`,
        with the `original_url` of its file (a PDF at the page holding `start`)."""
        with _statuses():
            check_text(doc_id, "the document id", MAX_FILTER_CHARS)
            try:
                doc = self.engine.document(doc_id)
            except QAError as exc:
                raise NotFound(str(exc)) from None
            length = len(doc.text)
            lo = 0 if start is None else start
            hi = length if end is None else end
            if not 0 <= lo <= hi <= length:
                raise ServiceError(f"span {lo}:{hi} is outside the document '{doc.doc_id}' (0:{length})")
            page = doc.page_at(lo)
            return {
                **doc.metadata(),
                "length": length,
                "start": lo,
                "end": hi,
                "page": page,
                "original_url": original_url(doc.source, page if is_pdf(doc.source) else None),
                "locator": place.label() if (place := doc.place(lo, hi)) else "",
                "text": doc.text[lo:hi],
            }

    def health(self) -> dict[str, Any]:
        """The index that answers (snapshot, documents, chunks, model); NotReady when none can."""
        try:
            self._refresh()
            stats = self.engine.stats()
            self.engine.documents()  # the catalog answers
        except Exception as exc:  # whatever broke, the answer is "not ready", and why
            log.warning("health check failed: %s", exc)
            raise NotReady(f"the index cannot answer: {exc}") from None
        if not stats.get("chunks"):
            raise NotReady("the index is empty: add documents to the corpus and run `qa index`")
        return {"status": "ok", **stats}

    def _refresh(self) -> None:
        try:
            self.engine.refresh()
        except QAError as exc:  # a newer index that cannot be used: keep serving the open one
            log.warning("keeping the current index: %s", exc)


@contextlib.contextmanager
def _statuses() -> Iterator[None]:
    """Index states become NotReady (503); other user errors ServiceError (400)."""
    try:
        yield
    except ServiceError:
        raise
    except _NOT_READY as exc:
        raise NotReady(str(exc)) from None
    except QAError as exc:
        raise ServiceError(str(exc)) from None
