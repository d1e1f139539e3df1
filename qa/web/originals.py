"""The corpus's original files, and pictures of their PDF pages with the cited sentence marked.

Two routes of the web server, read-only, behind `qa.web.security.AccessGuard` like the chat
(the session cookie or `Authorization: Bearer <token>` when QA_API_TOKEN is set):
- `/corpus/<source>`: the original file of a document in the index (`#page=4` opens a PDF there);
- `/corpus-page/<source>?start=S&end=E`: the PDF page holding text[S:E], as PNG, that text marked
  (or `?page=N`: a page unmarked).

A file is served only when it is a document in the index and its path, symlinks resolved, lies
inside the corpus folder. PDFs are shown inline; any other file is only downloaded, as bytes,
so a corpus HTML file can never run as a page of this server. Pages are rendered in a worker
process with memory, time and size limits (qa.ingest.isolation.PageRenderer): PDFs are untrusted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from qa.errors import QAError
from qa.ingest.isolation import PageRenderer
from qa.ingest.pages import PageImage, PageLimits
from qa.ingest.parsing import ReadError
from qa.ingest.readers import content_hash
from qa.types import Document
from qa.web.service import FILES, PAGES, NotFound, ServiceError, is_pdf, original_url

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from qa.engine import QA

log = logging.getLogger("qa.web.originals")

# The text searched for on a page: a cited sentence, or the start of a longer span.
MAX_MARKED_CHARS = 2000
# Stricter than the chat page's policy: nothing in a served file may load or run anything
# (Chromium's PDF viewer works under it); a download is sandboxed as well.
SERVED_POLICY = "default-src 'none'; frame-ancestors 'none'"
DOWNLOAD_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"


class Refused(ServiceError):
    status = 403


def page_image_url(source: str, start: int, end: int) -> str:
    """Where the server serves the picture of the page holding text[start:end], that text marked."""
    return PAGES + quote(source) + "?" + urlencode({"start": int(start), "end": int(end)})


@dataclass(frozen=True)
class PageView:
    """What the document viewer shows of a PDF citation's page."""

    page: int
    image_url: str
    original_url: str
    marked: bool = False
    problem: str = ""  # why the page cannot be shown; "" when it can


