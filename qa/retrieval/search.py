"""Dense, lexical and hybrid retrieval over one index snapshot, with filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.config import Settings
from qa.embedding.models import Embedder
from qa.errors import QAError
from qa.retrieval.fusion import convex_combination, reciprocal_rank_fusion
from qa.storage.catalog import ChunkRecord
from qa.storage.snapshot import Snapshot

MODES = ("hybrid", "dense", "lexical")


@dataclass(frozen=True)
class Filters:
    doc_ids: tuple[str, ...] = ()
    author: str = ""
    date_from: str = ""
    date_to: str = ""

    @property
    def active(self) -> bool:
        return bool(self.doc_ids or self.author or self.date_from or self.date_to)


@dataclass(frozen=True)
class Candidate:
    """A retrieved chunk with its retrieval scores and its sentence evidence."""

    chunk_id: int
    doc_id: str
    start: int
    end: int
    text: str
    title: str
    rank: int  # 0-based, in the fused ranking
    fused: float
    cosine: float
    lexical: float  # BM25, 0 when the lexical retriever did not return it
    sentence_spans: np.ndarray  # (n, 2) int32, document offsets
    sentence_vectors: np.ndarray  # (n, dim) float32, unit length
    record: ChunkRecord | None = None  # the stored chunk with its document's metadata

    def sentence_texts(self) -> list[str]:
        return [self.text[s - self.start : e - self.start] for s, e in self.sentence_spans]


@dataclass(frozen=True)
class Ranking:
    """Chunk ids best first with the fused score and each retriever's own score."""

    ids: list[int]
    scores: list[float]
    dense: dict[int, float]
    lexical: dict[int, float]


class Searcher:
    def __init__(self, snapshot: Snapshot, embedder: Embedder, settings: Settings) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        self.settings = settings

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]

    def allowed_ids(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not filters.active:
            return None
        return self.snapshot.catalog.filtered_chunk_ids(
            filters.doc_ids, filters.author, filters.date_from, filters.date_to
        )

    def rank(
        self,
        query: str,
        mode: str = "hybrid",
        depth: int = 100,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> Ranking:
        """Chunk-level ranking, no relevance cut: what evaluation scores."""
        if mode not in MODES:
            raise QAError(f"unknown retrieval mode '{mode}'; choose one of {', '.join(MODES)}")
        allowed = self.allowed_ids(filters)
        if allowed is not None and len(allowed) == 0:
            return Ranking([], [], {}, {})
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        if mode in ("dense", "hybrid"):
            vector = self.embed_query(query) if query_vector is None else query_vector
            scores, ids = self.snapshot.vectors.search(vector[None, :], depth, allowed)
            dense = {int(i): float(s) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0}
        if mode in ("lexical", "hybrid"):
            scores, ids = self.snapshot.lexical.search(query, depth, allowed)
            lexical = {int(i): float(s) for s, i in zip(scores, ids, strict=True)}
        if mode == "dense":
            ranked = list(dense.items())
        elif mode == "lexical":
            ranked = list(lexical.items())
        elif self.settings.fusion == "rrf":
            ranked = reciprocal_rank_fusion([list(dense), list(lexical)], k=self.settings.rrf_k)
        else:
            weight = self.settings.lexical_weight
            ranked = convex_combination([dense, lexical], [1.0 - weight, weight])
        return Ranking([int(i) for i, _ in ranked], [float(s) for _, s in ranked], dense, lexical)

    def candidates(
        self,
        query: str,
        mode: str = "hybrid",
        pool: int = 30,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Candidate]:
        """The top `pool` chunks of the fused ranking, with their scores and sentence evidence."""
        if mode in ("dense", "hybrid") and query_vector is None:
            query_vector = self.embed_query(query)
        ranking = self.rank(query, mode, max(self.settings.candidates, pool), filters, query_vector)
        ids = ranking.ids[:pool]
        catalog = self.snapshot.catalog
        records = catalog.chunk_records(ids)
        evidence = catalog.sentences(ids)
        cosines = self._cosines(ids, ranking.dense, query_vector) if query_vector is not None else {}
        lexical = ranking.lexical
        if mode == "dense":  # the answer models weigh both scores, whatever retrieved the chunk
            lexical = dict(zip(ids, self.snapshot.lexical.scores_for(query, ids).tolist(), strict=True))
        no_spans = np.zeros((0, 2), np.int32)
        no_vectors = np.zeros((0, self.snapshot.vectors.dim), np.float32)
        out = []
        for rank, (chunk_id, fused) in enumerate(zip(ids, ranking.scores, strict=False)):
            record = records.get(chunk_id)
            if record is None:
                continue
            spans, vectors = evidence.get(chunk_id, (no_spans, no_vectors))
            out.append(
                Candidate(
                    chunk_id=chunk_id,
                    doc_id=record.chunk.doc_id,
                    start=record.chunk.start,
                    end=record.chunk.end,
                    text=record.chunk.text,
                    title=record.title,
                    rank=rank,
                    fused=float(fused),
                    cosine=float(cosines.get(chunk_id, 0.0)),
                    lexical=float(lexical.get(chunk_id, 0.0)),
                    sentence_spans=spans,
                    sentence_vectors=vectors,
                    record=record,
                )
            )
        return out

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Candidate]:
        """The top k chunks of the ranking, as candidates: retrieval alone, before the answer models."""
        return self.candidates(query, mode, k, filters, query_vector)

    def _cosines(self, ids: Sequence[int], known: dict[int, float], vector: np.ndarray) -> dict[int, float]:
        out = {i: known[i] for i in ids if i in known}
        missing = [i for i in ids if i not in known]
        if missing:
            sims = self.snapshot.vectors.vectors(np.array(missing, dtype=np.int64)) @ vector
            out.update({i: float(s) for i, s in zip(missing, sims, strict=True)})
        return out
