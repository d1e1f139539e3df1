"""The web chat (Gradio): readers ask, analysts add documents and update the index.

`ChatHandlers` holds every handler as a plain method (testable without a server);
`build_app` lays out the Gradio Blocks and wires the handlers (`qa.web.server.serve` runs them
in one server with the REST API and the MCP server). Gradio is imported only by `build_app`, so
`qa --help` stays fast.

API: besides /api/v1 (`qa.web.api`), `ask` is the Gradio endpoint `/ask`:
    gradio_client.Client(url).predict(question, k, mode, api_name="/ask")
returns the JSON of `qa ask --json`.

(No `from __future__ import annotations` here: Gradio reads the `gr.EventData` and
`gr.Progress` hints of the nested handlers at run time.)
"""

import datetime as dt
import functools
import hmac
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.answering.transcript import export_filename, to_markdown
from qa.config import MODES
from qa.conversation import Conversation
from qa.errors import IndexLockedError, QAError
from qa.feedback import answers_now, record_asked, record_verdict
from qa.ingest.parsing import ParseLimits
from qa.ingest.readers import SUPPORTED_SUFFIXES
from qa.web.options import (  # noqa: F401  (re-exported: the serve flags used to live here)
    ADMIN_PASSWORD_ENV,
    DEFAULT_HOST,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PORT,
    LOCAL_HOSTS,
    MAX_UPLOAD_ENV,
    add_serve_arguments,
    resolve_options,
    resolve_port,
)
from qa.web.originals import CorpusFiles
from qa.web.render import (
    NO_DOCUMENT_OPEN,
    esc,
    render_document,
    render_feedback_report,
    render_index_report,
    render_message,
    render_question,
    render_reply,
    render_summary,
    render_table,
    render_viewer_message,
)
from qa.web.security import Lockout
from qa.web.service import check_filters
from qa.web.uploads import store_uploads

if TYPE_CHECKING:
    from qa.engine import QA

log = logging.getLogger("qa.web.app")

_REPLY_TURN = re.compile(r'^<div class="qa-reply" id="qa-t(\d+)">')
MAX_K_UI = 20
EXAMPLES = (
    "What did Russia deploy to the Kurils?",
    "Why have Russia and Japan never signed a peace treaty?",
    "What did Abe propose to Putin?",
    "Why does Russia not want to return the islands?",
    "What role does China play?",
)


def new_context() -> Conversation:
    """A session's conversation: no turns yet."""
    return Conversation()