class CorpusFiles:
    """The index's documents as files in the corpus folder, and their PDF pages as pictures."""

    def __init__(self, engine: QA, renderer: PageRenderer | None = None) -> None:
        self.engine = engine
        self.renderer = renderer or PageRenderer(PageLimits.from_settings(engine.settings))

    def locate(self, name: str) -> tuple[Document, Path]:
        """The document named `name` (its corpus path or id) and its file; NotFound or Refused."""
        try:
            doc = self.engine.document(name)
        except QAError:
            raise NotFound(f"no document '{name[:200]}' in the index") from None
        relative = PurePosixPath(doc.source)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise Refused(f"'{doc.source}' is not a path inside the corpus folder")
        root = Path(self.engine.settings.corpus_dir).resolve()
        try:
            path = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotFound(f"the file of '{doc.source}' is no longer in the corpus folder") from None
        if not path.is_relative_to(root):
            raise Refused(f"'{doc.source}' leads outside the corpus folder")
        if not path.is_file():
            raise NotFound(f"'{doc.source}' is not a file")
        return doc, path

    def read(self, path: Path) -> bytes:
        limit = int(self.engine.settings.max_file_mb * 1_000_000)
        try:
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise NotFound(f"the file cannot be read ({exc.strerror or type(exc).__name__})") from None
        if len(data) > limit:
            raise Refused(f"the file is over {limit / 1e6:g} MB (QA_MAX_FILE_MB)")
        return data

    def page_image(self, name: str, start: int | None = None, end: int | None = None, page: int = 1) -> PageImage:
        """The page holding text[start:end] of a PDF with that text marked, or page `page` unmarked."""
        doc, path = self.locate(name)
        if not is_pdf(doc.source):
            raise ServiceError(f"'{doc.source}' is not a PDF: it has no pages to show")
        sentence, near = "", 0.0
        if start is not None and end is not None:
            if not 0 <= start < end <= len(doc.text):
                raise ServiceError(f"span {start}:{end} is outside the document '{doc.doc_id}' (0:{len(doc.text)})")
            page = doc.page_at(start) or 1
            sentence = doc.text[start : min(end, start + MAX_MARKED_CHARS)]
            near = _where_on_page(doc, page, start)
        data = self.read(path)
        try:
            return self.renderer.render(data, page, sentence, near, key=(content_hash(data),))
        except ReadError as exc:
            raise ServiceError(f"page {page} of '{doc.source}' cannot be shown: {exc}") from None

    def page_view(self, doc: Document, start: int, end: int) -> PageView | None:
        """The viewer's page for text[start:end] of a PDF (rendered now, to say whether the text
        was found on it); None for other documents."""
        if not (doc.page_starts and is_pdf(doc.source) and 0 <= start < end <= len(doc.text)):
            return None
        page = doc.page_at(start) or 1
        view = PageView(page, page_image_url(doc.source, start, end), original_url(doc.source, page))
        try:
            image = self.page_image(doc.source, start, end)
        except (NotFound, Refused) as exc:  # no file to show: no link to it either
            log.info("page %d of %s not shown: %s", page, doc.source, exc)
            return PageView(page, "", "", problem=str(exc))
        except ServiceError as exc:
            log.info("page %d of %s not shown: %s", page, doc.source, exc)
            return PageView(page, "", view.original_url, problem=str(exc))
        except Exception:  # a bug: the text view still opens
            log.exception("rendering page %d of %s failed", page, doc.source)
            problem = f"page {page} cannot be shown (the error was logged on the server)"
            return PageView(page, "", view.original_url, problem=problem)
        return PageView(page, view.image_url, view.original_url, marked=image.marked)

    def close(self) -> None:
        self.renderer.close()

    # -- the routes --------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """The two read-only routes, to add to the web server before the chat's mount at /."""
        from starlette.routing import Route

        return [
            Route(FILES + "{source:path}", self._file, methods=["GET", "HEAD"]),
            Route(PAGES + "{source:path}", self._page, methods=["GET", "HEAD"]),
        ]

    def _file(self, request: Request) -> Response:
        from starlette.responses import Response

        try:
            doc, path = self.locate(request.path_params["source"])
            data = self.read(path)
        except ServiceError as exc:
            return _error(exc)
        name = quote(PurePosixPath(doc.source).name)
        if is_pdf(doc.source):
            kind, disposition, policy = "application/pdf", "inline", SERVED_POLICY
        else:
            kind, disposition, policy = "application/octet-stream", "attachment", DOWNLOAD_POLICY
        headers = {
            "content-disposition": f"{disposition}; filename*=UTF-8''{name}",
            "content-security-policy": policy,
            "cache-control": "private, no-store",
        }
        return Response(data, media_type=kind, headers=headers)

    def _page(self, request: Request) -> Response:
        from starlette.responses import Response

        query = request.query_params
        try:
            start, end, page = (_number(query.get(key), key) for key in ("start", "end", "page"))
            if (start is None) != (end is None):
                raise ServiceError("give both start and end (the cited text's offsets), or neither")
            image = self.page_image(request.path_params["source"], start, end, 1 if page is None else page)
        except ServiceError as exc:
            return _error(exc)
        headers = {
            "content-security-policy": SERVED_POLICY,
            "cache-control": "private, no-store",
            "x-qa-marked": "yes" if image.marked else "no",
        }
        return Response(image.png, media_type="image/png", headers=headers)


def _where_on_page(doc: Document, page: int, offset: int) -> float:
    """How far into its page's text `offset` is, from 0 to 1."""
    first = doc.page_starts[page - 1]
    last = doc.page_starts[page] if page < len(doc.page_starts) else len(doc.text)
    return (offset - first) / max(1, last - first)


def _number(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 12:
        raise ServiceError(f"{name} must be a whole number (got {value[:40]!r})")
    return int(value)


def _error(exc: ServiceError) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": str(exc)}, status_code=exc.status)
