"""Vector stores: a small interface, and an exact FAISS inner-product implementation.

Another store (an approximate FAISS index, a distributed engine) only has to provide
the same methods to take its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from qa.errors import IndexCorruptError


class VectorStore(Protocol):
    dim: int

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int) -> VectorStore: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k), best first; missing slots have id -1."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

    def __len__(self) -> int: ...


class FaissFlatStore:
    """Exact inner-product search over normalised vectors (cosine similarity)."""

    FILE = "vectors.faiss"

    def __init__(self, dim: int, index=None) -> None:
        import faiss

        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int) -> FaissFlatStore:
        store = cls(dim)
        store.add(ids, vectors)
        return store

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of dimension {self.dim}, got shape {vectors.shape}")
        self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
        scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return (
            np.vstack([self._index.reconstruct(int(i)) for i in ids])
            if len(ids)
            else np.zeros((0, self.dim), np.float32)
        )

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path / self.FILE))

    @classmethod
    def load(cls, path: Path, dim: int) -> FaissFlatStore:
        import faiss

        file = path / cls.FILE
        try:
            index = faiss.read_index(str(file))
        except (RuntimeError, OSError) as exc:
            raise IndexCorruptError(
                f"cannot read {file}: {str(exc).splitlines()[0][:160]}; run `qa index --rebuild`"
            ) from None
        if index.d != dim:
            raise IndexCorruptError(
                f"{file} holds {index.d}-dim vectors, the manifest says {dim}; run `qa index --rebuild`"
            )
        return cls(dim, index)

    def __len__(self) -> int:
        return int(self._index.ntotal)
