"""The embedding cache in the database: vectors by (model, text hash), shared by every writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from qa.storage.postgres.store import PostgresStore


class PostgresEmbeddingCache:
    """Vectors by (model, text hash) in the schema's embeddings table; read-only on a replica."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        with self.store.reading() as conn:
            for i in range(0, len(unique), 5000):
                rows = conn.execute(
                    f"SELECT text_hash, vector FROM {self.store.q}.embeddings WHERE model = %s AND text_hash = ANY(%s)",
                    (model, unique[i : i + 5000]),
                ).fetchall()
                found.update({h: np.frombuffer(bytes(v), dtype=np.float32) for h, v in rows})
        return found

    def put_many(self, model: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        if not items:
            return
        with self.store.reading() as conn:
            if self.store.read_only:
                return  # a replica cannot cache; the vectors are still used
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self.store.q}.embeddings (model, text_hash, vector) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
                )

    def get_sentences(self, model: str, hashes: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """text hash -> (sentence spans (n, 2) within the text, their vectors (n, dim) float32)."""
        unique = list(dict.fromkeys(hashes))
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        with self.store.reading() as conn:
            for i in range(0, len(unique), 5000):
                rows = conn.execute(
                    f"SELECT text_hash, spans, vectors FROM {self.store.q}.sentence_vectors"
                    " WHERE model = %s AND text_hash = ANY(%s)",
                    (model, unique[i : i + 5000]),
                ).fetchall()
                for h, spans, blob in rows:
                    pairs = np.asarray(spans, dtype=np.int32).reshape(-1, 2)
                    vectors = np.frombuffer(bytes(blob), dtype=np.float16).astype(np.float32)
                    found[h] = (pairs, vectors.reshape(len(pairs), -1) if len(pairs) else vectors.reshape(0, 0))
        return found

    def put_sentences(self, model: str, items: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> None:
        if not items:
            return
        with self.store.reading() as conn:
            if self.store.read_only:
                return
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self.store.q}.sentence_vectors (model, text_hash, spans, vectors)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        (model, h, [int(x) for x in np.asarray(sp).reshape(-1)], np.asarray(v, np.float16).tobytes())
                        for h, sp, v in items
                    ],
                )

    def close(self) -> None:
        """Connections belong to the store's pool."""
