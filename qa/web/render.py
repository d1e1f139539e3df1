"""HTML for the web chat: answers, source cards, the document viewer, reports.

Every piece of document or question text goes through `esc` (nothing here relies on
Markdown or on the browser's sanitiser), so text holding HTML or JavaScript shows as text.
Links carry what the page script needs in their fragment (`#qa-open?doc=…`), because the
chat's sanitiser drops data-* attributes.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from qa.answering.answer import with_marks
from qa.types import Answer, Document, Passage

if TYPE_CHECKING:
    from qa.web.originals import PageView

# The viewer shows at most this many characters of a document around the cited span.
VIEWER_WINDOW_CHARS = 200_000
NO_DOCUMENT_OPEN = (
    '<div class="qa-doc qa-doc-empty"><p>Choose <b>Open in document</b> on a source card to read '
    "the passage in its document, with the cited span highlighted.</p></div>"
)
# Characters that template engines (JS template strings, Handlebars) could interpret.
_TEMPLATE_CHARS = str.maketrans({"{": "&#123;", "}": "&#125;", "$": "&#36;", "`": "&#96;", "\\": "&#92;"})


def esc(text: object) -> str:
    """Text as HTML text or attribute value: markup, quotes and template syntax neutralised."""
    return html.escape("" if text is None else str(text), quote=True).translate(_TEMPLATE_CHARS)


def card_id(turn: int, rank: int) -> str:
    return f"qa-t{int(turn)}-p{int(rank)}"


def open_link(passage: Passage) -> str:
    """The fragment the page script turns into "open this document at this span"."""
    query = urlencode(
        {
            "doc": passage.doc_id,
            "start": passage.start,
            "end": passage.end,
            "hl_start": passage.highlight.start,
            "hl_end": passage.highlight.end,
        }
    )
    return f"#qa-open?{query}"


# -- chat messages ---------------------------------------------------------------------------
def render_question(question: str) -> str:
    return f'<div class="qa-question">{esc(question)}</div>'


def render_message(text: str, kind: str = "error") -> str:
    """A plain message in the conversation (an error, a hint)."""
    return f'<div class="qa-reply qa-{esc(kind)}"><p>{esc(text)}</p></div>'


def render_reply(answer: Answer, turn: int, feedback: bool = False) -> str:
    """The answer with linked citation markers, what was searched, then one card per passage
    (each with a "This passage answered it" link when feedback is on)."""
    parts = [f'<div class="qa-reply" id="qa-t{int(turn)}">']
    if answer.passages:
        parts.append(f'<p class="qa-answer">{_answer_html(answer, turn)}</p>')
        if answer.more:
            parts.append(
                '<details class="qa-more"><summary>More from the sources</summary>'
                f"<p>{_answer_html(answer, turn, answer.more)}</p></details>"
            )
    else:
        parts.append(f'<p class="qa-answer qa-nothing">{esc(answer.answer)}</p>')
    if answer.searched_query:
        parts.append(
            '<p class="qa-searched"><span class="qa-label">Searched for:</span> '
            f"<q>{esc(answer.searched_query)}</q></p>"
        )
    for note in answer.notes:
        parts.append(f'<p class="qa-note">Note: {esc(note)}</p>')
    if answer.passages:
        count = len(answer.passages)
        parts.append(
            f'<div class="qa-sources"><p class="qa-sources-label">{count} source passage'
            f"{'s' if count != 1 else ''} · {esc(answer.mode)} retrieval</p>"
        )
        parts.extend(render_card(p, turn, feedback) for p in answer.passages)
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def answered_link(turn: int, rank: int) -> str:
    """The fragment the page script turns into "passage `rank` of answer `turn` answered it"."""
    return f"#qa-answered?turn={int(turn)}&rank={int(rank)}"


def render_card(passage: Passage, turn: int, feedback: bool = False) -> str:
    meta = [esc(passage.author) if passage.author else '<span class="qa-unknown">author unknown</span>']
    meta.append(esc(passage.date) if passage.date else '<span class="qa-unknown">date unknown</span>')
    where = esc(passage.source) + (f", {esc(passage.where)}" if passage.where else "")
    details = ", ".join(f"{esc(name)} {value:.4g}" for name, value in sorted(passage.scores.items()))
    open_doc = f'<a class="qa-open" href="{esc(open_link(passage))}" role="button">Open in document</a>'
    return (
        f'<article class="qa-card" id="{card_id(turn, passage.rank)}">'
        f'<div class="qa-card-head"><span class="qa-rank">[{int(passage.rank)}]</span> '
        f'<span class="qa-title">{esc(passage.title or passage.source)}</span>'
        f'<span class="qa-score" title="{esc(details)}">score {passage.score:.4f}</span></div>'
        f'<div class="qa-meta">{" · ".join(meta)}</div>'
        f'<blockquote class="qa-passage">{_passage_html(passage)}</blockquote>'
        f'<div class="qa-card-foot"><span class="qa-where">{where}, characters '
        f"{int(passage.start)}–{int(passage.end)}</span> "
        + (
            '<span class="qa-actions">'
            f'<a class="qa-answered" href="{esc(answered_link(turn, passage.rank))}" role="button" '
            'title="Tell the corpus\'s analysts that this passage answered the question">'
            "This passage answered it</a> "
            f"{open_doc}</span>"
            if feedback
            else open_doc
        )
        + "</div></article>"
    )


def _passage_html(passage: Passage) -> str:
    """The passage text with its answering sentence in <mark>."""
    text = passage.text
    start = passage.highlight.start - passage.start
    end = passage.highlight.end - passage.start
    if not 0 <= start < end <= len(text):
        return esc(text)
    sentence = esc(text[start:end])
    return f'{esc(text[:start])}<mark class="qa-hl">{sentence}</mark>{esc(text[end:])}'


def _answer_html(answer: Answer, turn: int, text: str | None = None) -> str:
    """Escaped answer text (or `text`, its "more"); each citation marker "[n]" becomes a link to card n.

    The answer is the passages' best sentences, each followed by " [rank]". Markers are
    found by matching those sentences, so a "[3]" inside a quoted sentence stays text.
    """
    by_rank = {p.rank: p for p in answer.passages}
    text = answer.answer if text is None else text
    pieces: list[str] = []
    pos = 0
    while pos < len(text):
        for rank, passage in by_rank.items():
            sentence = " ".join(passage.highlight.text.split())
            part = f"{sentence} [{rank}]"
            if text.startswith(part, pos):
                pieces.append(f"{_sentence_html(sentence, passage)} {_cite(turn, rank)}")
                pos += len(part)
                break
        else:
            break
        if text.startswith(" ", pos):
            pieces.append(" ")
            pos += 1
    if pos >= len(text):
        return "".join(pieces)
    # An answer in another shape: link any marker naming a passage that exists.
    out, last = [], 0
    for match in re.finditer(r"\[(\d{1,3})\]", text):
        rank = int(match.group(1))
        if rank in by_rank:
            out.append(esc(text[last : match.start()]))
            out.append(_cite(turn, rank))
            last = match.end()
    out.append(esc(text[last:]))
    return "".join(out)


def _sentence_html(sentence: str, passage: Passage) -> str:
    """A sentence of the short answer, escaped, with the reader's answer phrase in bold."""
    phrase = passage.highlight.answer
    words = " ".join(phrase.text.split()) if phrase is not None else ""
    at = sentence.find(words) if words else -1
    if at < 0:
        return esc(sentence)
    return with_marks(sentence, [(at, at + len(words))], '<b class="qa-phrase">', "</b>", esc)


