"""How text becomes lexical terms, the same for every store: lower case, words of two or more
characters, English stop words, the Snowball stemmer (bm25s's analysis); and the idf-weighted
term coverage that the relevance gate uses."""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence

# bm25s's default token pattern, r"(?u)\b\w\w+\b": words of two or more characters. Without the
# word boundaries it finds the same words (a greedy run of word characters ends where they do) and
# is faster; tests/test_terms.py checks the two agree.
BM25S_TOKEN = r"(?u)\b\w\w+\b"
TOKEN = re.compile(r"\w\w+")


class Analyzer:
    """Terms of texts, as bm25s.tokenize makes them, without building a vocabulary per call.

    Stems are memoised per word: a corpus's words recur (Zipf), so most of a new chunk's words
    were stemmed before, by the index build, an earlier query or another chunk.
    """

    MAX_MEMO = 500_000  # words; past it the memo starts again (about 80 MB when full)

    def __init__(
        self, stopwords: str = "en_plus", stemmer_language: str = "english", stopword_set: frozenset[str] | None = None
    ) -> None:
        self.stopwords = stopwords
        self.stemmer_language = stemmer_language
        self._stemmer = None
        # The list an index was built with, when it saved one: answering then needs no bm25s import.
        self._stopword_set = stopword_set
        self._memo: dict[str, str] = {}
        self._memo_lock = threading.Lock()

    def stopword_list(self) -> list[str]:
        return sorted(self._stopwords())

    def stopword_set(self) -> frozenset[str]:
        return self._stopwords()

    def stem_words(self, words: list[str]) -> list[str]:
        """One stem per lower-case word, positions kept (stop words too)."""
        memo = self._memo  # this dict only grows; a full memo is replaced, never emptied in place
        try:
            return [memo[w] for w in words]  # the common case: every word stemmed before
        except KeyError:
            pass
        todo = [w for w in dict.fromkeys(words) if w not in memo]
        new = dict(zip(todo, self.stemmer().stemWords(todo), strict=True))
        with self._memo_lock:
            if len(self._memo) > self.MAX_MEMO:
                self._memo = {}
            self._memo.update(new)
        return [new[w] if w in new else memo[w] for w in words]

    def _stopwords(self) -> frozenset[str]:
        if self._stopword_set is None:
            from bm25s.tokenization import _infer_stopwords

            self._stopword_set = frozenset(_infer_stopwords(self.stopwords))
        return self._stopword_set

    def stemmer(self):
        if self._stemmer is None:
            import Stemmer

            self._stemmer = Stemmer.Stemmer(self.stemmer_language)
        return self._stemmer

    def terms(self, texts: Sequence[str]) -> list[list[str]]:
        """The stemmed, stop-word-free terms of each text, in order (repeats kept)."""
        stopwords = self._stopwords()
        words = [[w for w in TOKEN.findall(text.lower()) if w not in stopwords] for text in texts]
        stems = self.stem_words(list(itertools.chain.from_iterable(words)))  # one pass over the memo for all
        out, at = [], 0
        for text_words in words:
            out.append(stems[at : at + len(text_words)])
            at += len(text_words)
        return out


def term_pairs(terms: Sequence[str]) -> list[str]:
    """Each two adjacent terms as one pair term, "a b" (no term holds a space): indexed beside the
    terms when QA_BM25_PAIRS > 0, so that BM25 rewards a passage holding the question's words in
    the question's order (a proximity signal; stop words are already gone, so "capital of France"
    pairs "capit franc")."""
    return [f"{a} {b}" for a, b in itertools.pairwise(terms)]


def indexed_terms(terms: Sequence[str], pairs: bool) -> list[str]:
    """What the lexical index holds for a text's terms: the terms, then their pairs if enabled."""
    return [*terms, *term_pairs(terms)] if pairs else list(terms)


def query_weights(terms: Sequence[str], pair_weight: float) -> dict[str, float]:
    """Each query term's weight in the BM25 sum: 1 per occurrence, and pair_weight per adjacent pair."""
    weights: dict[str, float] = {}
    for term in terms:
        weights[term] = weights.get(term, 0.0) + 1.0
    if pair_weight > 0:
        for pair in term_pairs(terms):
            weights[pair] = weights.get(pair, 0.0) + pair_weight
    return weights


def bm25_idf(n_docs: int, df: int) -> float:
    """BM25's idf (Lucene's form, as bm25s): never negative; a term never seen gets the largest."""
    return float(math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)))


def coverage_function(
    weights: Mapping[str, float], terms_of: Callable[[Sequence[str]], list[list[str]]]
) -> Callable[[str], float]:
    """A function giving the share of the idf weights of `weights`' terms that a text contains."""
    total = sum(weights.values())

    def share(text: str) -> float:
        if total <= 0:
            return 0.0
        present = set(terms_of([text])[0])
        return sum(w for t, w in weights.items() if t in present) / total

    return share
