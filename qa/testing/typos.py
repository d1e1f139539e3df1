"""Questions with one typo of the kind people make, for measuring the spelling fallback
(qa.retrieval.spelling): `python -m bench.typos` asks them with the fallback on and off.

The typo swaps the 3rd and 4th letters of the question's longest word of seven letters or more
("education" -> "edcuation"), unless that makes a word the corpus uses.
"""

from __future__ import annotations

from collections.abc import Callable

from qa.terms import TOKEN

MIN_LETTERS = 7


def misspelt(question: str, known: Callable[[str], bool]) -> str | None:
    """The question with its longest word's 3rd and 4th letters swapped, or None when it has no
    word long enough or the swap changes nothing or makes a word for which `known` (a word the
    corpus uses?) is true."""
    words = [w for w in TOKEN.findall(question) if len(w) >= MIN_LETTERS and w.isalpha()]
    if not words:
        return None
    word = max(words, key=len)
    typo = word[:2] + word[3] + word[2] + word[4:]
    if typo == word or known(typo.lower()):
        return None
    return question.replace(word, typo, 1)
