"""Lexical (BM25) indexes: a small interface and a bm25s implementation."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.errors import IndexCorruptError
from qa.terms import Analyzer, bm25_idf, coverage_function, indexed_terms, query_weights
from qa.vocabulary import Vocabulary, words_of

# np.load parses .npy headers with ast.literal_eval, which CPython 3.11 does not make safe
# across threads (gh-106905: "AST constructor recursion depth mismatch" when readers open
# a new snapshot while an update loads the old one): one load at a time.
_LOAD_LOCK = threading.Lock()


class LexicalIndex(Protocol):
    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> LexicalIndex: ...

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None: ...

    def remove(self, ids: Sequence[int]) -> None: ...

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the top k matching chunks, best first; no zero-score padding."""
        ...

    def query_terms(self, text: str) -> list[str]: ...

    def save(self, path: Path) -> None: ...

    def __len__(self) -> int: ...


class Bm25Index:
    """bm25s with English stop words and the Snowball stemmer, and adjacent-term pairs.

    With pairs > 0 each text's adjacent terms are also indexed as pair terms ("russia deploy"),
    and a query's pairs count with that weight beside its terms (1 each).

    bm25s indexes are immutable, so add/remove mark the index stale and it is rebuilt
    from the kept texts on the next search or save (seconds even at 100k chunks).
    """

    DIR = "bm25"
    STOPWORDS = "stopwords.json"  # the list the index was built with, so searching needs no bm25s
    WORDS = "words.txt"  # the texts' words as written (qa.vocabulary), one per line

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        pairs: float = 0.0,
        stopwords: str = "en_plus",
        stemmer_language: str = "english",
    ) -> None:
        self.k1, self.b, self.pairs = k1, b, float(pairs)
        self.stopwords = stopwords
        self.stemmer_language = stemmer_language
        self._texts: dict[int, str] = {}
        self._row_ids = np.zeros(0, dtype=np.int64)
        self._retriever = None
        self._stale = True
        self._analyzer = Analyzer(stopwords, stemmer_language)
        self._df: np.ndarray | None = None
        self._vocabulary: Vocabulary | None = None
        self._words_file: Path | None = None  # a saved index's words, read on first need

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str], **params) -> Bm25Index:
        index = cls(**params)
        index.add(ids, texts)
        index._ensure_built()
        return index

    @property
    def params(self) -> dict:
        import bm25s

        return {
            "library": "bm25s",
            "version": bm25s.__version__,
            "k1": self.k1,
            "b": self.b,
            "pairs": self.pairs,
            "stopwords": self.stopwords,
            "stemmer": self.stemmer_language,
        }

    def set_parameters(self, k1: float, b: float, pairs: float = 0.0) -> bool:
        """Use other BM25 parameters (and pair weight) from the next build on; True if they changed."""
        if (float(k1), float(b), float(pairs)) == (float(self.k1), float(self.b), self.pairs):
            return False
        self.k1, self.b, self.pairs = float(k1), float(b), float(pairs)
        self._stale = True
        return True

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        for i, text in zip(ids, texts, strict=True):
            self._texts[int(i)] = text
        self._stale = True

    def remove(self, ids: Sequence[int]) -> None:
        for i in ids:
            self._texts.pop(int(i), None)
        self._stale = True

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's indexed terms (bm25s's analysis, through the shared Analyzer), pairs included."""
        return [indexed_terms(terms, self.pairs > 0) for terms in self._analyzer.terms(texts)]

    def query_terms(self, text: str) -> list[str]:
        """The stemmed, stop-word-free terms of text, as the index sees them."""
        return self.terms([text])[0]

    def terms(self, texts: Sequence[str]) -> list[list[str]]:
        """query_terms for many texts at once (the relevance gate runs it on every candidate passage)."""
        return self._analyzer.terms(texts)

    @property
    def analyzer(self) -> Analyzer:
        return self._analyzer

    def term_stats(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(indexed chunks, how many hold each term): what idf and "does the corpus use it" come from."""
        self._ensure_built()
        n = len(self._row_ids)
        if self._df is None:
            self._df = np.diff(np.asarray(self._retriever.scores["indptr"])) if n else np.zeros(0, dtype=np.int64)
        vocab = self._retriever.vocab_dict if n else {}
        return n, {t: int(self._df[vocab[t]]) if t in vocab else 0 for t in terms}

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each term; a term the index has never seen gets the largest idf."""
        n, df = self.term_stats(terms)
        return {term: bm25_idf(n, df[term]) for term in terms}

    def coverage(self, query: str):
        """A function giving the idf-weighted share of the query's terms that a text contains."""
        return coverage_function(self.idf(list(dict.fromkeys(self.query_terms(query)))), self.terms)

    @property
    def vocabulary(self) -> Vocabulary:
        """The texts' words as written, for spelling suggestions (read from the saved index, or
        gathered from the texts once: indexes saved before words.txt)."""
        vocabulary = self._vocabulary
        if vocabulary is None:
            words = None
            if self._words_file is not None:
                try:
                    words = self._words_file.read_text(encoding="utf-8").split()
                except OSError:  # e.g. the snapshot collected meanwhile: the texts give the same words
                    words = None
            vocabulary = self._vocabulary = Vocabulary(words_of(self._texts.values()) if words is None else words)
        return vocabulary

    def similar_words(self, word: str, max_edits: int) -> list[tuple[str, int]]:
        return self.vocabulary.near(word, max_edits)

    def _ensure_built(self) -> None:
        if not self._stale:
            return
        import bm25s

        self._row_ids = np.fromiter(self._texts.keys(), dtype=np.int64, count=len(self._texts))
        retriever = bm25s.BM25(k1=self.k1, b=self.b)
        if len(self._row_ids):
            tokens = self._tokenize(list(self._texts.values()))
            # Texts without a single term (stop words, one-letter words): bm25s cannot add its
            # empty token to an empty vocabulary; an index that matches nothing is right.
            with np.errstate(invalid="ignore", divide="ignore"):
                retriever.index(tokens, show_progress=False, create_empty_token=any(tokens))
        self._retriever = retriever
        self._df = None
        self._vocabulary = self._words_file = None
        self._stale = False

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        self._ensure_built()
        empty = (np.zeros(0, np.float32), np.zeros(0, np.int64))
        if not len(self._row_ids):
            return empty
        vocab = self._retriever.vocab_dict
        weights = {t: w for t, w in query_weights(self.query_terms(query), self.pairs).items() if t in vocab}
        if not weights:
            return empty
        scores = self.scores([vocab[t] for t in weights], list(weights.values()))
        if allowed is not None:
            scores *= np.isin(self._row_ids, allowed)
        matched = int(np.count_nonzero(scores > 0))  # no zero-score padding
        k = min(k, matched)
        if k == 0:
            return empty
        rows = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        rows = rows[np.lexsort((rows, -scores[rows]))]  # best first; ties by position, deterministically
        return scores[rows].astype(np.float32), self._row_ids[rows]

    def scores(self, token_ids: Sequence[int], weights: Sequence[float] | None = None) -> np.ndarray:
        """BM25 score of every row for the query tokens (each times its weight, default 1), from
        bm25s's precomputed score matrix.

        bm25s stores each token's per-document BM25 contribution (a sparse column); a query's
        score is the sum of its tokens' columns. Summing with np.bincount is ~10x faster than
        the np.add.at of bm25s's numpy backend, without numba's import and compile costs.
        """
        matrix = self._retriever.scores
        data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
        n = int(matrix["num_docs"])
        token_ids = np.asarray(token_ids, dtype=np.int64)
        starts, ends = indptr[token_ids], indptr[token_ids + 1]
        rows = np.concatenate([indices[a:b] for a, b in zip(starts, ends, strict=True)])
        values = np.concatenate([data[a:b] for a, b in zip(starts, ends, strict=True)])
        if weights is not None:
            values = values * np.repeat(np.asarray(weights, dtype=np.float64), ends - starts)
        scores = np.bincount(rows, weights=values, minlength=n).astype(np.float32)
        nonoccurrence = getattr(self._retriever, "nonoccurrence_array", None)
        if nonoccurrence is not None:  # BM25L/BM25+ variants score absent terms too
            scores += nonoccurrence[token_ids].sum()
        return scores

    def save(self, path: Path) -> None:
        if not hasattr(self._retriever, "save"):  # opened for searching only (bm25_saved): bm25s writes
            self._stale = True
        self._ensure_built()
        folder = path / self.DIR
        folder.mkdir(parents=True, exist_ok=True)
        if len(self._row_ids):
            self._retriever.save(str(folder), show_progress=False)
        np.save(folder / "ids.npy", self._row_ids)
        with open(folder / "texts.jsonl", "w", encoding="utf-8") as fh:
            for i in self._row_ids:
                fh.write(json.dumps(self._texts[int(i)], ensure_ascii=False) + "\n")
        (folder / "qa_params.json").write_text(json.dumps(self.params, indent=2), encoding="utf-8")
        stopwords = self._analyzer.stopword_list()
        (folder / self.STOPWORDS).write_text(json.dumps(stopwords, ensure_ascii=False), encoding="utf-8")
        (folder / self.WORDS).write_text("".join(f"{w}\n" for w in self.vocabulary), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Bm25Index:
        """Open a saved index for searching, without importing bm25s (see bm25_saved)."""
        from qa.storage.local.bm25_saved import SavedBm25, read_saved

        folder = path / cls.DIR
        try:
            params = json.loads((folder / "qa_params.json").read_text(encoding="utf-8"))
            index = cls(
                k1=params["k1"],
                b=params["b"],
                pairs=params.get("pairs", 0.0),  # indexes saved before pairs hold none
                stopwords=params["stopwords"],
                stemmer_language=params["stemmer"],
            )
            with _LOAD_LOCK:
                index._row_ids = np.load(folder / "ids.npy")
            with open(folder / "texts.jsonl", encoding="utf-8") as fh:
                texts = [json.loads(line) for line in fh]
            if len(texts) != len(index._row_ids):
                raise ValueError("texts and ids differ in length")
            index._texts = dict(zip(index._row_ids.tolist(), texts, strict=True))
            if len(index._row_ids):
                with _LOAD_LOCK:
                    index._retriever = read_saved(folder)
            else:
                index._retriever = SavedBm25.empty()
            if (folder / cls.STOPWORDS).exists():  # indexes saved before it was written use bm25s's list
                saved = json.loads((folder / cls.STOPWORDS).read_text(encoding="utf-8"))
                index._analyzer = Analyzer(index.stopwords, index.stemmer_language, frozenset(saved))
            if (folder / cls.WORDS).exists():  # not before indexes saved without it: their texts give the words
                index._words_file = folder / cls.WORDS
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(
                f"cannot read the lexical index in {folder}: {exc}; run `qa index --rebuild`"
            ) from None
        index._stale = False
        return index

    def __len__(self) -> int:
        return len(self._texts)
