"""Retrieval evaluation: labelled question sets and BEIR benchmarks.

Two kinds of relevance:

* A question set (JSONL, one question a line) is judged at passage level: a chunk is
  relevant when it contains one of the question's answer strings (case- and
  whitespace-insensitive) or overlaps one of its gold spans. Spans are character offsets
  into a document's text, so they stay valid when the chunking changes.
* A BEIR benchmark is judged at document level by its qrels; a document's score is its
  best chunk's score.

Every mode is ranked with Searcher.rank (the ranking without the relevance gate that
`qa ask` applies) and the runs are scored with ir-measures (trec_eval's definitions, so
the numbers compare with published BEIR results).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa import __version__
from qa.errors import QAError
from qa.evaluation.answers import ASK, AnswerResults, evaluate_answers
from qa.evaluation.metrics import (
    DEFAULT_DEPTH,
    RESULT_FORMAT,
    document_run,
    evaluate_run,
    mean,
    metric_names,
    passage_run,
    recall_curve,
)
from qa.evaluation.questions import ChunkSpan, Question, Skipped, judge_questions
from qa.evaluation.withheld import evaluate_withheld
from qa.retrieval.search import MODES


@dataclass
class Evaluation:
    """What `qa eval` computes; `to_dict` is what --save writes."""

    dataset: str
    kind: str  # "questions" or "beir"
    level: str  # "passage" or "document"
    queries: dict[str, str]  # qid -> text, judged ones only
    qrels: dict[str, dict[str, int]]
    runs: dict[str, dict[str, dict[str, float]]]  # mode -> qid -> {item: score}
    per_query: dict[str, dict[str, dict[str, float]]]  # mode -> metric -> qid -> value
    curves: dict[str, list[float]]
    settings: dict
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # qid -> line in the question file
    split: str = ""
    answers: AnswerResults | None = None  # the "ask" column: answers through `ask`, gate included

    @property
    def modes(self) -> dict[str, dict[str, float]]:
        out = {mode: {m: round(mean(v), 4) for m, v in metrics.items()} for mode, metrics in self.per_query.items()}
        if self.answers is not None:
            out[ASK] = self.answers.means()
        return out

    def _query_modes(self) -> dict[str, tuple[dict, dict, dict]]:
        """mode -> (metric -> qid -> value, qid -> first relevant rank, qid -> top items)."""
        out = {}
        for mode in self.per_query:
            first, top = {}, {}
            for qid in self.queries:
                ranked = list(self.runs[mode].get(qid, {}))
                first[qid] = next((r for r, item in enumerate(ranked, 1) if item in self.qrels[qid]), None)
                top[qid] = ranked
            out[mode] = (self.per_query[mode], first, top)
        if self.answers is not None:
            top = {qid: list(items) for qid, items in self.answers.shown.items()}
            out[ASK] = (self.answers.per_query, self.answers.first_relevant, top)
        return out

    def summary(self) -> dict:
        """The --json output."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "level": self.level,
            "queries": len(self.queries),
            "modes": self.modes,
            "skipped": [s.to_dict() for s in self.skipped],
            "settings": self.settings,
            "seconds": round(self.seconds, 2),
        }

    def to_dict(self, top: int = 10) -> dict:
        per_query = []
        modes = self._query_modes()
        for qid, text in self.queries.items():
            entry: dict = {"id": qid, "question": text, "relevant": sorted(self.qrels[qid])}
            if qid in self.lines:
                entry["line"] = self.lines[qid]
            for mode, (metrics, first, ranked) in modes.items():
                entry[mode] = {
                    "metrics": {m: round(v[qid], 6) for m, v in metrics.items() if qid in v},
                    "first_relevant": first.get(qid),
                    "top": ranked.get(qid, [])[:top],
                }
            per_query.append(entry)
        return {
            "format": RESULT_FORMAT,
            "kind": self.kind,
            **self.summary(),
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "curves": self.curves,
            "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "qa_version": __version__,
            "per_query": per_query,
            **({"offtopic": self.answers.offtopic} if self.answers is not None and self.answers.offtopic else {}),
            **({"withheld": self.answers.withheld} if self.answers is not None and self.answers.withheld else {}),
        }