class AdminGate:
    """The analyst password, compared in constant time; a client that keeps guessing wrong is
    locked out for a while (that client only: the others can still unlock)."""

    def __init__(
        self,
        password: str,
        max_failures: int = 5,
        window: float = 300.0,
        lockout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not password:
            raise ValueError("an admin password must not be empty")
        self._password = password.encode("utf-8")
        self.lockout = Lockout(max_failures, window, lockout, clock)

    def check(self, given: object, client: str = "") -> tuple[bool, str]:
        wait = self.lockout.wait(client)
        if wait:
            return False, f"Too many wrong passwords; try again in {int(wait) + 1} s."
        ok = isinstance(given, str) and hmac.compare_digest(given.encode("utf-8", "replace"), self._password)
        if ok:
            self.lockout.succeeded(client)
            return True, "Unlocked: you can add documents and update the index."
        if self.lockout.failed(client):
            return False, f"Wrong password. Too many attempts: locked for {int(self.lockout.lockout)} s."
        return False, "Wrong password."


class ChatHandlers:
    """Everything the page does, as plain functions of their inputs."""

    def __init__(
        self,
        engine: "QA",
        admin_password: str | None = None,
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    ) -> None:
        self.engine = engine
        self.gate = AdminGate(admin_password) if admin_password else None
        self.max_upload_bytes = int(max_upload_mb * 1_000_000)
        # Where saved chats are written (build_app points it into Gradio's cache, which serves them).
        self.export_dir = Path(tempfile.gettempdir()) / "qa-chats"
        # The only folder uploads are taken from: build_app sets it to Gradio's upload folder, so a
        # client cannot name a server path. (None: callers in this process choose the paths.)
        self.upload_dir: Path | None = None
        # The original files and their PDF pages, pictured in a worker process (qa.web.originals).
        self.files = CorpusFiles(engine)
        self._update_lock = threading.Lock()

    @property
    def admin_enabled(self) -> bool:
        return self.gate is not None

    # -- readers --------------------------------------------------------------------------
    def respond(
        self,
        message: str,
        history: list | None,
        context: Conversation | None,
        k: float | int = 5,
        mode: str = "hybrid",
        docs: Sequence[str] | str | None = None,
        author: str | None = "",
        date_from: str | None = "",
        date_to: str | None = "",
        use_context: bool = True,
    ) -> tuple[list, str, Conversation, str]:
        """One chat turn: (new history, new input box text, the conversation, corpus summary)."""
        history = list(history or [])
        conversation = Conversation(list(context.turns)) if isinstance(context, Conversation) else Conversation()
        question = message if isinstance(message, str) else ""
        if not question.strip():
            history.append(
                {
                    "role": "assistant",
                    "content": render_message(
                        'Type a question first, for example "What did Russia deploy to the Kurils?"', "hint"
                    ),
                }
            )
            return history, "", conversation, self.summary()
        history.append({"role": "user", "content": render_question(question)})
        try:
            filters = check_filters(docs, author, date_from, date_to, labels=("The “From” date", "The “To” date"))
            answer = conversation.ask(self.engine, question, _as_k(k), mode, use_context=bool(use_context), **filters)
        except QAError as exc:
            history.append({"role": "assistant", "content": render_message(_sentence(str(exc)), "error")})
            return history, question, conversation, self.summary()
        except Exception:  # a bug: logged for the operator, a plain message for the reader
            log.exception("answering %r failed", question[:200])
            history.append(
                {
                    "role": "assistant",
                    "content": render_message(
                        "Something went wrong while answering; the error was logged on the server.", "error"
                    ),
                }
            )
            return history, question, conversation, self.summary()
        record_asked(self.engine, conversation, "web")
        reply = render_reply(answer, len(conversation.turns), feedback=self.feedback_enabled)
        history.append({"role": "assistant", "content": reply})
        return history, "", conversation, self.summary()

    # -- readers' feedback ------------------------------------------------------------------
    @property
    def feedback_enabled(self) -> bool:
        return self.engine.feedback is not None

    def rate(self, shown: list | None, context: Conversation | None, index: object, liked: object) -> str:
        """👍/👎 on the chat's message `index`: recorded for the answer that message shows.

        `shown` and `context` are the server's own state; the client only names a message."""
        if not isinstance(liked, bool) or not isinstance(index, int) or isinstance(index, bool):
            return ""  # an undone or custom rating: nothing to record
        messages = list(shown or [])
        message = messages[index] if 0 <= index < len(messages) else None
        content = message.get("content") if isinstance(message, dict) else None
        match = _REPLY_TURN.search(content) if isinstance(content, str) else None
        if message is None or message.get("role") != "assistant" or match is None:
            return render_message("Only an answer can be rated.", "hint")
        return self._verdict(context, int(match.group(1)), "good" if liked else "bad", None)

    def mark_answered(self, context: Conversation | None, request: dict | None) -> str:
        """Record "This passage answered it" from a source card: {"turn", "rank"} from the card's link."""
        request = request if isinstance(request, dict) else {}
        turn, rank = _int(request.get("turn"), 0), _int(request.get("rank"), 0)
        return self._verdict(context, turn, "answered", rank)

    def _verdict(self, context: Conversation | None, turn: int, verdict: str, rank: int | None) -> str:
        conversation = context if isinstance(context, Conversation) else Conversation()
        try:
            record_verdict(self.engine, conversation, turn, verdict, rank, "web")
        except QAError as exc:
            return render_message(_sentence(str(exc)), "error")
        said = {
            "good": "this answer helped",
            "bad": "this answer did not help",
            "answered": f"source {rank} answered the question",
        }[verdict]
        return render_message(f"Thank you: noted that {said}.", "hint")

    def export(self, context: Conversation | None) -> str | None:
        """The conversation as a Markdown file (its path), or None before the first answer."""
        if not isinstance(context, Conversation) or not context.answered:
            return None
        saved = dt.datetime.now(dt.timezone.utc)
        folder = Path(self.export_dir) / uuid.uuid4().hex
        folder.mkdir(parents=True)
        path = folder / export_filename(saved)
        path.write_text(to_markdown(context.answered, self.engine.stats(), saved), encoding="utf-8")
        return str(path)

    def ask_json(self, question: str, k: int = 5, mode: str = "hybrid") -> dict:
        """The answer as `qa ask --json` prints it; QAError for bad input."""
        return self.engine.ask(question, k=_as_k(k, limit=None), mode=mode).to_dict()

    def open_document(self, request: dict | None) -> str:
        """The viewer's HTML for {"doc", "start", "end", "hl_start", "hl_end"} (from a card link)."""
        request = request if isinstance(request, dict) else {}
        doc_id = request.get("doc")
        if not isinstance(doc_id, str) or not doc_id:
            return render_viewer_message("No document was chosen.")
        try:
            doc = self.engine.document(doc_id)
        except QAError:
            return render_viewer_message(
                "That document is no longer in the index (it may have been removed by an update); ask again."
            )
        start, end = _int(request.get("start"), 0), _int(request.get("end"), 0)
        if not 0 <= start <= end <= len(doc.text):
            start, end = 0, 0
        hl_start, hl_end = _int(request.get("hl_start"), None), _int(request.get("hl_end"), None)
        # The page shows the cited sentence marked, or the passage when no sentence is given.
        sentence = hl_start is not None and hl_end is not None and start <= hl_start < hl_end <= end
        page = self.files.page_view(doc, *((hl_start, hl_end) if sentence else (start, end)))
        return render_document(doc, start, end, hl_start, hl_end, page)

    def summary(self) -> str:
        try:
            self.engine.refresh()
        except QAError as exc:  # e.g. the index was rebuilt with another model: keep serving the open one
            log.warning("keeping the current index: %s", exc)
        return render_summary(self.engine.stats(), self.engine.documents(), self.engine.failed_at_last_update())

    def document_choices(self) -> list[tuple[str, str]]:
        return [(f"{d.title or d.source} ({d.source})", d.doc_id) for d in self.engine.documents()]

    # -- analysts -------------------------------------------------------------------------
    def unlock(self, password: str, client: str = "") -> tuple[bool, str]:
        """Check the analyst password; `client` (its address) is locked out after repeated failures."""
        if self.gate is None:
            return False, "Analyst access is not enabled on this server."
        return self.gate.check(password, client)

    def add_uploads(self, unlocked: bool, files: Sequence[Any] | None, replace: bool = False) -> str:
        """Save uploaded files into the corpus; the per-file report as HTML."""
        if not self._allowed(unlocked):
            return render_message("Unlock the Index tab with the analyst password first.", "error")
        pairs = [_upload_pair(f) for f in files or []]
        pairs = [p for p in pairs if p is not None]
        outside = [name for name, path in pairs if not _received(path, self.upload_dir)]
        if outside:
            log.warning("refused upload paths outside the upload folder: %r", outside[:5])
            return render_message("Those files were not uploaded through this page; upload them again.", "error")
        if not pairs:
            return render_message("Choose one or more files to upload first.", "hint")
        results = store_uploads(
            Path(self.engine.settings.corpus_dir),
            pairs,
            max_bytes=self.max_upload_bytes,
            replace=bool(replace),
            known_hashes=self.engine.manifest["corpus"].get("files", {}),
            limits=ParseLimits.from_settings(self.engine.settings),
        )
        saved = sum(r.status in ("added", "replaced") for r in results)
        caption = (
            f"{saved} of {len(results)} file(s) saved to the corpus. "
            + ("Update the index to make them searchable." if saved else "")
        ).strip()
        return render_table([r.row() for r in results], ("file", "status", "detail"), caption)

    def update_index(self, unlocked: bool, rebuild: bool = False, progress: Callable[..., Any] | None = None) -> str:
        """Bring the index in line with the corpus; readers keep the old one until it is swapped."""
        if not self._allowed(unlocked):
            return render_message("Unlock the Index tab with the analyst password first.", "error")
        from qa.ingest.indexer import update_index

        if not self._update_lock.acquire(blocking=False):
            return render_message("An index update is already running; wait for it to finish.", "error")
        try:
            if progress is not None:
                progress(0.0, desc="Reading the corpus")
            report = update_index(
                self.engine.settings,
                rebuild=bool(rebuild),
                progress=progress is not None,
                embedder=self.engine.embedder,
                wait=False,
            )
            self.engine.refresh()
        except IndexLockedError as exc:
            return render_message(
                f"Another process is updating the index right now; try again when it has finished ({exc}).", "error"
            )
        except QAError as exc:
            return render_message(f"The index was not updated: {_sentence(str(exc))}", "error")
        except Exception:  # a bug or a full disk: the previous index stays live
            log.exception("index update failed")
            return render_message(
                "The index update failed; the previous index is still in use. The error was logged on the server.",
                "error",
            )
        finally:
            self._update_lock.release()
        return render_index_report(report.to_dict())

    def admin_status(self, unlocked: bool) -> str:
        """Pending corpus changes the index does not have yet."""
        if not self._allowed(unlocked):
            return ""
        stale = self.engine.stale_files()
        if not stale:
            return '<p class="qa-ok">The index matches the corpus folder.</p>'
        items = "".join(f"<li>{esc(source)}</li>" for source in stale[:50])
        more = f"<li>… and {len(stale) - 50} more</li>" if len(stale) > 50 else ""
        return (
            f'<div class="qa-pending"><p>{len(stale)} corpus file(s) are new, changed or removed since the '
            f"last update; readers see them after <b>Update index</b>.</p><ul>{items}{more}</ul></div>"
        )

    def feedback_report(self, unlocked: bool) -> str:
        """`qa report` for the analysts' tab (refused questions re-asked of the current index)."""
        if not self._allowed(unlocked):
            return render_message("Unlock the Index tab first.", "error")
        if self.engine.feedback is None:
            return render_message("Feedback is switched off on this server (QA_FEEDBACK=off).", "hint")
        from qa.evaluation.usage import build_report

        try:
            report = build_report(
                self.engine.feedback.records(),
                self.engine.embedder.encode,
                self.engine.reader.name,
                functools.partial(answers_now, self.engine),
            )
        except QAError as exc:
            return render_message(_sentence(str(exc)), "error")
        return render_feedback_report(report.to_dict())

    def _allowed(self, unlocked: object) -> bool:
        return self.gate is not None and unlocked is True


# -- small helpers --------------------------------------------------------------------------
def _as_k(value: object, limit: int | None = MAX_K_UI) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QAError(f"the number of passages must be a whole number (got {value!r})")
    if isinstance(value, float) and not value.is_integer():  # also NaN and infinities
        raise QAError(f"the number of passages must be a whole number (got {value!r})")
    k = int(value)
    if limit is not None and not 1 <= k <= limit:
        raise QAError(f"the number of passages must be between 1 and {limit} (got {k})")
    return k


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]) if text else text


