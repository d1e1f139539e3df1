"""Dense, lexical and hybrid retrieval over one index snapshot, with filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.config import Settings
from qa.embedding.models import Embedder
from qa.errors import QAError
from qa.retrieval.fusion import convex_combination, merge_overlapping, reciprocal_rank_fusion
from qa.storage.local.catalog import ChunkRecord
from qa.storage.local.snapshot import Snapshot

MODES = ("hybrid", "dense", "lexical")
# A passage holding at least this idf-weighted share of the question's terms counts as
# relevant when its embedding is only loosely close (names, codes such as "S-300V4")...
MIN_TERM_COVERAGE = 0.5
# ...which means within this much below the similarity threshold. Measured on the seed
# corpus: answering passages had cosine 0.39-0.70; off-topic questions up to 0.40.
COVERAGE_SLACK = 0.2


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
        records = self.snapshot.catalog.chunk_records(pool)
        cosines = self._cosines(pool, ranking.dense, query_vector) if needs_vector else {}
        coverage_of = self.snapshot.lexical.coverage(query)
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
            sims = self.snapshot.vectors.vectors(np.array(missing, dtype=np.int64)) @ vector
            out.update({i: float(s) for i, s in zip(missing, sims, strict=True)})
        return out

    def is_relevant(self, cosine: float | None, coverage: float) -> bool:
        """Close in meaning, or holding most of the question's terms and not far in meaning."""
        threshold = self.settings.min_similarity
        if cosine is not None and cosine >= threshold:
            return True
        return coverage >= MIN_TERM_COVERAGE and (cosine is None or cosine >= threshold - COVERAGE_SLACK)