def chunk_table(reader) -> list[ChunkSpan]:
    """Every chunk of the index (an IndexReader, or a local catalog) with its document and span."""
    return [ChunkSpan(i, doc_id, start, end) for i, doc_id, start, end in reader.chunk_spans()]


def embed_queries(searcher, texts: Sequence[str], progress: bool = False) -> np.ndarray:
    """Query vectors through the index's embedding cache (a second run embeds nothing).

    The embedders give a text the same vector whatever is embedded beside it, so these are the
    vectors `ask` gets for the same questions.
    """
    from qa.embedding.models import embed_with_cache
    from qa.storage.stores import open_store
    from qa.types import text_hash

    cache = open_store(searcher.settings).embedding_cache()
    try:
        vectors, _ = embed_with_cache(
            searcher.embedder,
            cache,
            list(texts),
            [text_hash(t) for t in texts],
            progress=progress,
        )
    finally:
        cache.close()
    return vectors


def rank_queries(
    searcher,
    queries: Mapping[str, str],
    mode: str,
    depth: int,
    vectors: Mapping[str, np.ndarray],
    progress: bool = False,
) -> dict[str, tuple[list[int], list[float]]]:
    """qid -> (chunk ids, scores) best first, from Searcher.rank."""
    from tqdm import tqdm

    out = {}
    for qid, text in tqdm(
        queries.items(), desc=f"{mode:>7}", unit="query", disable=not progress, file=sys.stderr, dynamic_ncols=True
    ):
        ranking = searcher.rank(text, mode=mode, depth=depth, query_vector=vectors.get(qid))
        out[qid] = (ranking.ids, ranking.scores)
    return out


def run_modes(
    searcher,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    to_run: Callable[[list[int], list[float]], dict[str, float]],
    modes: Sequence[str],
    metrics: Sequence[str],
    depth: int = DEFAULT_DEPTH,
    progress: bool = False,
    timings: dict[str, float] | None = None,
) -> tuple[dict, dict, dict]:
    """(runs, per-query metrics, recall curves) per mode."""
    timings = timings if timings is not None else {}
    queries = {qid: searcher.correct(text).text for qid, text in queries.items()}  # as `ask` searches them
    vectors: dict[str, np.ndarray] = {}
    if any(m != "lexical" for m in modes):
        started = time.perf_counter()
        matrix = embed_queries(searcher, list(queries.values()), progress)
        vectors = dict(zip(queries, matrix))
        timings["embed queries"] = time.perf_counter() - started
    runs, per_query, curves = {}, {}, {}
    for mode in modes:
        started = time.perf_counter()
        ranked = rank_queries(searcher, queries, mode, depth, vectors, progress)
        runs[mode] = {qid: to_run(*ranked[qid]) for qid in queries}
        timings[mode] = time.perf_counter() - started
        per_query[mode] = evaluate_run(qrels, runs[mode], metrics)
        curves[mode] = recall_curve(qrels, runs[mode])
    return runs, per_query, curves


def check_modes(modes: Sequence[str]) -> list[str]:
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise QAError(f"unknown retrieval mode(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODES)}")
    return [m for m in ("lexical", "dense", "hybrid") if m in modes]


def _settings_info(settings, reader, depth: int) -> dict:
    return {
        "store": settings.store,
        **(
            {"pg_lexical": settings.pg_lexical, "pg_vector": settings.pg_vector} if settings.store == "postgres" else {}
        ),
        "model": settings.model,
        "backend": settings.backend,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "paragraph_size": max(settings.paragraph_size, settings.chunk_size),
        "chunk_context": settings.chunk_context,
        "context_tokens": settings.context_tokens,
        "fusion": settings.fusion,
        "candidates": settings.candidates,
        "rerank_depth": settings.rerank_depth,
        **({"rrf_k": settings.rrf_k} if settings.fusion == "rrf" else {"lexical_weight": settings.lexical_weight}),
        "depth": depth,
        "lexical": {k: v for k, v in reader.lexical_params.items() if k not in ("library", "version")},
    }


