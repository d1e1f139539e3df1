"""Vector stores: a small interface, and an exact FAISS inner-product implementation.

Another store (an approximate FAISS index, a distributed engine) only has to provide
the same methods to take its place.
"""

from __future__ import annotations

import json
import os
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
        _threads_for(len(queries))
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
        return cls(dim, _read_index(path / cls.FILE, dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored."""
        import faiss

        n = len(self)
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, n) if n else np.zeros((0, self.dim), np.float32)
        return ids, np.asarray(vectors, dtype=np.float32)

    @property
    def kind(self) -> str:
        return "flat"

    @property
    def params(self) -> dict:
        """What the manifest records about this store."""
        return {"library": "faiss", "kind": "flat", "type": "IndexIDMap2(IndexFlatIP)", "count": len(self)}


class FaissIvfStore:
    """Approximate inner-product search (IVF): clusters probed per query instead of a full scan.

    Ids live in the inverted lists, so add and remove work in place. `nprobe` is calibrated
    at build time so that recall@10 against exact search is at least TARGET_RECALL.
    """

    FILE = "vectors.faiss"
    PARAMS = "vectors.json"
    TARGET_RECALL = 0.98

    def __init__(self, dim: int, index, nprobe: int, trained_on: int, recall: float | None = None) -> None:
        self.dim = dim
        self._index = index
        self.nprobe = nprobe
        self.trained_on = trained_on
        self.recall = recall

    @property
    def kind(self) -> str:
        return "ivf"

    @property
    def params(self) -> dict:
        """What the manifest records about this store; `nprobe` and `trained_on` are read back on load."""
        return {
            "library": "faiss",
            "kind": "ivf",
            "type": "IndexIVFFlat",
            "count": len(self),
            "nprobe": self.nprobe,
            "nlist": self._index.nlist,
            "trained_on": self.trained_on,
            "recall_at_10": self.recall,
        }

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, seed: int = 0) -> FaissIvfStore:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(vectors)
        nlist = int(max(16, min(65536, 4 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)] if n > 64 * nlist else vectors
        _threads_for(len(vectors))
        index.train(sample)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove and reconstruct by id
        index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        store = cls(dim, index, nprobe=1, trained_on=n)
        store.nprobe, store.recall = store._calibrate(np.asarray(ids, dtype=np.int64), vectors, rng)
        return store

    def _calibrate(self, ids: np.ndarray, vectors: np.ndarray, rng: np.random.Generator) -> tuple[int, float]:
        import faiss

        n = len(vectors)
        # Queries: stored vectors moved off themselves, so that a query is not its own answer.
        picks = rng.choice(n, size=min(n, 200), replace=False)
        queries = vectors[picks] + rng.normal(0, 0.05, size=(len(picks), self.dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        exact = faiss.IndexFlatIP(self.dim)
        exact.add(vectors)
        _, truth_rows = exact.search(queries, 10)
        truth = [{int(ids[r]) for r in row} for row in truth_rows]
        nlist = self._index.nlist
        nprobe = 1
        while True:
            _, found = self._index.search(queries, 10, params=faiss.SearchParametersIVF(nprobe=nprobe))
            hits = sum(len(t & {int(i) for i in row}) for t, row in zip(truth, found, strict=True))
            recall = hits / (10 * len(picks))
            if recall >= self.TARGET_RECALL + 0.005 or nprobe >= nlist:
                return nprobe, recall
            nprobe = min(nlist, nprobe * 2)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        k = max(1, min(k, len(self)))
        nprobe = self.nprobe
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            # A narrow filter may sit in clusters the usual probes skip: search them all.
            nprobe = self._index.nlist if len(allowed) < 0.05 * len(self) else min(self._index.nlist, 2 * nprobe)
        params = (
            faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
            if selector
            else faiss.SearchParametersIVF(nprobe=nprobe)
        )
        return self._index.search(queries, k, params=params)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self._index.reconstruct(int(i)) for i in ids])

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        invlists = self._index.invlists
        ids, parts = [], []
        for list_no in range(self._index.nlist):
            size = invlists.list_size(list_no)
            if not size:
                continue
            ids.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
            codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * invlists.code_size).copy()
            parts.append(codes.view(np.float32).reshape(size, self.dim))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.concatenate(ids).astype(np.int64), np.vstack(parts)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path / self.FILE))
        (path / self.PARAMS).write_text(json.dumps(self.params))

    @classmethod
    def load(cls, path: Path, dim: int) -> FaissIvfStore:
        import faiss

        index = _read_index(path / cls.FILE, dim)
        try:
            params = json.loads((path / cls.PARAMS).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"cannot read {path / cls.PARAMS} ({exc}); run `qa index --rebuild`") from None
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return cls(dim, index, int(params["nprobe"]), int(params["trained_on"]), params.get("recall_at_10"))

    def __len__(self) -> int:
        return int(self._index.ntotal)


# Above this many vectors an approximate (IVF) index replaces exact search: exact search
# costs ~14 ms a query at 100k vectors and ~145 ms at 1M on this class of machine.
ANN_THRESHOLD = 50_000


def fit_store(store, threshold: int = ANN_THRESHOLD):
    """The store to save: exact below the threshold, IVF above, retrained when it has grown 4x."""
    n = len(store)
    if isinstance(store, FaissFlatStore) and n >= threshold:
        return FaissIvfStore.build(*store.all(), store.dim)
    if isinstance(store, FaissIvfStore):
        if n < threshold // 2:
            return FaissFlatStore.build(*store.all(), store.dim)
        if n > 4 * store.trained_on:
            return FaissIvfStore.build(*store.all(), store.dim)
    return store


def load_store(path: Path, dim: int):
    """Open whichever kind of store the folder holds."""
    if (path / FaissIvfStore.PARAMS).exists():
        return FaissIvfStore.load(path, dim)
    return FaissFlatStore.load(path, dim)


def _threads_for(n_queries: int) -> None:
    """One OpenMP thread for a handful of queries, all cores for batches and builds.

    Measured here: a single query on 10k vectors took 16 ms with 2 threads and 1.3 ms with
    one (thread start-up and spinning cost more than the scan itself).
    """
    import faiss

    faiss.omp_set_num_threads(1 if n_queries <= 4 else os.cpu_count() or 1)


def _read_index(file: Path, dim: int):
    import faiss

    try:
        index = faiss.read_index(str(file))
    except (RuntimeError, OSError):
        # FAISS's own message is a C++ location; say what it means.
        reason = "missing" if not file.is_file() else "truncated or not a FAISS index"
        raise IndexCorruptError(f"cannot read {file} ({reason}); run `qa index --rebuild`") from None
    if index.d != dim:
        raise IndexCorruptError(
            f"{file} holds {index.d}-dim vectors, the manifest says {dim}; run `qa index --rebuild`"
        )
    return index
