"""Collections to tune and fit retrieval on: a BEIR collection's or a question set's queries, their
judgements, and what re-ranking and re-fusing them needs (the searcher over the collection's index,
as `qa eval` caches it, and each query's vector). `qa fit rerank` fits on squad-dev-a's and only
scores SciFact's (CC BY-NC: never fitted on), and bench.tune chooses first-stage settings on them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa import evaluation as ev
from qa.config import Settings
from qa.evaluation.beir import beir_id, index_beir, load_beir
from qa.retrieval.search import Searcher
from qa.storage.local.snapshot import IndexLayout, Snapshot

Ranked = dict[str, tuple[list[int], list[float]]]  # qid -> (chunk ids, scores), best first


@dataclass
class Collection:
    """One collection's queries, judgements and per-query chunk rankings, ready to re-fuse."""

    name: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    to_run: Callable[[Sequence[int], Sequence[float]], dict]
    metrics: list[str]
    headline: str  # the figure a setting is judged by on this collection
    searcher: Searcher
    snapshot: Snapshot
    doc_of_chunk: dict[int, str]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    dense: Ranked = field(default_factory=dict)
    lexical: Ranked = field(default_factory=dict)

    def score(self, ranked: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> dict[str, float]:
        runs = {qid: self.to_run(*ranked[qid]) for qid in self.queries}
        values = ev.evaluate_run(self.qrels, runs, self.metrics)
        return {m: round(ev.mean(v), 4) for m, v in values.items()}

    def texts(self) -> dict[int, str]:
        """What the lexical index holds for each chunk (its represented text)."""
        return dict(self.snapshot.lexical._texts)


def _embed(collection: Collection) -> None:
    matrix = ev.embed_queries(collection.searcher, list(collection.queries.values()))
    collection.vectors = dict(zip(collection.queries, matrix))


def beir_collection(folder: str, split: str, settings: Settings, embedder) -> Collection:
    index_settings, _ = index_beir(folder, settings, embedder, progress=sys.stderr.isatty())
    snapshot = Snapshot.open_current(IndexLayout(Path(index_settings.index_dir)))
    sources = {doc_id: source for source, (doc_id, _) in snapshot.catalog.sources().items()}
    doc_of = {c.id: beir_id(sources[c.doc_id]) for c in ev.chunk_table(snapshot.catalog)}
    data = load_beir(folder, split)
    collection = Collection(
        name=f"{data.name} {split}",
        queries=data.queries,
        qrels=data.qrels,
        to_run=lambda ids, scores: ev.document_run(ids, scores, doc_of),
        metrics=["ndcg@10", "recall@100"],
        headline="ndcg@10",
        searcher=Searcher(snapshot, embedder, index_settings),
        snapshot=snapshot,
        doc_of_chunk=doc_of,
    )
    _embed(collection)
    return collection


def question_collection(path: str, settings: Settings, embedder) -> Collection:
    """A question-set folder (questions over its own corpus, cached like `qa eval` does) or a file."""
    from qa.engine import open_index
    from qa.evaluation.cache import cached_index
    from qa.ingest.readers import scan_corpus

    [spec] = ev.collections_from([], [path])
    index_settings = settings
    if spec.kind == "folder":
        corpus = spec.path / "corpus"
        index_settings, _ = cached_index(spec.path, settings, embedder, scan_corpus(corpus), corpus)
    snapshot = open_index(settings=index_settings, embedder=embedder).snapshot
    chunks = ev.chunk_table(snapshot.catalog)

    def document(key: str):
        doc = snapshot.catalog.document(key)
        return (doc.doc_id, doc.text) if doc else None

    judgements = ev.judge_questions(spec.questions, chunks, document)
    passage_of = {c.id: c.passage_id for c in chunks}
    collection = Collection(
        name=spec.name,
        queries={q.qid: q.text for q in judgements.questions},
        qrels=judgements.qrels,
        to_run=lambda ids, scores: ev.passage_run(ids, scores, passage_of),
        metrics=["hit@1", "hit@5", "mrr@10"],
        headline="hit@1",
        searcher=Searcher(snapshot, embedder, index_settings),
        snapshot=snapshot,
        doc_of_chunk={c.id: c.doc_id for c in chunks},
    )
    _embed(collection)
    return collection
