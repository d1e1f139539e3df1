"""Vectors of single words, for matching a question's word to a sentence's near-synonym.

A question says "frontier" and "clash" where the passage says "border" and "skirmished": no
stemmer joins them, but the encoder gives each word, embedded alone, a vector near its
neighbours in meaning. The answer scorer (qa.answering.features) weighs how close each question
term comes to some word of a sentence ("soft coverage").

The words are those the spelling vocabulary keeps (qa.vocabulary: alphabetic, four
letters or more). Indexing embeds the new chunks' words once, through the index's embedding
cache, keyed like any text (a word's vector is the vector of that one-word text), so `ask`
finds them there; a word the cache lacks (a question's word the corpus never uses, a cache made
before this) is embedded on the spot and put in the cache for the next time. Vectors are kept
in memory, as float16, for the words seen so far; past MAX_WORDS the memory starts afresh.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from qa.types import text_hash
from qa.vocabulary import spellable

log = logging.getLogger(__name__)

__all__ = ["MAX_WORDS", "WordVectors", "embed_words"]

MAX_WORDS = 300_000  # ~230 MB of float16 vectors at 384 dimensions


def _hashes(words: Sequence[str]) -> list[str]:
    """The cache keys of one-word texts, as of any text."""
    return [text_hash(w) for w in words]


def embed_words(embedder, cache, words: Iterable[str], progress: bool = False) -> int:
    """Embed (alone, through `cache`) those of `words` the cache lacks; returns how many were embedded."""
    from qa.embedding.models import embed_with_cache

    todo = sorted({w for w in words if spellable(w)})
    if not todo:
        return 0
    _, embedded = embed_with_cache(embedder, cache, todo, _hashes(todo), progress=progress)
    return embedded


class WordVectors:
    """Unit vectors of words: from memory, else the embedding cache, else the encoder.

    `open_cache` opens the index's embedding cache (None: no cache); it is opened on first need
    and kept. Safe to share between threads.
    """

    def __init__(self, embedder, open_cache: Callable[[], object] | None = None, max_words: int = MAX_WORDS) -> None:
        self.embedder = embedder
        self._open_cache = open_cache
        self._cache = None
        self._writable = True  # until the cache refuses a write (read-only folder, replica): then not tried again
        self._max = max_words
        self._lock = threading.Lock()
        self._row: dict[str, int] = {}
        self._matrix = np.zeros((1024, embedder.dim), dtype=np.float16)  # rows beyond len(_row) are free

    def vectors(self, words: Sequence[str]) -> np.ndarray:
        """(len(words), dim) float32 unit vectors, in the order given."""
        if not words:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(w for w in words if w not in self._row))
            if missing:
                if len(self._row) + len(missing) > self._max:
                    self._row = {}
                    missing = list(dict.fromkeys(words))
                self._add(missing)
            rows = [self._row[w] for w in words]
            return self._matrix[rows].astype(np.float32)

    def _add(self, words: list[str]) -> None:
        found = self._cached(words)
        fresh = [w for w in words if w not in found]
        if fresh:
            encoded = self.embedder.encode(fresh)
            found.update(zip(fresh, encoded, strict=True))
            self._keep(list(zip(_hashes(fresh), encoded, strict=True)))
        block = np.stack([found[w] for w in words]).astype(np.float32)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        block = (block / np.maximum(norms, 1e-12)).astype(np.float16)
        start = len(self._row)
        if start + len(block) > len(self._matrix):  # grow by doubling: each row is copied O(1) times
            grown = np.zeros((max(2 * len(self._matrix), start + len(block)), self._matrix.shape[1]), np.float16)
            grown[:start] = self._matrix[:start]
            self._matrix = grown
        self._matrix[start : start + len(block)] = block
        self._row.update((w, start + i) for i, w in enumerate(words))

    def _cached(self, words: list[str]) -> dict[str, np.ndarray]:
        if self._open_cache is None:
            return {}
        if self._cache is None:
            try:
                self._cache = self._open_cache()
            except Exception as exc:  # e.g. a folder this process may not write: embed, and stop trying
                log.warning("word vectors: the embedding cache could not be opened (%s); embedding the words", exc)
                self._open_cache = None
                return {}
        try:
            hashes = _hashes(words)
            got = self._cache.get_many(self.embedder.cache_key, hashes)
        except Exception as exc:  # a cache that cannot be read (moved, database down): embed instead
            log.warning("word vectors: the embedding cache could not be read (%s); embedding the words", exc)
            return {}
        return {w: got[h] for w, h in zip(words, hashes, strict=True) if h in got and len(got[h]) == self.embedder.dim}

    def _keep(self, pairs: list[tuple[str, np.ndarray]]) -> None:
        """Put freshly embedded words in the cache, so the next process finds them (an index made
        before word vectors, a question's word the corpus lacks); a cache that refuses is no error."""
        if self._cache is None or not self._writable:
            return
        try:
            self._cache.put_many(self.embedder.cache_key, pairs)
        except Exception as exc:
            self._writable = False
            log.warning("word vectors: the embedding cache could not be written (%s); not trying again", exc)

    def close(self) -> None:
        with self._lock:
            cache, self._cache = self._cache, None
        if cache is not None:
            cache.close()
