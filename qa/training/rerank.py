"""Fit the hybrid re-ranker (qa.retrieval.rerank) and write its weights.

    qa fit rerank                  # fit, print the figures, write qa/retrieval/rerank_model.json
    qa fit rerank --check          # fit again and compare with the shipped file; write nothing
    qa fit rerank --depth 30 --out /tmp/rerank-30.json   # another head (QA_RERANK_DEPTH=30)

Fitted on squad-dev-a alone (../shared/data/squad-dev-a, CC BY-SA 4.0; the model is a derived work
under that licence): its 4,566 questions over its own 24 articles; a chunk is relevant when it holds
the question's answer where the crowd-worker found it. SciFact (../shared/data/scifact, CC BY-NC 2.0)
is never fitted on: its train and test queries (a chunk is relevant when its document is judged
relevant) are only scored, to report figures.
Each query's head is the fused ranking's top DEPTH chunks (the first stage alone, QA_RERANK_DEPTH=0),
scored with qa.retrieval.rerank.features. The model is a conditional logit over the head
(qa.training.answers.fit_listwise, scipy). Printed: SciFact train and test nDCG@10 (neither fitted
on) and squad-dev-a Hit@1/Hit@5, out of fold (5 contiguous folds) and in-sample, each beside the
fused ranking without re-ranking. The indexes are those `qa eval` caches.
`qa eval` prints the same figures through the real search path.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import QAError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # beside the checkout
DEPTH = 20  # the default head: the pool `ask` reads (--depth tries others; docs/evaluation.md gives their figures)
FOLDS = 5
LICENCE = (
    "fitted on squad-dev-a (SQuAD v1.1 dev questions over 24 Wikipedia articles; CC BY-SA 4.0): the model is "
    "a derived work under that licence. SciFact (CC BY-NC 2.0) is only scored for the figures, never fitted on."
)


@dataclass
class Query:
    qid: str
    rows: np.ndarray  # features of the head, in fused order
    labels: np.ndarray
    head: list[int]
    ranking: tuple[list[int], list[float]]  # the whole fused ranking


def gather(collection, relevant, depth: int = DEPTH) -> list[Query]:
    from qa.retrieval.rerank import ChunkTerms, QueryTerms, features

    searcher = collection.searcher
    chunk_terms = ChunkTerms(searcher.reader.analyzer)
    out = []
    for qid, text in collection.queries.items():
        vector = collection.vectors[qid]
        ranking = searcher.rank(text, "hybrid", 1000, query_vector=vector)
        head = searcher.candidates(text, "hybrid", depth, None, vector)
        rows = features(QueryTerms.of(text, searcher.reader), vector, head, chunk_terms)
        labels = np.array([relevant(qid, c) for c in head], dtype=bool)
        out.append(Query(qid, rows, labels, [c.chunk_id for c in head], (ranking.ids, ranking.scores)))
    return out


def reranked(query: Query, model) -> tuple[list[int], list[float]]:
    """The ranking as qa.retrieval.search.Searcher makes it: the head by the model, the rest below."""
    from qa.retrieval.fusion import strictly_decreasing

    if model is None:
        return query.ranking
    logits = model.logits(query.rows)
    order = sorted(range(len(query.head)), key=lambda i: (-logits[i], i))
    head = set(query.head)
    tail = [(i, s) for i, s in zip(*query.ranking, strict=True) if i not in head]
    base = (tail[0][1] + 1.0 if tail else 0.0) - float(logits.min())
    ranked = strictly_decreasing([(query.head[i], base + float(logits[i])) for i in order] + tail)
    return [i for i, _ in ranked], [s for _, s in ranked]


def figures(collection, queries: list[Query], models) -> dict[str, float]:
    """`models` is one model, or one per query (out of fold)."""
    per_query = models if isinstance(models, list) else [models] * len(queries)
    return collection.score({q.qid: reranked(q, m) for q, m in zip(queries, per_query, strict=True)})


def groups(queries: list[Query]) -> list[tuple[np.ndarray, np.ndarray, float]]:
    return [(q.rows, q.labels, 1.0) for q in queries if q.labels.any()]


def main_fit(out: Path | None = None, check: bool = False, depth: int | None = None) -> int:
    """`qa fit rerank`: fit a head of `depth` chunks (default DEPTH), print the figures, then write the
    model to `out` (default: the shipped file), or with `check` compare it with the shipped file (1 if
    it differs)."""
    depth = DEPTH if depth is None else depth
    if not 2 <= depth <= 1000:
        raise QAError("--depth must be between 2 and 1000")
    if check and depth != DEPTH:
        raise QAError(f"--check compares with the shipped model, which re-ranks {DEPTH}; leave --depth out")

    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.evaluation.questions import ChunkSpan
    from qa.retrieval.rerank import FEATURES, Reranker, model_file
    from qa.training.answers import fit_listwise, write_or_check
    from qa.training.retrieval_sets import beir_collection, question_collection

    started = time.perf_counter()
    scifact, squad = SHARED / "scifact", SHARED / "squad-dev-a"
    if not scifact.is_dir() or not squad.is_dir():
        raise QAError(f"{SHARED} lacks scifact/ or squad-dev-a/: the tuning data lives beside the repository")
    settings = Settings.from_env().with_(rerank_depth=0)  # features of the first stage alone
    embedder = load_embedder(settings.model, settings.backend)
    train = beir_collection(str(scifact), "train", settings, embedder)
    test = beir_collection(str(scifact), "test", settings, embedder)
    questions = question_collection(str(squad), settings, embedder)

    def in_document(collection):
        return lambda qid, c: collection.doc_of_chunk[c.chunk_id] in collection.qrels[qid]

    def holds_answer(qid, c):
        return ChunkSpan(c.chunk_id, c.doc_id, c.start, c.end).passage_id in questions.qrels[qid]

    train_q = gather(train, in_document(train), depth)  # scored only: SciFact is never fitted on
    test_q = gather(test, in_document(test), depth)
    squad_q = gather(questions, holds_answer, depth)
    print(f"gathered in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    folds = np.array_split(np.arange(len(squad_q)), FOLDS)
    oof = [None] * len(squad_q)
    for fold in folds:
        held = set(fold.tolist())
        model = fit_listwise(groups([q for i, q in enumerate(squad_q) if i not in held]), FEATURES)
        for i in fold:
            oof[i] = model
    model = fit_listwise(groups(squad_q), FEATURES)

    results = {
        "scifact train (nDCG@10, never fitted on)": (figures(train, train_q, None), figures(train, train_q, model)),
        "scifact test (nDCG@10, never fitted on)": (figures(test, test_q, None), figures(test, test_q, model)),
        "squad-dev-a (out of fold)": (figures(questions, squad_q, None), figures(questions, squad_q, oof)),
        "squad-dev-a (in-sample)": (figures(questions, squad_q, None), figures(questions, squad_q, model)),
    }
    report = {}
    print(f"{'collection':<42} {'metric':<10} {'fused':>7} {'re-ranked':>9}")
    for name, (before, after) in results.items():
        report[name] = {"fused": before, "reranked": after}
        for metric in ("ndcg@10", "hit@1", "hit@5"):
            if metric in before:
                print(f"{name:<42} {metric:<10} {before[metric]:>7.4f} {after[metric]:>9.4f}")
    meta = {
        "script": "qa fit rerank",
        "sets": {"squad-dev-a": len(squad_q)},  # fitted on
        "reported_only": {"scifact train": len(train_q), "scifact test": len(test_q)},  # scored, never fitted on
        "licence": LICENCE,
        "model": settings.model,
        "backend": settings.backend,
        "sentence_vectors": settings.sentence_vectors,
        "figures": report,
    }
    return write_or_check(
        Reranker(model, depth, meta).to_dict(),
        model_file(settings.sentence_vectors),
        out,
        check,
        started,
        "model",
    )
