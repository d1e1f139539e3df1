"""Spelling fallback: a question's word that the corpus never uses and that is no English word
is searched as the nearest word the corpus does use ("povertly" -> "poverty").

A word is corrected only when all of these hold, so that a rare but real word is searched as
asked (a question about something the corpus lacks must stay one the relevance gate can refuse):

* it is alphabetic, of at least MIN_WORD letters, not a stop word,
  and written in lower case or capitalised (not an acronym such as "GMO" or a name such as "aPKCz");
* its stem is no term of the index;
* it is not in an English word list (pyspellchecker's, about 160,000 words);
* a corpus word (as written, not a stop word) that begins with the same letter lies within one
  edit of it, or two for words of more than SHORT_WORD letters (Damerau-Levenshtein).

Among those the nearest wins, then the one whose stem the most chunks hold.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from qa.terms import TOKEN
from qa.vocabulary import spellable

__all__ = ["Correction", "correct", "english_word", "held"]

MIN_WORD = 5  # shorter words are not corrected: too many others lie within an edit
SHORT_WORD = 6  # up to this many letters, one edit; longer words two

_LOCK = threading.Lock()
_ENGLISH: frozenset[str] | None = None


def english_word(word: str) -> bool:
    """Whether a lower-case word is in pyspellchecker's English word list (loaded once, ~0.2 s)."""
    global _ENGLISH
    if _ENGLISH is None:
        with _LOCK:
            if _ENGLISH is None:
                from spellchecker import SpellChecker

                _ENGLISH = frozenset(SpellChecker(language="en", distance=1).word_frequency.dictionary)
    return word in _ENGLISH


@dataclass(frozen=True)
class Correction:
    """The text to search, and each word changed in it: (as asked, as searched)."""

    text: str
    changes: tuple[tuple[str, str], ...] = ()

    @property
    def note(self) -> str:
        """What the reader is told, or "" when nothing changed."""
        if not self.changes:
            return ""
        pairs = [f'"{new}" instead of "{old}"' for old, new in self.changes]
        if len(pairs) == 1:
            return f"searched for {pairs[0]}, which no document uses"
        return f"searched for {', '.join(pairs[:-1])} and {pairs[-1]}: no document uses those words"


def _written_as_word(word: str) -> bool:
    """Lower case or capitalised: "ComYMV", "aPKCz" and "GMO" are names and acronyms, not misspellings."""
    return word[1:].islower()


def _cased_like(word: str, model: str) -> str:
    return word.capitalize() if model[:1].isupper() else word


def held(reader, words: list[str]) -> dict[str, int]:
    """How many chunks hold each lower-case word's stem (0: the corpus never uses the word)."""
    stems = reader.analyzer.stem_words(words)
    _, df = reader.term_stats(list(dict.fromkeys(stems)))
    return {w: df.get(s, 0) for w, s in zip(words, stems, strict=True)}


def correct(text: str, reader) -> Correction:
    """`text` with its misspelt words replaced by the corpus's nearest (a qa.storage IndexReader's)."""
    analyzer = reader.analyzer
    stopwords = analyzer.stopword_set()
    asked = [
        w
        for w in dict.fromkeys(TOKEN.findall(text))
        if len(w) >= MIN_WORD and spellable(w.lower()) and _written_as_word(w) and w.lower() not in stopwords
    ]
    if not asked:
        return Correction(text)
    df = held(reader, [w.lower() for w in asked])
    unknown = [w for w in asked if df[w.lower()] == 0 and not english_word(w.lower())]
    changes = []
    for word in unknown:
        lower = word.lower()
        edits = 1 if len(lower) <= SHORT_WORD else 2
        near = [(w, d) for w, d in reader.similar_words(lower, edits) if w not in stopwords]
        if not near:
            continue
        counts = held(reader, [w for w, _ in near])
        found = [(d, -counts[w], w) for w, d in near if counts[w] > 0]
        if found:
            changes.append((word, _cased_like(min(found)[2], word)))
    if not changes:
        return Correction(text)
    for old, new in changes:
        text = re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", new, text)
    return Correction(text, tuple(changes))
