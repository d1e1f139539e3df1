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

    def close(self) -> None:
        """Connections belong to the store's pool."""
