"""Answers and corpus warnings as a terminal shows them (`qa ask`, `qa chat`, the server's start)."""

from __future__ import annotations

import os
import textwrap


def answer_text(answer, width: int, bold: bool = False) -> str:
    """The short answer wrapped to `width`, its answer phrases in bold with `bold` (a terminal)."""
    from qa.answering.answer import phrase_ranges, with_marks

    # Wrapping only turns spaces into line breaks, so the phrases' offsets still hold.
    text = textwrap.fill(answer.answer, width, break_on_hyphens=False, break_long_words=False)
    return with_marks(text, phrase_ranges(answer), "\x1b[1m", "\x1b[22m") if bold else text


def format_answer(answer, width: int | None = None, bold: bool = False) -> str:
    """The short answer (its answer phrases in bold with `bold`, for a terminal), then the passages."""
    width = width or min(100, terminal_width())
    lines = [answer_text(answer, width, bold)]
    for note in answer.notes:
        lines.append(f"(note: {note})")
    if answer.searched_query:
        lines.append(f"(searched for: {answer.searched_query})")
    for p in answer.passages:
        lines += ["", format_passage(p, width)]
    return "\n".join(lines)


def format_passage(p, width: int) -> str:
    """A passage with its citation, its text and its best sentence, as `qa ask` prints it."""
    author = p.author or "author unknown"
    page = f", {p.where}" if p.where else ""
    lines = [
        f"[{p.rank}] {p.title} — {author}{' (' + p.date + ')' if p.date else ''}",
        f"    {p.source}{page}, characters {p.start}–{p.end}   score {p.score:.4f}   "
        f"(`qa show {p.doc_id} --span {p.start}:{p.end}`)",
    ]
    for para in p.text.split("\n"):
        if para.strip():
            lines.append(textwrap.fill(para, width, initial_indent="    ", subsequent_indent="    "))
    lines.append(
        textwrap.fill(
            f"best sentence ({p.highlight.start}–{p.highlight.end}): {p.highlight.text}",
            width,
            initial_indent="    » ",
            subsequent_indent="      ",
        )
    )
    return "\n".join(lines)


def corpus_warnings(status, update_hint: str = "run `qa index` to take them in", shown: int = 5) -> list[str]:
    """Files changed since the index was built (for `qa index`), then files that cannot be read,
    each with its reason (which `qa index` cannot fix: only the reason says what can)."""
    lines = []
    if status.changed:
        names = ", ".join(status.changed[:3]) + ("…" if len(status.changed) > 3 else "")
        lines.append(
            f"warning: {len(status.changed)} corpus file(s) new, changed or removed since the index was built "
            f"({names}); {update_hint}"
        )
    if status.failed:
        lines.append(
            f"warning: {len(status.failed)} corpus file(s) could not be read, so the index lacks their content:"
        )
        lines += [f"  {f['path']}: {f['reason']}" for f in status.failed[:shown]]
        if len(status.failed) > shown:
            lines.append(f"  … and {len(status.failed) - shown} more (`qa docs` lists them all)")
    return lines


def terminal_width() -> int:
    """The terminal's width, at least 40 (a terminal may report 0 columns, e.g. a fresh pty)."""
    try:
        columns = os.get_terminal_size().columns
    except OSError:
        return 100
    return columns if columns >= 40 else (100 if columns == 0 else 40)
