"""Sentence spans inside a text, for highlighting the sentence that answers."""

from __future__ import annotations

import re

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
}
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"[.!?…。！？]+[\"'”’»)\]]*(?=\s+|$)|\n\s*\n|\n")
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of the sentences of `text`, whitespace trimmed, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        piece = text[start:end]
        if match.group().startswith(".") and _is_abbreviation(piece):
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
