"""The second stage of hybrid retrieval: the fused ranking's head re-ranked by a fitted linear model.

Fusion sees one score per retriever. The re-ranker also sees what the index stores with each
chunk: its sentences' vectors (the best sentence can match a question that the chunk as a whole
only half matches), the idf-weighted share of the question's terms the chunk, its best sentence
and its title hold, the question's adjacent term pairs found in it, and how many of the leading
chunks come from its document. The model is a conditional logit (its softmax over a question's
head is the probability that each chunk is the relevant one), fitted by `qa fit rerank`
on squad-dev-a alone (CC BY-SA 4.0; SciFact, CC BY-NC 2.0, only reports figures, never fitted
on); its weights are in `rerank_model.json` beside this module. numpy only.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import QAError
from qa.linear import LinearModel
from qa.memo import LruMemo
from qa.terms import bm25_idf

__all__ = ["FEATURES", "MODEL_FILE", "ChunkTerms", "QueryTerms", "Reranker", "features", "load_reranker", "model_file"]

MODEL_FILE = Path(__file__).with_name("rerank_model.json")


def model_file(sentence_vectors: str = "late") -> Path:
    """The model fitted on an index whose sentence vectors are made `sentence_vectors`."""
    return MODEL_FILE if sentence_vectors == "late" else MODEL_FILE.with_name(f"rerank_model-{sentence_vectors}.json")


def refit_command(path: Path) -> str:
    method = path.stem.partition("-")[2]
    return f"QA_SENTENCE_VECTORS={method} {REFIT}" if method else REFIT


FORMAT = 1
REFIT = "qa fit rerank"

FEATURES = (
    "rank",  # log(1 + position in the fused ranking)
    "fused",  # share of the best fused score
    "cosine",
    "cosine_gap",  # below the head's best cosine
    "lexical",  # share of the head's best BM25 score (0: the lexical retriever did not return it)
    "sentence_cosine",  # the chunk's best sentence
    "sentence_cosine_gap",  # below the head's best sentence
    "sentence_cosine_top2",  # mean of its two best sentences
    "coverage",  # idf-weighted share of the query's terms in the chunk
    "coverage_title",  # ... in its document's title
    "pairs",  # share of the query's adjacent term pairs found adjacent in the chunk
    "document_support",  # share of the head's first ten chunks from the same document
    "coverage_gap",  # below the head's best coverage
    "sentence_coverage",  # the best single sentence's coverage
    "sentence_coverage_gap",
    "length",  # log(1 + the chunk's terms)
)
SUPPORT_WINDOW = 10
# Columns that hold another column's value below the head's best (filled in once a head is scored).
_GAPS = tuple(
    (FEATURES.index(gap), FEATURES.index(of))
    for gap, of in (
        ("cosine_gap", "cosine"),
        ("sentence_cosine_gap", "sentence_cosine"),
        ("coverage_gap", "coverage"),
        ("sentence_coverage_gap", "sentence_coverage"),
    )
)


@dataclass(frozen=True)
class QueryTerms:
    """The query as the index sees it: its stemmed terms (unique, in order) with idf weights
    summing to 1, its adjacent term pairs, and the statistics they come from (the answer models'
    qa.answering.features.question_terms is built on the same)."""

    terms: tuple[str, ...]
    weights: np.ndarray
    pairs: frozenset[tuple[str, str]]  # adjacent terms
    weight_of: dict[str, float] = field(default_factory=dict)
    ordered: tuple[str, ...] = ()  # the terms as they come in the query, repeats kept
    idf: dict[str, float] = field(default_factory=dict)
    df: dict[str, int] = field(default_factory=dict)  # chunks holding each term (0: the corpus never uses it)

    @classmethod
    def of(cls, query: str, reader) -> QueryTerms:
        ordered = reader.analyzer.terms([query])[0]
        unique = list(dict.fromkeys(ordered))
        n, df = reader.term_stats(unique) if unique else (0, {})
        idf = {t: bm25_idf(n, df.get(t, 0)) for t in unique}
        weights = np.array([idf[t] for t in unique], dtype=np.float64)
        total = float(weights.sum())
        weights = weights / total if total > 0 else weights
        weight_of = {t: float(w) for t, w in zip(unique, weights, strict=True)}
        pairs = frozenset(itertools.pairwise(ordered))
        return cls(tuple(unique), weights, pairs, weight_of, tuple(ordered), idf, dict(df))

    def coverage(self, present: frozenset[str]) -> float:
        weight_of = self.weight_of
        return float(sum(weight_of[t] for t in weight_of if t in present))


@dataclass(frozen=True)
class ChunkFacts:
    text: str
    title_text: str
    terms: frozenset[str]
    pairs: frozenset[tuple[str, str]]
    title: frozenset[str]
    sentences: tuple[frozenset[str], ...]
    length: int


class ChunkTerms:
    """Each chunk's terms, pairs and sentence terms as the index's analyzer makes them, memoised by
    chunk (the same chunks come back for many queries); a chunk whose text or title changed is analysed again."""

    MAX_CHUNKS = 20_000

    def __init__(self, analyzer) -> None:
        self.analyzer = analyzer
        self._memo: LruMemo[ChunkFacts] = LruMemo(self.MAX_CHUNKS)

    def __call__(self, chunk_id: int, text: str, title: str, start: int, spans: np.ndarray) -> ChunkFacts:
        return self.many([(chunk_id, text, title, start, spans)])[0]

    def many(self, chunks: Sequence[tuple[int, str, str, int, np.ndarray]]) -> list[ChunkFacts]:
        """The facts of each (chunk_id, text, title, start, sentence spans): the memoised ones as
        they are, the others analysed together, one pass of the stemmer for all (a query's head
        brings new chunks with new words, and one call per chunk cost more than the stemming)."""
        keys = [(chunk_id, start, len(spans)) for chunk_id, _, _, start, spans in chunks]
        out: list[ChunkFacts | None] = []
        todo: list[int] = []
        for key, (_, text, title, _, _) in zip(keys, chunks, strict=True):
            found = self._memo.get(key)
            if found is not None and found.text == text and found.title_text == title:
                out.append(found)
            else:
                out.append(None)
                todo.append(len(out) - 1)
        if not todo:
            return out  # type: ignore[return-value]
        pieces = []
        for i in todo:
            _, text, title, start, spans = chunks[i]
            pieces.append([*([text[s - start : e - start] for s, e in spans] or [text]), title])
        analysed = self.analyzer.terms(list(itertools.chain.from_iterable(pieces)))
        at = 0
        for i, piece in zip(todo, pieces, strict=True):
            *sentence_terms, title_terms = analysed[at : at + len(piece)]
            at += len(piece)
            _, text, title, _, _ = chunks[i]
            facts = _chunk_facts(text, title, sentence_terms, title_terms)
            self._memo.put(keys[i], facts)
            out[i] = facts
        return out  # type: ignore[return-value]


def _chunk_facts(text: str, title: str, sentence_terms: list[list[str]], title_terms: list[str]) -> ChunkFacts:
    one = len(sentence_terms) == 1
    ordered = sentence_terms[0] if one else list(itertools.chain.from_iterable(sentence_terms))
    terms = frozenset(ordered)
    by_sentence = (terms,) if one else tuple(map(frozenset, sentence_terms))  # one sentence: the same set
    return ChunkFacts(
        text,
        title,
        terms,
        frozenset(itertools.pairwise(ordered)),
        frozenset(title_terms),
        by_sentence,
        len(ordered),
    )


def features(q: QueryTerms, vector: np.ndarray, head: Sequence, facts: ChunkTerms) -> np.ndarray:
    """One row of FEATURES per head candidate (qa.retrieval.search.Candidate, in fused order)."""
    if not head:
        return np.zeros((0, len(FEATURES)), dtype=np.float64)
    top_fused = max(c.fused for c in head) or 1.0
    top_lexical = max(c.lexical for c in head) or 1.0
    leaders = [c.doc_id for c in head[:SUPPORT_WINDOW]]
    # Every sentence's cosine in one product; a chunk without sentence evidence is its own sentence.
    counts = [len(c.sentence_vectors) for c in head]
    stacked = [np.asarray(c.sentence_vectors, dtype=np.float32) for c in head if len(c.sentence_vectors)]
    sims = np.concatenate(stacked) @ vector if stacked else np.zeros(0, dtype=np.float32)
    sims = sims.tolist()  # plain floats: per-chunk numpy calls cost more than the sort of a few
    offset = 0
    rows = []
    coverage, pairs = q.coverage, q.pairs
    analysed = facts.many([(c.chunk_id, c.text, c.title, c.start, c.sentence_spans) for c in head])
    for i, cand in enumerate(head):
        chunk = analysed[i]
        own = sorted(sims[offset : offset + counts[i]]) if counts[i] else [cand.cosine]
        offset += counts[i]
        top = own[-1]
        # The two best sentences' mean, rounded as numpy's float32 mean rounds it (the fitted model's input).
        top2 = float(np.float32(own[-2] + top)) / 2 if len(own) > 1 else top
        rows.append(
            (
                math.log1p(i),
                cand.fused / top_fused,
                cand.cosine,
                0.0,
                cand.lexical / top_lexical,
                top,
                0.0,
                top2,
                coverage(chunk.terms),
                coverage(chunk.title),
                len(pairs & chunk.pairs) / len(pairs) if pairs else 0.0,
                leaders.count(cand.doc_id) / SUPPORT_WINDOW,
                0.0,
                max(map(coverage, chunk.sentences)) if chunk.sentences else 0.0,
                0.0,
                math.log1p(chunk.length),
            )
        )
    out = np.array(rows, dtype=np.float64)
    for gap, of in _GAPS:
        out[:, gap] = out[:, of] - out[:, of].max()
    return out


@dataclass(frozen=True)
class Reranker:
    model: LinearModel
    depth: int  # the head it was fitted on
    meta: dict

    def scores(self, q: QueryTerms, vector: np.ndarray, head: Sequence, facts: ChunkTerms) -> np.ndarray:
        return self.model.logits(features(q, vector, head, facts))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "model": self.model.to_dict(), "depth": self.depth, "fitted_on": self.meta}

    @classmethod
    def from_dict(cls, data: dict, source: Path = MODEL_FILE) -> Reranker:
        refit = refit_command(source)
        if data.get("format") != FORMAT:
            raise QAError(f"{source.name} has format {data.get('format')}, not {FORMAT}; refit it with `{refit}`")
        model = LinearModel.from_dict(data["model"], FEATURES, "re-ranking", source.name, refit)
        return cls(model, int(data["depth"]), dict(data.get("fitted_on", {})))


@functools.lru_cache(maxsize=4)
def load_reranker(path: Path = MODEL_FILE) -> Reranker:
    path = Path(path)
    refit = refit_command(path)
    try:
        return Reranker.from_dict(json.loads(path.read_text(encoding="utf-8")), path)
    except FileNotFoundError:
        raise QAError(f"the re-ranking model {path} is missing; reinstall qa or run `{refit}`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QAError(f"cannot read the re-ranking model in {path} ({exc}); run `{refit}`") from None
