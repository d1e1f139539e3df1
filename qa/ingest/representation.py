"""What is embedded and BM25-indexed for a chunk: its document's context, then its own text.

A chunk's text and span stay exactly the document's own (citations index them); only its
*representation* carries context, as a prefix: the document's title and, for Markdown and HTML,
the headings above the chunk. A paragraph about "the city's population" then says which city.

The represented text is always `prefix + chunk.text`, never text inserted inside or after the
chunk, so an offset inside the chunk is `len(prefix)` further in the represented text (and a
sentence's tokens follow the prefix's tokens).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence

from qa.config import CONTEXTS
from qa.types import Chunk, Document

# A prefix never takes more than `context_tokens` model tokens (QA_CONTEXT_TOKENS: a long title or
# deep heading path must not crowd out the chunk's own words, and every token costs encoder time),
# nor more than the model's window leaves beside the chunk.
DEFAULT_CONTEXT_TOKENS = 16  # as Settings.context_tokens
_SEPARATOR = "\n"  # between the title and each heading
_END = "\n\n"  # between the prefix and the chunk's text
_LEADING_MARKUP = re.compile(r"[#\s]*")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _opens_with(text: str, words: str) -> bool:
    """`text` starts with `words`, ending at a word boundary."""
    return text.startswith(words) and (len(text) == len(words) or not text[len(words)].isalnum())


def heading_outline(document: Document) -> list[tuple[int, tuple[str, ...]]]:
    """For each heading in order: (its start, the heading path it opens, outermost first)."""
    outline: list[tuple[int, tuple[str, ...]]] = []
    path: list[tuple[int, str]] = []  # (level, title)
    for heading in document.headings:
        while path and path[-1][0] >= heading.level:
            path.pop()
        path.append((heading.level, document.text[heading.start : heading.end]))
        outline.append((heading.start, tuple(title for _, title in path)))
    return outline


def headings_above(outline: Sequence[tuple[int, tuple[str, ...]]], offset: int) -> tuple[str, ...]:
    """The nearest heading of each level that starts before `offset`."""
    index = bisect.bisect_left([start for start, _ in outline], offset)
    return outline[index - 1][1] if index else ()


def context_parts(
    document: Document,
    chunk: Chunk,
    context: str,
    outline: Sequence[tuple[int, tuple[str, ...]]] | None = None,
) -> list[str]:
    """The title and headings (outermost first) to put before `chunk`, without repeats.

    A part the chunk's text starts with is left out: a first chunk that opens with the
    title does not need it twice. `outline` is heading_outline(document), when known.
    """
    if context not in CONTEXTS:
        raise ValueError(f"unknown chunk context {context!r}")
    if context == "none":
        return []
    parts = [document.title] if document.title.strip() else []
    # A chunk that opens with a heading line is in that heading's section.
    markup = _LEADING_MARKUP.match(chunk.text).end()
    if context == "title+headings" and document.headings:
        outline = heading_outline(document) if outline is None else outline
        parts += headings_above(outline, chunk.start + markup + 1)
    opening = _norm(chunk.text[markup : markup + 400])
    out: list[str] = []
    seen: set[str] = set()
    for part in parts:
        key = _norm(part)
        if not key or key in seen or _opens_with(opening, key):
            continue
        seen.add(key)
        out.append(" ".join(part.split()))
    return out


def context_prefix(
    document: Document,
    chunk: Chunk,
    context: str,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    outline: Sequence[tuple[int, tuple[str, ...]]] | None = None,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> str:
    """The prefix of `chunk`'s represented text ("" for none); `prefix + chunk.text` fits the model's window.

    `count_tokens` counts a text's model tokens, special tokens included, as the chunker does.
    """
    parts = context_parts(document, chunk, context, outline)
    if not parts:
        return ""
    words = _SEPARATOR.join(parts).split(" ")

    def prefix(n: int) -> str:
        return " ".join(words[:n]).strip() + _END if n else ""

    specials = count_tokens("")

    def short(n: int) -> bool:  # the prefix alone within its budget: a short text to count
        return count_tokens(prefix(n)) - specials <= context_tokens

    def whole(n: int) -> bool:  # the prefix and the chunk within the window: the chunk counted again
        return count_tokens(prefix(n) + chunk.text) <= max_tokens

    # The longest run of leading words that passes both. Each test holds for fewer words when it
    # holds for more, so the longest that is short enough is the answer whenever it fits the
    # window, which is the usual case: the chunk is counted once rather than at every step.
    n = _longest(short, len(words))
    return prefix(n) if whole(n) else prefix(_longest(lambda m: short(m) and whole(m), n - 1))


def _longest(test: Callable[[int], bool], most: int) -> int:
    """The largest n in 0..most for which test(n) holds, for a test that holds for every n below
    one that does (0 is taken to hold)."""
    if most <= 0 or test(most):
        return max(most, 0)
    lo, hi = 0, most - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if test(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


class Representer:
    """The represented texts of a document's chunks, for one context setting and one model's tokens."""

    def __init__(
        self,
        context: str,
        count_tokens: Callable[[str], int],
        max_tokens: int,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    ) -> None:
        if context not in CONTEXTS:
            raise ValueError(f"unknown chunk context {context!r}")
        self.context = context
        self.context_tokens = context_tokens
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens

    def prefixes(self, document: Document, chunks: Sequence[Chunk]) -> list[str]:
        outline = heading_outline(document) if self.context == "title+headings" else None
        return [
            context_prefix(document, c, self.context, self.count_tokens, self.max_tokens, outline, self.context_tokens)
            for c in chunks
        ]

    def texts(self, document: Document, chunks: Sequence[Chunk]) -> list[str]:
        """`prefix + chunk.text` for each chunk: what is embedded and indexed."""
        return [p + c.text for p, c in zip(self.prefixes(document, chunks), chunks, strict=True)]