def evaluate_questions(
    engine,
    questions: Sequence[Question],
    name: str,
    modes: Sequence[str] = MODES,
    depth: int = DEFAULT_DEPTH,
    progress: bool = False,
    answers: bool = True,
    unanswerable: Sequence[str] = (),
    unanswerable_name: str = "",
    withheld: bool = False,
) -> Evaluation:
    """Score a question set on an opened index (qa.engine.QA) at passage level.

    With `answers`, every question also goes through `ask` with its defaults (the "ask"
    column: false "nothing found", hit@1/5, highlight and short answer holding the answer),
    and so do the `unanswerable` (off-topic) questions, which `ask` should refuse. With
    `withheld` too, the questions one document alone answers are asked of the corpus without it
    (qa.evaluation.withheld), which `ask` should refuse as well.
    """
    from qa.retrieval.search import Searcher

    started = time.perf_counter()
    modes = check_modes(modes)
    reader = engine.reader
    chunks = chunk_table(reader)

    def document(key: str) -> tuple[str, str] | None:
        doc = reader.document(key)
        return (doc.doc_id, doc.text) if doc else None

    judgements = judge_questions(questions, chunks, document)
    if not judgements.questions:
        reasons = "; ".join(f"line {s.line}: {s.reason}" for s in judgements.skipped[:5])
        raise QAError(f"no question of {name} can be judged on this index ({reasons})")
    passage_of = {c.id: c.passage_id for c in chunks}
    queries = {q.qid: q.text for q in judgements.questions}
    timings: dict[str, float] = {}
    searcher = Searcher(reader, engine.embedder, engine.settings)
    runs, per_query, curves = run_modes(
        searcher,
        queries,
        judgements.qrels,
        lambda ids, scores: passage_run(ids, scores, passage_of),
        modes,
        metric_names(passages=True),
        depth,
        progress,
        timings,
    )
    results = None
    if answers:
        started_answers = time.perf_counter()
        results = evaluate_answers(
            engine, judgements.questions, judgements.targets, unanswerable, unanswerable_name, progress
        )
        timings[ASK] = time.perf_counter() - started_answers
        if withheld:
            started_withheld = time.perf_counter()
            results.withheld = evaluate_withheld(engine, judgements.questions, judgements.targets, progress)
            timings["withheld"] = time.perf_counter() - started_withheld
    return Evaluation(
        answers=results,
        dataset=name,
        kind="questions",
        level="passage",
        queries=queries,
        qrels=judgements.qrels,
        runs=runs,
        per_query=per_query,
        curves=curves,
        settings=_settings_info(engine.settings, reader, depth),
        seconds=time.perf_counter() - started,
        timings=timings,
        skipped=judgements.skipped,
        lines={q.qid: q.line for q in judgements.questions},
    )


def evaluate_beir(
    folder: str | Path,
    settings,
    split: str = "test",
    modes: Sequence[str] = MODES,
    depth: int = DEFAULT_DEPTH,
    cache_root: Path | None = None,
    progress: bool = False,
    embedder=None,
) -> Evaluation:
    """Index a BEIR folder in its cache folder (once) and score it at document level."""
    from qa.embedding.models import load_embedder
    from qa.evaluation.beir import beir_id, index_beir, load_beir
    from qa.retrieval.search import Searcher
    from qa.storage.stores import open_store

    started = time.perf_counter()
    modes = check_modes(modes)
    dataset = load_beir(folder, split)
    embedder = embedder or load_embedder(settings.model, settings.backend)
    index_settings, report = index_beir(dataset.folder, settings, embedder, cache_root, progress)
    timings = {"index": report.seconds}
    reader = open_store(index_settings).open(embedder.cache_key, index_settings)
    try:
        sources = {doc_id: source for source, (doc_id, _) in reader.sources().items()}
        doc_of = {c.id: beir_id(sources[c.doc_id]) for c in chunk_table(reader)}
        searcher = Searcher(reader, embedder, index_settings)
        runs, per_query, curves = run_modes(
            searcher,
            dataset.queries,
            dataset.qrels,
            lambda ids, scores: document_run(ids, scores, doc_of),
            modes,
            metric_names(passages=False),
            depth,
            progress,
            timings,
        )
        info = _settings_info(index_settings, reader, depth)
        info["index"] = (
            f"{index_settings.pg_schema} (postgres)"
            if index_settings.store == "postgres"
            else str(index_settings.index_dir)
        )
        info["chunks_embedded"] = report.chunks_embedded
        info["documents"] = report.documents_total
        info["chunks"] = report.chunks_total
        judged_docs = {doc for rel in dataset.qrels.values() for doc in rel}
        missing = judged_docs - {beir_id(source) for source in sources.values()}
        if missing:  # they still count as relevant: recall cannot reach 1 for their queries
            info["judged_documents_not_in_index"] = len(missing)
        if report.failed:
            info["documents_not_indexed"] = len(report.failed)
    finally:
        reader.close()
    return Evaluation(
        dataset=dataset.name,
        kind="beir",
        level="document",
        queries=dataset.queries,
        qrels=dataset.qrels,
        runs=runs,
        per_query=per_query,
        curves=curves,
        settings=info,
        seconds=time.perf_counter() - started,
        timings=timings,
        split=split,
    )


