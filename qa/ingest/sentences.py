"""Sentence spans inside a text, for highlighting the sentence that answers."""

from __future__ import annotations

import re

# When the spans change, bump qa.versions.SPLITTER_VERSION: indexes and cached sentence vectors
# made with other spans are then made again.

# Words that end with a full stop without ending a sentence.
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "cf",
    "al",
    "no",
    "vol",
    "fig",
    "gen",
    "col",
    "lt",
    "capt",
    "cmdr",
    "adm",
    "sgt",
    "gov",
    "sen",
    "rep",
    "u.s",
    "u.k",
    "u.n",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "inc",
    "ltd",
    "co",
    "corp",
    "approx",
    "est",
    "p",
    "pp",
    "rev",
    "mt",
    "fr",
}
_TERMINAL = r"[.!?…。！？]"
_CLOSING = r"[\"'”’»)\]]*"  # closing quotes and brackets after the terminal punctuation
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(rf"{_TERMINAL}+{_CLOSING}(?=\s+|$)|\n\s*\n|\n")
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")
# A line that starts a block of its own: a heading, list item, quote or table row.
_BLOCK_START = re.compile(r"(?:[#>|]|[-*+•]\s)")
_NUMBERED = re.compile(r"\d+[.)]\s")
_LIST_NUMBER = re.compile(r"\d+\.")  # "1." opening a numbered item is no sentence of its own
_ENDS_SENTENCE = re.compile(rf"(?:{_TERMINAL}|[:;]){_CLOSING}$")
WRAPPED_LINE = 40  # a line this long that stops mid-sentence was wrapped, not ended


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of the sentences of `text`, whitespace trimmed, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        piece = text[start:end]
        if match.group().startswith(".") and (_is_abbreviation(piece) or _LIST_NUMBER.fullmatch(piece.strip())):
            continue
        if match.group() == "\n" and _wrapped(piece, text[end:]):
            continue
        # Only split where the next sentence starts like one (not "3.5" or "e.g. the").
        nxt = text[end:].lstrip()
        if (
            nxt
            and match.group()[0] not in "\n"
            and not (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in "\"'“‘«([" or not nxt[0].isalpha())
        ):
            continue
        _add(spans, text, start, end)
        start = end
    _add(spans, text, start, len(text))
    return spans


def _wrapped(piece: str, rest: str) -> bool:
    """A single line break inside a sentence, as Markdown reads one: hard-wrapped text ("with
    the\\nRussian Federation"), or a subscript set on a line of its own ("an O\\n2 partial pressure").
    A line that ends a sentence, a heading or table row, and a line that starts a list item, a
    heading, a quote or a table row keep their break."""
    line = piece.rstrip().rpartition("\n")[2].strip()
    nxt = rest.lstrip(" \t")
    if not line or not nxt or _ENDS_SENTENCE.search(line) or line[0] in "#|" or _BLOCK_START.match(nxt):
        return False
    if line.count("(") > line.count(")"):  # inside brackets: "Trioxygen (O\\n3) is ozone"
        return True
    if _NUMBERED.match(nxt) and (len(line) < WRAPPED_LINE or _BLOCK_START.match(line) or _NUMBERED.match(line)):
        return False
    if nxt[0].islower() or nxt[0].isdigit():
        return True
    return len(line) >= WRAPPED_LINE and (line[-1].isalnum() or line[-1] in ",-–")


def _is_abbreviation(piece: str) -> bool:
    m = _WORD_BEFORE.search(piece.rstrip())
    if not m:
        return False
    word = m.group(1).lower()
    # Single letters are initials ("W. Baulch"), except a lone "I".
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and word != "i")


def _add(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
