"""Dense, lexical and hybrid retrieval over one opened index (any store), with filters.

Hybrid retrieval fuses the two retrievers' rankings, then re-ranks the fused head with the
fitted model of qa.retrieval.rerank (QA_RERANK_DEPTH, 0 for fusion alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from qa.config import MODES, Settings
from qa.embedding.models import Embedder
from qa.errors import QAError
from qa.retrieval.fusion import fuse_rankings, strictly_decreasing
from qa.retrieval.rerank import ChunkTerms, QueryTerms, load_reranker, model_file
from qa.retrieval.spelling import Correction, correct
from qa.storage.base import ChunkRecord, IndexReader
from qa.types import Filters

__all__ = ["MODES", "Candidate", "Filters", "Ranking", "Searcher"]


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
    rerank: float = 0.0  # the re-ranker's score (0 when the ranking was not re-ranked)

    def sentence_texts(self) -> list[str]:
        return [self.text[s - self.start : e - self.start] for s, e in self.sentence_spans]


@dataclass(frozen=True)
class Ranking:
    """Chunk ids best first, their scores (strictly decreasing) and each retriever's own score.

    Re-ranked, the head's scores are the re-ranker's and the rest follow below in fused order;
    `head` then holds the head's candidates, already fetched.
    """

    ids: list[int]
    scores: list[float]
    dense: dict[int, float]
    lexical: dict[int, float]
    head: tuple[Candidate, ...] = ()


class Searcher:
    def __init__(self, reader: IndexReader, embedder: Embedder, settings: Settings) -> None:
        self.reader = reader
        self.embedder = embedder
        self.settings = settings
        self._chunk_terms: ChunkTerms | None = None  # memoised chunk terms for the re-ranker

    @property
    def snapshot(self) -> IndexReader:
        """The opened index (its former name, from when there was only the snapshot store)."""
        return self.reader

    def correct(self, text: str) -> Correction:
        """The text to search for `text`: its misspelt words corrected (qa.retrieval.spelling), unless
        QA_SPELLING=off."""
        return Correction(text) if self.settings.spelling == "off" else correct(text, self.reader)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]

    def rank(
        self,
        query: str,
        mode: str = "hybrid",
        depth: int = 100,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
        terms: QueryTerms | None = None,
    ) -> Ranking:
        """Chunk-level ranking, no relevance cut: what evaluation scores. `terms` (the query's, from
        QueryTerms.of on this reader) saves looking them up again when the caller has them."""
        if mode not in MODES:
            raise QAError(f"unknown retrieval mode '{mode}'; choose one of {', '.join(MODES)}")
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        vector = query_vector
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
        else:
            ranked = fuse_rankings(
                dense,
                lexical,
                self.settings.fusion,
                self.settings.lexical_weight,
                self.settings.rrf_k,
                self.settings.candidates,
            )
        ranking = Ranking([int(i) for i, _ in ranked], [float(s) for _, s in ranked], dense, lexical)
        if mode == "hybrid" and self.settings.rerank_depth and ranking.ids:
            ranking = self._rerank(terms or QueryTerms.of(query, self.reader), ranking, vector)
        return ranking

    def _rerank(self, terms: QueryTerms, ranking: Ranking, vector: np.ndarray) -> Ranking:
        n = min(self.settings.rerank_depth, len(ranking.ids))
        head = self._candidates(ranking.ids[:n], ranking.scores, ranking, vector)
        if self._chunk_terms is None:
            self._chunk_terms = ChunkTerms(self.reader.analyzer)
        reranker = load_reranker(model_file(self.settings.sentence_vectors))
        logits = reranker.scores(terms, vector, head, self._chunk_terms)
        order = sorted(range(len(head)), key=lambda i: (-logits[i], i))
        reranked = [replace(head[i], rank=rank, rerank=float(logits[i])) for rank, i in enumerate(order)]
        # The tail keeps its fused order and scores: the rest of the ranking, after any head chunk
        # that had no record to re-rank (none, unless the store lost one).
        seen = {c.chunk_id for c in reranked}
        missed = [(i, s) for i, s in zip(ranking.ids[:n], ranking.scores[:n], strict=True) if i not in seen]
        tail_ids = [i for i, _ in missed] + ranking.ids[n:]
        tail_scores = [s for _, s in missed] + ranking.scores[n:]
        # The head scores above the tail by the re-ranker's logits.
        base = (tail_scores[0] + 1.0 if tail_scores else 0.0) - (min(c.rerank for c in reranked) if reranked else 0.0)
        # Only the head needs nudging apart: the tail is strictly decreasing already, and below it.
        ranked = strictly_decreasing([(c.chunk_id, base + c.rerank) for c in reranked])
        ids = [i for i, _ in ranked] + tail_ids
        scores = [s for _, s in ranked] + tail_scores
        return Ranking(ids, scores, ranking.dense, ranking.lexical, tuple(reranked))

    def candidates(
        self,
        query: str,
        mode: str = "hybrid",
        pool: int = 20,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
        terms: QueryTerms | None = None,
    ) -> list[Candidate]:
        """The top `pool` chunks of the ranking, with both retrievers' scores and their sentence evidence."""
        if mode in ("dense", "hybrid") and query_vector is None:
            query_vector = self.embed_query(query)
        depth = max(self.settings.candidates, pool)
        ranking = self.rank(query, mode, depth, filters, query_vector, terms)
        if mode == "dense":  # the answer models weigh both scores, whatever retrieved the chunk
            scores, found = self.reader.search_lexical(query, depth, filters)
            ranking = replace(ranking, lexical={int(i): float(s) for s, i in zip(scores, found, strict=True)})
        head = list(ranking.head[:pool])
        more = ranking.ids[len(head) : pool] if len(head) == len(ranking.head) else []
        if more:
            rest = self._candidates(more, ranking.scores[len(head) :], ranking, query_vector)
            head += [replace(c, rank=c.rank + len(head)) for c in rest]
        return head

    def _candidates(
        self, ids: list[int], scores: Sequence[float], ranking: Ranking, vector: np.ndarray | None
    ) -> list[Candidate]:
        """Candidates for `ids` (ranked in this order, with these scores), records and evidence fetched."""
        records = self.reader.chunk_records(ids)
        evidence = self.reader.evidence(ids)
        cosines = self._cosines(ids, ranking.dense, vector) if vector is not None else {}
        no_spans = np.zeros((0, 2), np.int32)
        no_vectors = np.zeros((0, self.embedder.dim), np.float32)
        out = []
        for chunk_id, score in zip(ids, scores, strict=False):
            record = records.get(chunk_id)
            if record is None:
                continue
            found_evidence = evidence.get(chunk_id)
            spans = np.array(found_evidence.spans, dtype=np.int32).reshape(-1, 2) if found_evidence else no_spans
            vectors = found_evidence.vectors if found_evidence else no_vectors
            out.append(
                Candidate(
                    chunk_id=chunk_id,
                    doc_id=record.chunk.doc_id,
                    start=record.chunk.start,
                    end=record.chunk.end,
                    text=record.chunk.text,
                    title=record.title,
                    rank=len(out),
                    fused=float(score),
                    cosine=float(cosines.get(chunk_id, 0.0)),
                    lexical=float(ranking.lexical.get(chunk_id, 0.0)),
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
            sims = self.reader.vectors_of(missing) @ vector
            out.update({i: float(s) for i, s in zip(missing, sims, strict=True)})
        return out