# -- several collections in one run -------------------------------------------------------

QUESTIONS_FILE = "questions.jsonl"
CORPUS_FOLDER = "corpus"


@dataclass(frozen=True)
class Collection:
    """One thing `qa eval` scores: a BEIR folder, a question set over the configured index, or a
    question-set folder (questions.jsonl beside its own corpus/, indexed in the eval cache)."""

    kind: str  # "beir", "questions" or "folder"
    path: Path
    questions: tuple[Question, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name


def collections_from(beir: Sequence[str], question_sets: Sequence[str]) -> list[Collection]:
    """What to evaluate, in order: BEIR folders, then question sets; question files are parsed now,
    so that a bad line stops the run before any model loads."""
    from qa.evaluation.questions import load_questions

    out = [Collection("beir", Path(path).expanduser()) for path in beir]
    for given in question_sets:
        path = Path(given).expanduser()
        if path.is_dir():
            if not (path / QUESTIONS_FILE).is_file() or not (path / CORPUS_FOLDER).is_dir():
                raise QAError(
                    f"{path} is a folder without {QUESTIONS_FILE} and {CORPUS_FOLDER}/; give a .jsonl file, "
                    f"a folder holding {QUESTIONS_FILE} and {CORPUS_FOLDER}/, or --beir for a BEIR folder"
                )
            out.append(Collection("folder", path, tuple(load_questions(path / QUESTIONS_FILE))))
        else:
            out.append(Collection("questions", path, tuple(load_questions(path))))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise QAError(f"two collections are both named {', '.join(twice)}: results are told apart by name")
    return out


def open_question_folder(folder: Path, settings, cache_root: Path | None = None, progress: bool = False, embedder=None):
    """(engine, IndexReport): the folder's corpus/ indexed (once) in the eval cache and opened."""
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.evaluation.cache import cached_index
    from qa.ingest.readers import scan_corpus

    corpus = folder / CORPUS_FOLDER
    embedder = embedder or load_embedder(settings.model, settings.backend)
    index_settings, report = cached_index(folder, settings, embedder, scan_corpus(corpus), corpus, cache_root, progress)
    return open_index(settings=index_settings, build=False, embedder=embedder), report


def evaluate_question_folder(
    collection: Collection,
    settings,
    modes: Sequence[str] = MODES,
    depth: int = DEFAULT_DEPTH,
    cache_root: Path | None = None,
    progress: bool = False,
    embedder=None,
    **answers,
) -> Evaluation:
    """A question-set folder: its corpus/ indexed (once) in the eval cache, its questions scored on it.

    `answers` are evaluate_questions' options for the answers through `ask`.
    """
    started = time.perf_counter()
    engine, report = open_question_folder(collection.path, settings, cache_root, progress, embedder)
    index_settings = engine.settings
    try:
        result = evaluate_questions(engine, collection.questions, collection.name, modes, depth, progress, **answers)
    finally:
        engine.snapshot.close()
    result.timings = {"index": report.seconds, **result.timings}
    result.settings.update(
        index=str(index_settings.index_dir),
        chunks_embedded=report.chunks_embedded,
        documents=report.documents_total,
        chunks=report.chunks_total,
    )
    if report.failed:
        result.settings["documents_not_indexed"] = len(report.failed)
    result.seconds = time.perf_counter() - started
    return result
