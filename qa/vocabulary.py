"""The corpus's words as written (not stemmed), for spelling suggestions.

Each store keeps the distinct words of its chunks' search text that a misspelling could be
corrected to: alphabetic words of at least MIN_LENGTH letters, in lower case (stop words are
left to the caller). A question's misspelt word is then looked up against the words that begin
with its letter (people rarely mistype the first one) and differ from it by at most a few edits
(Damerau-Levenshtein: a swap of two adjacent letters is one edit), computed by rapidfuzz.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from qa.terms import TOKEN

MIN_LENGTH = 4  # shorter words are too close to too many others to correct


def spellable(word: str) -> bool:
    """Whether a lower-case word is one the vocabulary keeps (and a question's word one to correct)."""
    return len(word) >= MIN_LENGTH and word.isalpha()


def words_of(texts: Iterable[str]) -> set[str]:
    """The distinct vocabulary words of texts."""
    out: set[str] = set()
    for text in texts:
        out.update(w for w in TOKEN.findall(text.lower()) if spellable(w))
    return out


def nearest_words(word: str, words: Sequence[str], max_edits: int) -> list[tuple[str, int]]:
    """(vocabulary word, edits) for each of `words` within max_edits of `word`, nearest first.

    `words` are the candidates already narrowed to the word's first letter (any order)."""
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein

    found = process.extract(word, words, scorer=DamerauLevenshtein.distance, score_cutoff=max_edits, limit=None)
    return sorted(((w, int(d)) for w, d, _ in found if w != word), key=lambda x: (x[1], x[0]))


class Vocabulary:
    """A set of vocabulary words, grouped by first letter for lookups."""

    def __init__(self, words: Iterable[str]) -> None:
        self._by_letter: dict[str, list[str]] = {}
        for w in sorted(set(words)):
            self._by_letter.setdefault(w[0], []).append(w)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_letter.values())

    def __iter__(self):
        for letter in sorted(self._by_letter):
            yield from self._by_letter[letter]

    def near(self, word: str, max_edits: int) -> list[tuple[str, int]]:
        """The words within max_edits of `word` that share its first letter, nearest first."""
        if not word:
            return []
        return nearest_words(word, self._by_letter.get(word[0], []), max_edits)
