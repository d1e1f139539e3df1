"""A conversation as Markdown: each question, its answer with citation markers, and the
cited passages (title, author, source, exact span, and the command that prints the span).

Corpus text is escaped, so that markup in a document shows as text in any Markdown viewer
and never becomes a link, a heading or HTML; the citation markers stay plain `[n]`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence

from qa.answering.answer import phrase_ranges, with_marks
from qa.types import Answer, Passage, Turn

TITLE = "Conversation with the corpus"

# Characters that Markdown (CommonMark and GitHub's) may read as markup anywhere in a line.
_INLINE = re.compile(r"([\\`*_\[\]<>&~|])")
# ...and at the start of a line: headings, quotes, lists, rules, tables, code fences.
_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])", flags=re.M)
_MARKER = re.compile(r"\\\[(\d{1,3})\\\]")


def escape(text: str) -> str:
    """`text` as literal Markdown text."""
    escaped = _INLINE.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)


def escape_answer(text: str) -> str:
    """An answer as literal Markdown text, its citation markers `[n]` left readable."""
    return _MARKER.sub(r"[\1]", escape(text))


def to_markdown(
    turns: Sequence[Turn], index: Mapping[str, object] | None = None, saved: dt.datetime | None = None
) -> str:
    """A conversation's turns as a Markdown document."""
    saved = saved or dt.datetime.now(dt.timezone.utc)
    head = [f"# {TITLE}", ""]
    meta = [f"Saved {saved.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", f"{len(turns)} question(s)"]
    if index:
        meta.append(
            f"index {escape(str(index.get('snapshot', '')))}, "
            f"{index.get('documents', '?')} documents, model {escape(str(index.get('model', '')))}"
        )
    head += [" · ".join(meta), ""]
    body: list[str] = []
    for number, turn in enumerate(turns, 1):
        body += [f"## {number}. {escape(turn.question)}", ""]
        if turn.answer is None:
            body += ["*(asked earlier; no answer was recorded)*", ""]
            continue
        body += answer_markdown(turn.answer, number)
    return "\n".join(head + body).rstrip() + "\n"


def answer_markdown(answer: Answer, turn: int = 1) -> list[str]:
    """The lines of one answer: searched text, notes, the answer, then its sources."""
    lines: list[str] = []
    if answer.searched_query:
        lines += [f"*Searched for: {escape(answer.searched_query)}*", ""]
    lines += [f"*Note: {escape(note)}*" for note in answer.notes]
    if answer.notes:
        lines.append("")
    lines += [_answer_text(answer) if answer.passages else f"**{escape(answer.answer)}**", ""]
    if answer.passages:
        lines += [f"### Sources of answer {turn} ({answer.mode} retrieval)", ""]
        for passage in answer.passages:
            lines += passage_markdown(passage)
    return lines


def _answer_text(answer: Answer) -> str:
    """The short answer, escaped, with the reader's answer phrases in bold."""
    ranges = phrase_ranges(answer)
    if not ranges:
        return escape_answer(answer.answer)
    return with_marks(answer.answer, ranges, "**", "**", escape_answer)


def passage_markdown(passage: Passage) -> list[str]:
    """A cited passage: its citation, then the passage as a quote with the best sentence in bold."""
    author = escape(passage.author) if passage.author else "author unknown"
    date = f" ({escape(passage.date)})" if passage.date else ""
    page = f", {passage.where}" if passage.where else ""
    lines = [
        f"**[{passage.rank}] {escape(passage.title or passage.source)}** — {author}{date}  ",
        f"`{_code(passage.source)}`{page}, characters {passage.start}–{passage.end} · score {passage.score:.4f} · "
        f"`qa show {_code(passage.doc_id)} --span {passage.start}:{passage.end}`",
        "",
    ]
    lines += [f"> {line}" if line else ">" for line in _quoted(passage).split("\n")]
    lines.append("")
    return lines


def _quoted(passage: Passage) -> str:
    """The passage text, escaped, with its highlighted sentence in bold (line by line)."""
    text = passage.text
    start, end = passage.highlight.start - passage.start, passage.highlight.end - passage.start
    if not 0 <= start < end <= len(text):
        return escape(text)
    before, sentence, after = text[:start], text[start:end], text[end:]
    bold = "\n".join(_bold(line) for line in sentence.split("\n"))
    return escape(before) + bold + escape(after)


def _bold(line: str) -> str:
    core = line.strip()
    if not core:
        return line
    lead = line[: len(line) - len(line.lstrip())]
    trail = line[len(line.rstrip()) :]
    return f"{lead}**{escape(core)}**{trail}"


def _code(text: str) -> str:
    """Text for an inline code span (which cannot hold a backtick)."""
    return text.replace("`", "'")


def export_filename(saved: dt.datetime | None = None) -> str:
    saved = saved or dt.datetime.now(dt.timezone.utc)
    return f"qa-chat-{saved.astimezone(dt.timezone.utc):%Y%m%d-%H%M%S}.md"
