"""Dense, lexical and hybrid retrieval over one opened index (any store), with filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.config import Settings
from qa.embedding.models import Embedder
from qa.errors import QAError
from qa.retrieval.fusion import convex_combination, merge_overlapping, reciprocal_rank_fusion
from qa.storage.base import ChunkRecord, IndexReader
from qa.types import Filters

__all__ = ["MODES", "Filters", "Hit", "Ranking", "Searcher"]

MODES = ("hybrid", "dense", "lexical")
# A passage holding at least this idf-weighted share of the question's terms counts as
# relevant when its embedding is only loosely close (names, codes such as "S-300V4")...
MIN_TERM_COVERAGE = 0.5
# ...which means within this much below the similarity threshold. Measured on the seed
# corpus: answering passages had cosine 0.39-0.70; off-topic questions up to 0.40.
COVERAGE_SLACK = 0.2


@dataclass(frozen=True)
class Hit:
    """A ranked passage: one chunk, or two overlapping chunks merged."""

    records: tuple[ChunkRecord, ...]
    score: float
    start: int
    end: int
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def record(self) -> ChunkRecord:
        return self.records[0]


@dataclass(frozen=True)
class Ranking:
    """Chunk ids best first with the fused score and each retriever's own score."""

    ids: list[int]
    scores: list[float]
    dense: dict[int, float]
    lexical: dict[int, float]


class Searcher:
    def __init__(self, reader: IndexReader, embedder: Embedder, settings: Settings) -> None:
        self.reader = reader
        self.embedder = embedder
        self.settings = settings

    @property
    def snapshot(self) -> IndexReader:
        """The opened index (its former name, from when there was only the snapshot store)."""
        return self.reader

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]

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
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        if mode in ("dense", "hybrid"):
            vector = self.embed_query(query) if query_vector is None else query_vector
            scores, ids = self.reader.search_dense(vector, depth, filters)
            dense = {int(i): float(s) for s, i in zip(scores, ids, strict=True)}
        if mode in ("lexical", "hybrid"):
            scores, ids = self.reader.search_lexical(query, depth, filters)
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

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The top k distinct relevant passages; fewer (or none) when fewer are relevant."""
        needs_vector = mode in ("dense", "hybrid")
        if needs_vector and query_vector is None:
            query_vector = self.embed_query(query)
        ranking = self.rank(query, mode, max(self.settings.candidates, 5 * k), filters, query_vector)
        pool = ranking.ids[: max(4 * k, 20)]
        records = self.reader.chunk_records(pool)
        cosines = self._cosines(pool, ranking.dense, query_vector) if needs_vector else {}
        coverage_of = self.reader.coverage(query)
        fused = dict(zip(ranking.ids, ranking.scores, strict=True))
        relevant = []
        for chunk_id in pool:
            record = records.get(chunk_id)
            if record is None:
                continue
            coverage = coverage_of(record.chunk.text)
            cosine = cosines.get(chunk_id)
            if self.is_relevant(cosine, coverage):
                relevant.append((chunk_id, coverage, cosine))
        merged = merge_overlapping(
            [
                (cid, records[cid].chunk.doc_id, records[cid].chunk.start, records[cid].chunk.end)
                for cid, _, _ in relevant
            ]
        )
        details = {cid: (cov, cos) for cid, cov, cos in relevant}
        hits = []
        for ids, _, start, end in merged[:k]:
            best = ids[0]
            coverage, cosine = details[best]
            scores = {"coverage": round(coverage, 4)}
            if cosine is not None:
                scores["dense"] = round(cosine, 6)
            if best in ranking.lexical:
                scores["lexical"] = round(ranking.lexical[best], 6)
            hits.append(
                Hit(
                    tuple(records[i] for i in sorted(ids, key=lambda i: records[i].chunk.start)),
                    fused[best],
                    start,
                    end,
                    scores,
                )
            )
        return hits

    def _cosines(self, ids: Sequence[int], known: dict[int, float], vector: np.ndarray) -> dict[int, float]:
        out = {i: known[i] for i in ids if i in known}
        missing = [i for i in ids if i not in known]
        if missing:
            sims = self.reader.vectors_of(missing) @ vector
            out.update({i: float(s) for i, s in zip(missing, sims, strict=True)})
        return out

    def is_relevant(self, cosine: float | None, coverage: float) -> bool:
        """Close in meaning, or holding most of the question's terms and not far in meaning."""
        threshold = self.settings.min_similarity
        if cosine is not None and cosine >= threshold:
            return True
        return coverage >= MIN_TERM_COVERAGE and (cosine is None or cosine >= threshold - COVERAGE_SLACK)