def _int(value: object, default: int | None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return default


def _received(path: Path, folder: Path | None) -> bool:
    """Whether `path` is a regular file inside the upload folder (no link leading out of it)."""
    if folder is None:
        return True
    try:
        return path.resolve(strict=True).is_relative_to(folder.resolve()) and path.resolve().is_file()
    except OSError:
        return False


def _upload_pair(item: Any) -> tuple[str, Path] | None:
    """(name as uploaded, received path) from a Gradio file value (path string or object)."""
    path = item if isinstance(item, (str, os.PathLike)) else getattr(item, "path", None) or getattr(item, "name", None)
    if path is None and isinstance(item, dict):
        path = item.get("path") or item.get("name")
    if not path:
        return None
    name = getattr(item, "orig_name", None) or (item.get("orig_name") if isinstance(item, dict) else None)
    return (name or os.path.basename(str(path)), Path(path))


# -- the page ---------------------------------------------------------------------------------
CSS = """
.qa-header h1 { margin: 0 0 .2rem 0; font-size: 1.6rem; font-weight: 600; }
.qa-header p { margin: 0; color: var(--body-text-color-subdued); }
.qa-summary p { margin: .2rem 0; }
.qa-summary ul { margin: .3rem 0 0 1.1rem; padding: 0; }
.qa-summary li { margin: .15rem 0; }
.qa-failed > summary { color: #b45309; }
.qa-meta { color: var(--body-text-color-subdued); font-size: .88em; }
.qa-unknown { font-style: italic; }
.qa-question { white-space: pre-wrap; }
.qa-reply p { margin: .25rem 0 .5rem 0; }
.qa-answer { font-size: 1.05em; line-height: 1.5; }
.qa-nothing { font-weight: 600; }
.qa-error p { color: var(--error-text-color, #b91c1c); }
.qa-searched, .qa-note { font-size: .9em; color: var(--body-text-color-subdued); }
.qa-label { font-weight: 600; }
.qa-cite { font-weight: 600; text-decoration: none; padding: 0 .1em; border-radius: 3px; }
.qa-cite:hover { background: var(--color-accent-soft); }
.qa-sources-label { font-size: .85em; text-transform: uppercase; letter-spacing: .04em;
  color: var(--body-text-color-subdued); margin-top: .8rem !important; }
.qa-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .55rem .75rem;
  margin: .5rem 0; background: var(--background-fill-primary); scroll-margin: 12px;
  transition: box-shadow .3s, border-color .3s; }
.qa-card.qa-flash { border-color: var(--color-accent); box-shadow: 0 0 0 3px var(--color-accent-soft); }
.qa-card-head { display: flex; gap: .4rem; align-items: baseline; }
.qa-rank { font-weight: 600; color: var(--color-accent); }
.qa-title { font-weight: 600; }
.qa-score { margin-left: auto; font-size: .8em; color: var(--body-text-color-subdued); white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.qa-passage { margin: .4rem 0 !important; padding: .1rem 0 .1rem .7rem !important;
  border-left: 3px solid var(--border-color-primary) !important; white-space: pre-line;
  font-size: .93em; line-height: 1.45; }
mark.qa-hl, mark.qa-sentence { background: #fde68a; color: inherit; padding: 0 .1em; border-radius: 2px; }
.qa-card-foot { display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; font-size: .85em; }
.qa-where { color: var(--body-text-color-subdued); }
.qa-open { margin-left: auto; font-weight: 600; }
.qa-actions { margin-left: auto; display: inline-flex; gap: .8rem; flex-wrap: wrap; }
.qa-actions .qa-open { margin-left: 0; }
.qa-answered.qa-noted { color: #15803d; font-weight: 600; pointer-events: none; }
#qa-feedback-note { min-height: 0; }
#qa-feedback-note p { margin: 0; font-size: .85em; color: var(--body-text-color-subdued); }
.qa-doc { font-size: .95em; }
.qa-doc-empty { color: var(--body-text-color-subdued); padding: .5rem; }
.qa-doc-head { border-bottom: 1px solid var(--border-color-primary); padding-bottom: .4rem; margin-bottom: .4rem; }
.qa-doc-head p { margin: .1rem 0; }
.qa-doc-title { font-weight: 600; font-size: 1.1em; }
.qa-doc-body { white-space: pre-wrap; line-height: 1.5; max-height: 62vh; overflow-y: auto;
  padding-right: .4rem; }
mark.qa-span { background: #dbeafe; color: inherit; border-radius: 2px; }
.qa-page-view { margin: .2rem 0 .5rem 0; }
.qa-page-view > summary { cursor: pointer; font-size: .88em; color: var(--body-text-color-subdued); }
img.qa-page { display: block; width: 100%; height: auto; max-height: 60vh; object-fit: contain;
  margin-top: .3rem; border: 1px solid var(--border-color-primary); background: #fff; }
.qa-report { border-collapse: collapse; width: 100%; font-size: .9em; }
.qa-report caption { text-align: left; padding: .3rem 0; font-weight: 600; }
.qa-report th, .qa-report td { border: 1px solid var(--border-color-primary); padding: .25rem .45rem;
  text-align: left; vertical-align: top; }
.qa-status-rejected td:nth-child(2), .qa-status-failed td:nth-child(2) { color: #b91c1c; font-weight: 600; }
.qa-status-added td:nth-child(2), .qa-status-replaced td:nth-child(2) { color: #15803d; font-weight: 600; }
.qa-ok { font-weight: 600; }
/* Markers and ranks never break inside "[12]"; long words and paths wrap instead of overflowing. */
.qa-cite, .qa-rank, .qa-score { white-space: nowrap; }
.qa-rank { flex: none; }
.qa-card-head { flex-wrap: wrap; column-gap: .4rem; row-gap: 0; }
.qa-title { flex: 1 1 12rem; min-width: 0; overflow-wrap: break-word; }
.qa-answer, .qa-passage, .qa-where, .qa-doc-body, .qa-question { overflow-wrap: break-word; }
#qa-ask { flex: none; }
#qa-tools { gap: .5rem; justify-content: flex-start; }
#qa-tools > * { flex: none; width: auto; }
@media (max-width: 640px) {
  /* Gradio's message padding (and the page's, in PAGE_HEAD) take a sixth of a phone's width. */
  #qa-chat .message-row { padding-left: 6px !important; padding-right: 6px !important; }
  .qa-header h1 { font-size: 1.3rem; }
  .qa-card { padding: .45rem .55rem; }
  .qa-passage { padding-left: .5rem !important; }
  .qa-score { margin-left: 0; }
  .qa-open, .qa-actions { margin-left: 0; }
}
"""

# Gradio scopes CSS to the app's content; the page's own padding is styled from the head.
PAGE_HEAD = (
    "<style>@media (max-width: 640px) { .gradio-container .main.app "
    "{ padding-left: 10px !important; padding-right: 10px !important; } }</style>"
)

# Runs once in the document viewer: opens cards' documents, follows citation markers,
# and scrolls the viewer to the highlighted span whenever it shows a new document.
VIEWER_JS = r"""
window.__qaOpenDocument = (request) => trigger('click', request);
if (!window.__qaClicksHooked) {
  window.__qaClicksHooked = true;
  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const link = target && target.closest('a.qa-open, a.qa-cite');
    if (!link) return;
    const href = link.getAttribute('href') || '';
    if (link.classList.contains('qa-open')) {
      event.preventDefault();
      const query = new URLSearchParams(href.slice(href.indexOf('?') + 1));
      const request = {};
      for (const key of ['doc', 'start', 'end', 'hl_start', 'hl_end']) {
        const value = query.get(key);
        if (value !== null) request[key] = key === 'doc' ? value : Number(value);
      }
      window.__qaOpenDocument(request);
      return;
    }
    const card = href.startsWith('#') ? document.getElementById(href.slice(1)) : null;
    if (!card) return;
    event.preventDefault();
    card.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    card.classList.remove('qa-flash');
    void card.offsetWidth;
    card.classList.add('qa-flash');
    setTimeout(() => card.classList.remove('qa-flash'), 1600);
  });
}
watch('value', () => {
  const span = element.querySelector('mark.qa-span');
  const body = element.querySelector('.qa-doc-body');
  if (!span || !body) return;
  body.scrollTop += span.getBoundingClientRect().top - body.getBoundingClientRect().top - body.clientHeight / 4;
  const box = element.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) element.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
});
"""

# Runs once in the feedback note: a card's "This passage answered it" link sends its turn and rank
# (numbers only: the server takes everything else from its own conversation) and is marked as noted.
ANSWERED_JS = r"""
window.__qaAnswered = (request) => trigger('click', request);
if (!window.__qaAnsweredHooked) {
  window.__qaAnsweredHooked = true;
  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const link = target && target.closest('a.qa-answered');
    if (!link) return;
    event.preventDefault();
    const href = link.getAttribute('href') || '';
    const query = new URLSearchParams(href.slice(href.indexOf('?') + 1));
    window.__qaAnswered({ turn: Number(query.get('turn')), rank: Number(query.get('rank')) });
    link.classList.add('qa-noted');
    link.textContent = 'Noted: this passage answered it';
  });
}
"""

# After a reply: scroll the chat so that the new question and the top of its answer show.
SCROLL_TO_REPLY_JS = r"""
() => {
  const show = (tries) => {
    const replies = document.querySelectorAll('#qa-chat .qa-reply');
    const reply = replies[replies.length - 1];
    if (!reply) { if (tries > 0) setTimeout(() => show(tries - 1), 60); return; }
    let box = reply.parentElement;
    while (box && !(box.scrollHeight > box.clientHeight + 4 &&
                    /(auto|scroll)/.test(getComputedStyle(box).overflowY))) box = box.parentElement;
    if (!box) return;
    const questions = document.querySelectorAll('#qa-chat .qa-question');
    const question = questions[questions.length - 1];
    const anchor = question && question.getBoundingClientRect().top < reply.getBoundingClientRect().top
      ? question : reply;
    box.scrollTop += anchor.getBoundingClientRect().top - box.getBoundingClientRect().top - 12;
  };
  setTimeout(() => show(20), 60);
}
"""


def theme():
    """Gradio's Soft theme with its bundled reading font (no web fonts fetched).

    Bold comes from the full Bold face: Gradio's bundled SemiBold face holds only a few glyphs.
    """
    import gradio as gr

    return gr.themes.Soft(
        primary_hue="indigo",
        font=[gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"],
    )


def build_app(handlers: ChatHandlers, title: str = "Ask the corpus"):
    """The Gradio Blocks: a Chat tab, and an Index tab only when analyst access is enabled."""
    import gradio as gr

    # Uploads wait in Gradio's cache until copied into the corpus, and saved chats until they
    # are downloaded; files older than an hour are deleted.
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        handlers.export_dir = Path(demo.GRADIO_CACHE) / "qa-chats"
        handlers.upload_dir = Path(demo.GRADIO_CACHE)
        context = gr.State(new_context())
        unlocked = gr.State(False)
        gr.HTML(
            f'<div class="qa-header"><h1>{esc(title)}</h1><p>Ask in plain words: the answer quotes the corpus, '
            "and every sentence cites the passage it comes from.</p></div>"
        )
        summary = gr.HTML(elem_id="qa-summary")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=420):
                    chatbot = gr.Chatbot(
                        elem_id="qa-chat",
                        label="Conversation",
                        show_label=False,
                        height="62vh",
                        render_markdown=False,
                        sanitize_html=True,
                        latex_delimiters=[],
                        allow_tags=False,
                        autoscroll=False,
                        # 👍/👎 on each answer (QA_FEEDBACK); a rating names only the message.
                        feedback_options=("Like", "Dislike") if handlers.feedback_enabled else None,
                        buttons=[],
                        layout="panel",
                        placeholder="Ask a question about the corpus, or click an example below.",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            elem_id="qa-question",
                            show_label=False,
                            placeholder="Ask a question, e.g. What did Russia deploy to the Kurils?",
                            lines=1,
                            max_lines=4,
                            max_length=2000,
                            scale=6,
                            autofocus=True,
                        )
                        ask = gr.Button("Ask", variant="primary", scale=0, min_width=72, elem_id="qa-ask")
                    feedback_note = gr.HTML("", elem_id="qa-feedback-note", js_on_load=ANSWERED_JS, padding=False)
                    with gr.Row(elem_id="qa-tools"):
                        clear = gr.Button("New chat", size="sm", scale=0, min_width=96, elem_id="qa-clear")
                        save = gr.DownloadButton(
                            "Save chat (Markdown)",
                            value=None,
                            interactive=False,
                            size="sm",
                            scale=0,
                            min_width=170,
                            elem_id="qa-save",
                        )
                    examples = gr.Dataset(
                        components=[question],
                        samples=[[q] for q in EXAMPLES],
                        label="Example questions (click to ask)",
                        elem_id="qa-examples",
                    )
                    with gr.Accordion("Search options", open=False):
                        with gr.Row():
                            k = gr.Slider(1, MAX_K_UI, value=5, step=1, label="Passages", elem_id="qa-k")
                            mode = gr.Radio(
                                list(MODES),
                                value="hybrid",
                                label="Retrieval",
                                info="hybrid: meaning + words; dense: meaning; lexical: words (BM25)",
                                elem_id="qa-mode",
                            )
                        use_context = gr.Checkbox(
                            value=True,
                            label="Read short follow-ups (“and how did Japan respond?”) in the conversation's context",
                        )
                        docs = gr.Dropdown(
                            choices=[],  # filled when the page loads (the layout is public; documents are not)
                            multiselect=True,
                            label="Only these documents",
                            elem_id="qa-docs",
                        )
                        with gr.Row():
                            author = gr.Textbox(label="Author contains", elem_id="qa-author")
                            date_from = gr.Textbox(label="From date", placeholder="YYYY[-MM[-DD]]", elem_id="qa-from")
                            date_to = gr.Textbox(label="To date", placeholder="YYYY[-MM[-DD]]", elem_id="qa-to")
                        gr.Markdown("Date filters keep only documents with a known date.", elem_classes=["qa-meta"])
                with gr.Column(scale=2, min_width=320):
                    viewer = gr.HTML(
                        NO_DOCUMENT_OPEN,
                        label="Document",
                        elem_id="qa-viewer",
                        js_on_load=VIEWER_JS,
                        container=True,
                        padding=True,
                    )

            # The conversation shown lives on the server (a State, never sent by the client): a
            # history from the client could name files on the server for Gradio to serve.
            shown = gr.State([])

            def chat_turn(message, messages, conversation, *options):
                history, text, conversation, corpus = handlers.respond(message, messages, conversation, *options)
                return history, history, text, conversation, corpus

            chat_inputs = [question, shown, context, k, mode, docs, author, date_from, date_to, use_context]
            chat_outputs = [chatbot, shown, question, context, summary]

            def save_file(conversation: Conversation):
                """The Markdown file of the conversation so far, for the Save button."""
                path = handlers.export(conversation)
                return gr.update(value=path, interactive=path is not None)

            for trigger in (question.submit, ask.click):
                trigger(
                    chat_turn,
                    chat_inputs,
                    chat_outputs,
                    api_visibility="private",
                    concurrency_id="qa-ask",
                ).then(None, js=SCROLL_TO_REPLY_JS).then(
                    save_file, context, save, api_visibility="private", queue=False
                )

            def ask_example(sample: list) -> str:
                return sample[0] if sample else ""

            examples.click(ask_example, examples, question, api_visibility="private", queue=False).then(
                chat_turn, chat_inputs, chat_outputs, api_visibility="private", concurrency_id="qa-ask"
            ).then(None, js=SCROLL_TO_REPLY_JS).then(save_file, context, save, api_visibility="private", queue=False)

            def new_chat():
                return [], [], "", new_context(), NO_DOCUMENT_OPEN, gr.update(value=None, interactive=False), ""

            clear.click(
                new_chat,
                None,
                [chatbot, shown, question, context, viewer, save, feedback_note],
                api_visibility="private",
                queue=False,
            )
            chatbot.clear(
                lambda: ([], new_context(), gr.update(value=None, interactive=False)),
                None,
                [shown, context, save],
                api_visibility="private",
                queue=False,
            )

            def open_document(evt: gr.EventData) -> str:
                return handlers.open_document(getattr(evt, "_data", None))

            viewer.click(open_document, None, viewer, api_visibility="private", concurrency_id="qa-ask")

            if handlers.feedback_enabled:

                def rate(messages, conversation, evt: gr.LikeData) -> str:
                    return handlers.rate(messages, conversation, evt.index, evt.liked)

                chatbot.like(rate, [shown, context], feedback_note, api_visibility="private", queue=False)

                def mark_answered(conversation, evt: gr.EventData) -> str:
                    return handlers.mark_answered(conversation, getattr(evt, "_data", None))

                feedback_note.click(mark_answered, context, feedback_note, api_visibility="private", queue=False)

            if handlers.admin_enabled:
                _index_tab(gr, handlers, unlocked, summary, docs)

        def on_load():
            return handlers.summary(), gr.update(choices=handlers.document_choices())

        demo.load(on_load, None, [summary, docs], api_visibility="private")

        def ask_api(question: str, k: int = 5, mode: str = "hybrid") -> dict:
            """Ask a question. Returns the JSON of `qa ask --json`: the extractive answer and the
            ranked passages with their citations (k passages at most; mode hybrid, dense or lexical)."""
            try:
                return handlers.ask_json(question, k, mode)
            except QAError as exc:
                raise gr.Error(_sentence(str(exc)), print_exception=False) from None

        gr.api(ask_api, api_name="ask", concurrency_id="qa-ask")
    return demo


def _index_tab(gr, handlers: ChatHandlers, unlocked, summary, docs) -> None:
    with gr.Tab("Index", id="index"):
        with gr.Column(visible=True) as login:
            gr.Markdown("Analyst access: enter the password set with `--admin-password` or `QA_ADMIN_PASSWORD`.")
            with gr.Row():
                password = gr.Textbox(
                    type="password", show_label=False, placeholder="Analyst password", elem_id="qa-password", scale=4
                )
                unlock = gr.Button("Unlock", variant="primary", elem_id="qa-unlock", scale=1)
            login_message = gr.Markdown()
        with gr.Column(visible=False) as panel:
            status = gr.HTML()
            gr.Markdown(
                f"**Add entries to the corpus** — text, Markdown, HTML, PDF, Office files, CSV or EPUB, up to "
                f"{handlers.max_upload_bytes / 1e6:g} MB each. Names are cleaned; existing files are only "
                "replaced when you ask for it."
            )
            files = gr.File(
                file_count="multiple",
                file_types=sorted(SUPPORTED_SUFFIXES),
                label="Files to add",
                elem_id="qa-upload",
            )
            replace = gr.Checkbox(value=False, label="Replace files with the same name")
            add = gr.Button("Add to corpus", elem_id="qa-add")
            upload_report = gr.HTML()
            gr.Markdown(
                "**Update the index** — embeds only new or changed text. Readers keep getting answers "
                "from the current index until the new one is complete."
            )
            rebuild = gr.Checkbox(value=False, label="Rebuild from scratch")
            update = gr.Button("Update index", variant="primary", elem_id="qa-update")
            index_report = gr.HTML(min_height=80)
            gr.Markdown(
                "**What readers asked** — questions refused or thumbed down, by subject, and the trend "
                "per index version (as `qa report` prints it)."
            )
            show_feedback = gr.Button("Show the feedback report", elem_id="qa-feedback-report")
            feedback_report = gr.HTML()
            lock = gr.Button("Lock", size="sm")

    def do_unlock(given: str, request: gr.Request):
        client = getattr(getattr(request, "client", None), "host", "") or ""
        ok, message = handlers.unlock(given, client)
        return (
            ok,
            gr.update(visible=not ok),
            gr.update(visible=ok),
            message,
            "",
            handlers.admin_status(ok),
        )

    for trigger in (password.submit, unlock.click):
        trigger(
            do_unlock,
            password,
            [unlocked, login, panel, login_message, password, status],
            api_visibility="private",
            concurrency_id="qa-admin-login",
            concurrency_limit=1,
        )
    lock.click(
        lambda: (False, gr.update(visible=True), gr.update(visible=False), "Locked.", "", "", "", ""),
        None,
        [unlocked, login, panel, login_message, upload_report, index_report, status, feedback_report],
        api_visibility="private",
        queue=False,
    )

    def do_add(is_unlocked: bool, uploaded, replace_existing: bool):
        return handlers.add_uploads(is_unlocked, uploaded, replace_existing), None, handlers.admin_status(is_unlocked)

    add.click(
        do_add,
        [unlocked, files, replace],
        [upload_report, files, status],
        api_visibility="private",
        concurrency_id="qa-admin",
        concurrency_limit=1,
    )

    show_feedback.click(
        handlers.feedback_report,
        unlocked,
        feedback_report,
        api_visibility="private",
        concurrency_id="qa-admin",
        concurrency_limit=1,
    )

    def do_update(is_unlocked: bool, from_scratch: bool, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        report = handlers.update_index(is_unlocked, from_scratch, progress)
        return (
            report,
            handlers.admin_status(is_unlocked),
            handlers.summary(),
            gr.update(choices=handlers.document_choices()),
        )

    update.click(
        do_update,
        [unlocked, rebuild],
        [index_report, status, summary, docs],
        show_progress_on=[index_report],
        api_visibility="private",
        concurrency_id="qa-index",
        concurrency_limit=1,
    )