def _cite(turn: int, rank: int) -> str:
    return f'<a class="qa-cite" href="#{card_id(turn, rank)}" title="Go to source {rank}">[{rank}]</a>'


# -- the document viewer ------------------------------------------------------------------
def render_document(
    doc: Document,
    start: int,
    end: int,
    hl_start: int | None = None,
    hl_end: int | None = None,
    page: PageView | None = None,
) -> str:
    """The whole document (or a large window of it) with text[start:end] highlighted; for a PDF,
    above it, the `page` the citation comes from, as printed, and a link to the original there."""
    text = doc.text
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    if end < start:
        start, end = end, start
    if hl_start is None or hl_end is None or not start <= hl_start < hl_end <= end:
        hl_start = hl_end = None
    lo, hi = 0, len(text)
    if len(text) > VIEWER_WINDOW_CHARS:
        half = max(0, (VIEWER_WINDOW_CHARS - (end - start)) // 2)
        lo, hi = max(0, start - half), min(len(text), end + half)
    meta = [esc(doc.author) or '<span class="qa-unknown">author unknown</span>']
    meta.append(esc(doc.date) if doc.date else '<span class="qa-unknown">date unknown</span>')
    if doc.publisher:
        meta.append(esc(doc.publisher))
    place = doc.place(start, end)
    link = ""
    if re.match(r"https?://", doc.url or "", flags=re.I):
        link = f' · <a href="{esc(doc.url)}" target="_blank" rel="noopener noreferrer">original</a>'
    head = (
        f'<div class="qa-doc-head"><p class="qa-doc-title">{esc(doc.title or doc.source)}</p>'
        f'<p class="qa-meta">{" · ".join(meta)}</p>'
        f'<p class="qa-meta">{esc(doc.source)}{link} · cited characters {start}–{end}'
        f"{f' ({esc(place.label())})' if place else ''} of {len(text)}</p>{_original_link(page)}</div>"
    )
    if hl_start is not None and hl_end is not None:
        span = (
            f"{esc(text[start:hl_start])}<mark class='qa-sentence'>{esc(text[hl_start:hl_end])}</mark>"
            f"{esc(text[hl_end:end])}"
        )
    else:
        span = esc(text[start:end])
    body = (
        (f'<p class="qa-note">… {lo} characters before this window are not shown</p>' if lo else "")
        + f'<div class="qa-doc-body">{esc(text[lo:start])}<mark class="qa-span" id="qa-doc-span">{span}</mark>'
        + f"{esc(text[end:hi])}</div>"
        + (f'<p class="qa-note">… {len(text) - hi} more characters not shown</p>' if hi < len(text) else "")
    )
    return f'<div class="qa-doc" data-doc="{esc(doc.doc_id)}">{head}{_page_html(doc, page)}{body}</div>'


def _original_link(page: PageView | None) -> str:
    if page is None or not page.original_url:
        return ""
    return (
        f'<p class="qa-meta"><a class="qa-original" href="{esc(page.original_url)}" target="_blank" '
        f'rel="noopener noreferrer">Open the original PDF at page {int(page.page)}</a></p>'
    )


def _page_html(doc: Document, page: PageView | None) -> str:
    """The cited page as a picture, the sentence marked on it (or why it is not)."""
    if page is None:
        return ""
    if page.problem:
        return f'<p class="qa-note qa-page-note">{esc(page.problem)}; the text is below.</p>'
    note = (
        "the cited sentence is marked"
        if page.marked
        else "the cited sentence could not be found on the page, so nothing is marked"
    )
    return (
        f'<details class="qa-page-view" open><summary>Page {int(page.page)} as printed: {note}</summary>'
        f'<img class="qa-page" src="{esc(page.image_url)}" '
        f'alt="Page {int(page.page)} of {esc(doc.source)}" loading="lazy"></details>'
    )


def render_viewer_message(text: str) -> str:
    return f'<div class="qa-doc qa-doc-empty"><p>{esc(text)}</p></div>'


# -- corpus summary and analyst reports -----------------------------------------------------
def format_updated(iso: str) -> str:
    """'2025-11-21T13:40:05+00:00' -> '2025-11-21 13:40 UTC' (or the text as it is)."""
    try:
        when = dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso or "unknown"
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def render_summary(stats: dict, documents: Sequence, failed: Sequence[dict] = ()) -> str:
    """What the corpus holds: counts, when the index was updated, the document list, and the
    files the last update could not read, with the reason."""
    n_docs, n_chunks = int(stats.get("documents", 0)), int(stats.get("chunks", 0))
    items = "".join(
        f'<li><span class="qa-title">{esc(d.title or d.source)}</span> — '
        f"{esc(d.author) if d.author else '<span class=qa-unknown>author unknown</span>'}"
        f"{' · ' + esc(d.date) if d.date else ''} "
        f'<span class="qa-meta">({esc(d.source)}, {int(d.chunks)} chunks)</span></li>'
        for d in documents
    )
    return (
        '<div class="qa-summary">'
        f"<p><b>{n_docs}</b> document{'s' if n_docs != 1 else ''} · <b>{n_chunks}</b> "
        f"chunk{'s' if n_chunks != 1 else ''} · index updated {esc(format_updated(stats.get('updated', '')))}"
        f' <span class="qa-meta">(model {esc(stats.get("model", ""))})</span></p>'
        f"<details><summary>Documents in the corpus</summary><ul>{items}</ul></details>"
        f"{_failed_files(failed)}</div>"
    )


def _failed_files(failed: Sequence[dict]) -> str:
    if not failed:
        return ""
    items = "".join(
        f'<li><span class="qa-meta">{esc(f.get("path", ""))}</span>: {esc(f.get("reason", ""))}</li>' for f in failed
    )
    return (
        f'<details class="qa-failed"><summary>{len(failed)} file{"s" if len(failed) != 1 else ""} '
        f"could not be read at the last update</summary><ul>{items}</ul></details>"
    )


def render_table(rows: Iterable[Sequence[object]], header: Sequence[str], caption: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        f'<tr class="qa-status-{esc(str(row[1]).split()[0] if len(row) > 1 and row[1] else "")}">'
        + "".join(f"<td>{esc(cell)}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<table class="qa-report">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_index_report(report: dict) -> str:
    """The per-file result of an index update, with totals."""
    rows: list[tuple[str, str, str]] = []
    for status in ("added", "changed", "removed"):
        rows += [(source, status, "") for source in report.get(status, [])]
    rows += [(item.get("path", ""), "failed", item.get("reason", "")) for item in report.get("failed", [])]
    unchanged = report.get("unchanged", [])
    summary = (
        f"{len(report.get('added', []))} added, {len(report.get('changed', []))} changed, "
        f"{len(report.get('removed', []))} removed, {len(unchanged)} unchanged, "
        f"{len(report.get('failed', []))} failed; {report.get('chunks_embedded', 0)} chunks embedded, "
        f"{report.get('chunks_total', 0)} in the index ({report.get('documents_total', 0)} documents); "
        f"{float(report.get('seconds', 0.0)):.1f} s"
    )
    parts = [f'<div class="qa-index-report"><p class="qa-ok">{esc(summary)}</p>']
    if rows:
        parts.append(render_table(rows, ("file", "status", "detail")))
    elif not unchanged:
        parts.append("<p>The corpus is empty.</p>")
    else:
        parts.append("<p>Nothing changed: the index already matches the corpus.</p>")
    if unchanged:
        items = "".join(f"<li>{esc(s)}</li>" for s in unchanged)
        parts.append(f"<details><summary>{len(unchanged)} unchanged</summary><ul>{items}</ul></details>")
    parts.extend(f'<p class="qa-note">Note: {esc(note)}</p>' for note in report.get("notes", []))
    parts.append("</div>")
    return "".join(parts)


def render_feedback_report(report: dict, top: int = 15) -> str:
    """`qa report --json` for the analysts' tab: totals, subjects most failed first, passages, versions."""
    asked = report["asked"]
    share = f" ({report['refused'] / asked:.0%})" if asked else ""
    parts = [
        f'<div class="qa-feedback-report"><p><b>{asked}</b> questions asked: <b>{report["refused"]}</b> '
        f"refused (nothing found){share}, <b>{report['thumbed_down']}</b> thumbed down, {report['good']} "
        f"thumbed up, {report['answered']} with a passage marked as the answer.</p>"
    ]
    if not asked and not report["thumbed_down"] and not report["answered"]:
        parts.append("<p>No feedback recorded yet.</p></div>")
        return "".join(parts)
    rows = [
        (
            s["asked"],
            s["refused"],
            s["thumbed_down"],
            s["good"],
            s["answered"],
            " · ".join(s["questions"][:3]) + (f" (+{len(s['questions']) - 3} more)" if len(s["questions"]) > 3 else ""),
            " · ".join(s["now_answered"]),
        )
        for s in report["subjects"][:top]
    ]
    header = ("asked", "refused", "down", "up", "answered", "similar questions", "answered now")
    parts.append(render_table(rows, header, "By subject, most failed first"))
    rows = [
        (p["shown"], p["in_thumbed_down"], f"{p['doc_id']} {p['start']}:{p['end']}") for p in report["passages"][:top]
    ]
    parts.append(render_table(rows, ("shown", "in thumbed-down answers", "passage"), "Passages shown"))
    rows = [
        (
            t["index_version"] + (" (current)" if t["current"] else ""),
            t["first_record"],
            t["asked"],
            f"{t['refused_share']:.0%}",
            f"{t['thumbed_down_share']:.0%}",
        )
        for t in report["trend"]
    ]
    header = ("index version", "first question", "asked", "refused", "thumbed down")
    parts.append(render_table(rows, header, "By index version, oldest first"))
    parts.append("</div>")
    return "".join(parts)
