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
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from qa import __version__
from qa.errors import QAError
from qa.fusion import strictly_decreasing
from qa.search import MODES

RECALL_KS = (1, 5, 10, 100)
HIT_KS = (1, 5, 10)
CUTOFF = max(RECALL_KS)  # runs keep this many items; MAP is MAP@CUTOFF
CURVE_KS = range(1, CUTOFF + 1)
DEFAULT_DEPTH = 1000  # chunks per retriever: enough for 100 distinct documents
RESULT_FORMAT = 1
MAX_REPORTED_ERRORS = 20

# Our metric names (lower case, as in --json) -> ir-measures' names.
IR_MEASURES_NAMES = {"ndcg": "nDCG", "recall": "R", "mrr": "RR", "map": "AP", "hit": "Success"}
LABELS = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP", "hit": "Hit"}


def metric_names(passages: bool) -> list[str]:
    """The reported metrics; hit@k only for question sets (any relevant passage in the top k)."""
    names = ["ndcg@10", *(f"recall@{k}" for k in RECALL_KS), "mrr@10", f"map@{CUTOFF}"]
    return names + [f"hit@{k}" for k in HIT_KS] if passages else names


# -- question sets ------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanRef:
    """A gold span as written: a document (doc_id or corpus-relative source) and offsets into its text."""

    doc: str
    start: int
    end: int
    text: str = ""  # optional: the expected text, checked against the document


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    answers: tuple[str, ...] = ()
    spans: tuple[SpanRef, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Skipped:
    """A question left out of the scores, and why."""

    qid: str
    line: int
    reason: str

    def to_dict(self) -> dict:
        return {"id": self.qid, "line": self.line, "reason": self.reason}


def question_id(text: str) -> str:
    """A stable id for a question without one: it survives reordering the file."""
    return "q" + hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()[:10]


def parse_questions(lines: Iterable[str], name: str = "questions") -> list[Question]:
    """Questions from JSONL lines; every bad line is reported, with its number, in one QAError."""
    questions: list[Question] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            question = _parse_line(line, number)
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if question.qid in first_line:
            errors.append(f"line {number}: the same question (or id) as line {first_line[question.qid]}")
            continue
        first_line[question.qid] = number
        questions.append(question)
    if errors:
        shown = "\n  ".join(errors[:MAX_REPORTED_ERRORS])
        more = len(errors) - MAX_REPORTED_ERRORS
        raise QAError(
            f"{name}: {len(errors)} bad line(s); each line must be "
            '{"question": ..., "answers": [...]} and/or "spans": [{"doc_id" or "source", "start", "end"}]\n  '
            + shown
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    if not questions:
        raise QAError(f"{name} holds no questions")
    return questions


def _parse_line(line: str, number: int) -> Question:
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(item, dict):
        raise ValueError("expected a JSON object")
    text = item.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('"question" must be a non-empty string')
    answers = item.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise ValueError('"answers" must be a list of non-empty strings')
    raw_spans = item.get("spans", [])
    if not isinstance(raw_spans, list):
        raise ValueError('"spans" must be a list of {"doc_id" or "source", "start", "end"}')
    spans = []
    for i, span in enumerate(raw_spans, start=1):
        if not isinstance(span, dict):
            raise ValueError(f"span {i} must be an object")
        doc = span.get("doc_id", span.get("source"))
        start, end = span.get("start"), span.get("end")
        if not isinstance(doc, str) or not doc.strip():
            raise ValueError(f'span {i} needs "doc_id" or "source"')
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not 0 <= start < end:
            raise ValueError(f'span {i} needs integer offsets with 0 <= "start" < "end"')
        expected = span.get("text", "")
        if not isinstance(expected, str):
            raise ValueError(f'span {i}: "text" must be a string')
        spans.append(SpanRef(doc.strip(), start, end, expected))
    if not answers and not spans:
        raise ValueError('give "answers" or "spans" (or both)')
    qid = item.get("id")
    if qid is not None and (not isinstance(qid, (str, int)) or not str(qid).strip() or re.search(r"\s", str(qid))):
        raise ValueError('"id" must be a string or number without spaces')
    qid = str(qid) if qid is not None else question_id(text)
    return Question(qid, " ".join(text.split()), tuple(answers), tuple(spans), number)


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path).expanduser()
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_questions(fh, str(path))
    except FileNotFoundError:
        raise QAError(f"question set {path} not found") from None
    except UnicodeDecodeError as exc:
        raise QAError(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from None
    except IsADirectoryError:
        raise QAError(f"{path} is a folder; give a .jsonl file (or use --beir for a BEIR folder)") from None


# -- judging ------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive form of a text."""
    return " ".join(text.casefold().split())


def answer_pattern(answer: str) -> re.Pattern:
    """Matches the answer anywhere, ignoring case and treating any whitespace run as one space."""
    return re.compile(r"\s+".join(re.escape(word) for word in answer.split()), re.IGNORECASE)


def answer_spans(text: str, answers: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) of every occurrence of every answer in text (plain substring match)."""
    spans = []
    for answer in answers:
        pattern = answer_pattern(answer)
        position = 0
        while (match := pattern.search(text, position)) is not None:
            spans.append((match.start(), match.end()))
            position = match.start() + 1  # occurrences may overlap
    return sorted(set(spans))


@dataclass(frozen=True)
class ChunkSpan:
    id: int
    doc_id: str
    start: int
    end: int

    @property
    def passage_id(self) -> str:
        """Stable across re-indexing with the same chunker; no whitespace (TREC run files)."""
        return f"{quote(self.doc_id, safe='/-_.~')}:{self.start}-{self.end}"


def relevant_chunks(
    chunks: Sequence[ChunkSpan],
    contained: Mapping[str, Sequence[tuple[int, int]]],
    overlapped: Mapping[str, Sequence[tuple[int, int]]],
) -> list[ChunkSpan]:
    """Chunks that wholly contain one of the `contained` spans or overlap one of the `overlapped` spans.

    Both map doc_id -> [(start, end)] in document offsets: answer-string occurrences must
    lie inside a chunk, gold spans only need to share a character with it.
    """
    out = []
    for chunk in chunks:
        inside = any(chunk.start <= s and e <= chunk.end for s, e in contained.get(chunk.doc_id, ()))
        if inside or any(chunk.start < e and s < chunk.end for s, e in overlapped.get(chunk.doc_id, ())):
            out.append(chunk)
    return out


@dataclass(frozen=True)
class Judgements:
    """Passage-level qrels of a question set over one index."""

    qrels: dict[str, dict[str, int]]
    questions: list[Question]  # the judged ones, in file order
    skipped: list[Skipped]


def judge_questions(
    questions: Sequence[Question],
    chunks: Sequence[ChunkSpan],
    document: Callable[[str], tuple[str, str] | None],
) -> Judgements:
    """Relevant passages of each question; questions that cannot be judged are skipped with a reason.

    `document(doc_id_or_source)` gives (doc_id, text) or None.
    """
    by_doc: dict[str, list[ChunkSpan]] = {}
    for chunk in chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    texts: dict[str, str] = {}
    folded: dict[str, str] = {}  # normalised texts: a cheap test before the regex finds offsets

    def text_of(doc_id: str) -> str:
        if doc_id not in texts:
            found = document(doc_id)
            texts[doc_id] = found[1] if found else ""
        return texts[doc_id]

    def folded_of(doc_id: str) -> str:
        if doc_id not in folded:
            folded[doc_id] = normalise(text_of(doc_id))
        return folded[doc_id]

    qrels: dict[str, dict[str, int]] = {}
    judged: list[Question] = []
    skipped: list[Skipped] = []
    for question in questions:
        overlapped: dict[str, list[tuple[int, int]]] = {}
        problem = ""
        for i, span in enumerate(question.spans, start=1):
            found = document(span.doc)
            if found is None:
                problem = f"span {i}: no document '{span.doc}' in the index (`qa docs` lists them)"
                break
            doc_id, text = found
            texts[doc_id] = text
            if span.end > len(text):
                problem = f"span {i}: {span.start}:{span.end} is outside '{doc_id}' (0:{len(text)})"
                break
            if span.text and normalise(text[span.start : span.end]) != normalise(span.text):
                problem = f"span {i}: '{doc_id}' no longer has the given text at {span.start}:{span.end}"
                break
            overlapped.setdefault(doc_id, []).append((span.start, span.end))
        if problem:
            skipped.append(Skipped(question.qid, question.line, problem))
            continue
        contained: dict[str, list[tuple[int, int]]] = {}
        if question.answers:
            wanted = [normalise(a) for a in question.answers]
            for doc_id in by_doc:
                if not any(w in folded_of(doc_id) for w in wanted):
                    continue
                found_spans = answer_spans(text_of(doc_id), question.answers)
                if found_spans:
                    contained[doc_id] = found_spans
        relevant = relevant_chunks(
            [c for d in {*contained, *overlapped} for c in by_doc.get(d, ())], contained, overlapped
        )
        if not relevant:
            reason = (
                "none of the answers occurs within a passage of the indexed corpus"
                if question.answers and not question.spans
                else "no indexed passage contains an answer or overlaps a gold span"
            )
            skipped.append(Skipped(question.qid, question.line, reason))
            continue
        qrels[question.qid] = {c.passage_id: 1 for c in relevant}
        judged.append(question)
    return Judgements(qrels, judged, skipped)


# -- runs ---------------------------------------------------------------------------------


def document_run(ids: Sequence[int], scores: Sequence[float], doc_of: Mapping[int, str], k: int = CUTOFF) -> dict:
    """Top k documents, each scored by its best chunk, strictly decreasing (ties keep chunk order)."""
    ranked: list[tuple[str, float]] = []
    seen: set[str] = set()
    for chunk_id, score in zip(ids, scores):
        doc = doc_of.get(chunk_id)
        if doc is None or doc in seen:
            continue  # a chunk ranking is best first, so a document's first chunk is its best
        seen.add(doc)
        ranked.append((doc, float(score)))
        if len(ranked) == k:
            break
    return dict(strictly_decreasing(ranked))


def passage_run(ids: Sequence[int], scores: Sequence[float], passage_of: Mapping[int, str], k: int = CUTOFF) -> dict:
    """Top k passages, strictly decreasing scores."""
    ranked = [(passage_of[i], float(s)) for i, s in zip(ids, scores) if i in passage_of][:k]
    return dict(strictly_decreasing(ranked))


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], metrics: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per-query scores {metric: {qid: value}} with ir-measures; a query with nothing retrieved scores 0."""
    import ir_measures

    measures = {
        name: ir_measures.parse_measure(IR_MEASURES_NAMES[name.partition("@")[0]] + "@" + name.partition("@")[2])
        for name in metrics
    }
    by_measure = {measure: name for name, measure in measures.items()}
    values: dict[str, dict[str, float]] = {name: dict.fromkeys(qrels, 0.0) for name in metrics}
    judged = [ir_measures.Qrel(q, doc, int(grade)) for q, docs in qrels.items() for doc, grade in docs.items()]
    scored = [
        ir_measures.ScoredDoc(q, doc, float(score))
        for q, docs in run.items()
        if q in qrels
        for doc, score in docs.items()
    ]
    if scored:
        for metric in ir_measures.iter_calc(list(measures.values()), judged, scored):
            values[by_measure[metric.measure]][metric.query_id] = float(metric.value)
    return values


def mean(values: Mapping[str, float]) -> float:
    return float(np.mean(list(values.values()))) if values else 0.0


def recall_curve(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> list[float]:
    """Mean Recall@k for k = 1 … CUTOFF."""
    per_query = evaluate_run(qrels, run, [f"recall@{k}" for k in CURVE_KS])
    return [round(mean(per_query[f"recall@{k}"]), 6) for k in CURVE_KS]


# -- running ------------------------------------------------------------------------------


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

    @property
    def modes(self) -> dict[str, dict[str, float]]:
        return {mode: {m: round(mean(v), 4) for m, v in metrics.items()} for mode, metrics in self.per_query.items()}

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
        for qid, text in self.queries.items():
            entry: dict = {"id": qid, "question": text, "relevant": sorted(self.qrels[qid])}
            if qid in self.lines:
                entry["line"] = self.lines[qid]
            for mode in self.per_query:
                ranked = list(self.runs[mode].get(qid, {}))
                first = next((r for r, item in enumerate(ranked, 1) if item in self.qrels[qid]), None)
                entry[mode] = {
                    "metrics": {m: round(v[qid], 6) for m, v in self.per_query[mode].items()},
                    "first_relevant": first,
                    "top": ranked[:top],
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
        }


def chunk_table(catalog) -> list[ChunkSpan]:
    """Every chunk of the index with its document and span."""
    ids, _ = catalog.all_chunks()
    records = catalog.chunk_records(ids.tolist())
    return [ChunkSpan(i, r.chunk.doc_id, r.chunk.start, r.chunk.end) for i, r in sorted(records.items())]


def embed_queries(searcher, texts: Sequence[str], progress: bool = False) -> np.ndarray:
    """Query vectors in batches, through the index's embedding cache (a second run embeds nothing)."""
    from qa.chunking import text_hash
    from qa.embedding import EmbeddingCache, embed_with_cache
    from qa.index import IndexLayout

    cache = EmbeddingCache(IndexLayout(Path(searcher.settings.index_dir)).cache_path)
    try:
        vectors, _ = embed_with_cache(
            searcher.embedder, cache, list(texts), [text_hash(t) for t in texts], progress=progress
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


def _settings_info(settings, snapshot, depth: int) -> dict:
    return {
        "model": settings.model,
        "backend": settings.backend,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "fusion": settings.fusion,
        **({"rrf_k": settings.rrf_k} if settings.fusion == "rrf" else {"lexical_weight": settings.lexical_weight}),
        "depth": depth,
        "lexical": {k: v for k, v in snapshot.lexical.params.items() if k not in ("library", "version")},
    }


def evaluate_questions(
    engine,
    questions: Sequence[Question],
    name: str,
    modes: Sequence[str] = MODES,
    depth: int = DEFAULT_DEPTH,
    progress: bool = False,
) -> Evaluation:
    """Score a question set on an opened index (qa.engine.QA) at passage level."""
    from qa.search import Searcher

    started = time.perf_counter()
    modes = check_modes(modes)
    snapshot = engine.snapshot
    catalog = snapshot.catalog
    chunks = chunk_table(catalog)

    def document(key: str) -> tuple[str, str] | None:
        doc = catalog.document(key)
        return (doc.doc_id, doc.text) if doc else None

    judgements = judge_questions(questions, chunks, document)
    if not judgements.questions:
        reasons = "; ".join(f"line {s.line}: {s.reason}" for s in judgements.skipped[:5])
        raise QAError(f"no question of {name} can be judged on this index ({reasons})")
    passage_of = {c.id: c.passage_id for c in chunks}
    queries = {q.qid: q.text for q in judgements.questions}
    timings: dict[str, float] = {}
    searcher = Searcher(snapshot, engine.embedder, engine.settings)
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
    return Evaluation(
        dataset=name,
        kind="questions",
        level="passage",
        queries=queries,
        qrels=judgements.qrels,
        runs=runs,
        per_query=per_query,
        curves=curves,
        settings=_settings_info(engine.settings, snapshot, depth),
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
    from qa.beir import beir_id, index_beir, load_beir
    from qa.embedding import load_embedder
    from qa.index import IndexLayout, Snapshot
    from qa.search import Searcher

    started = time.perf_counter()
    modes = check_modes(modes)
    dataset = load_beir(folder, split)
    embedder = embedder or load_embedder(settings.model, settings.backend)
    index_settings, report = index_beir(dataset.folder, settings, embedder, cache_root, progress)
    timings = {"index": report.seconds}
    snapshot = Snapshot.open_current(IndexLayout(Path(index_settings.index_dir)))
    try:
        sources = {doc_id: source for source, (doc_id, _) in snapshot.catalog.sources().items()}
        doc_of = {c.id: beir_id(sources[c.doc_id]) for c in chunk_table(snapshot.catalog)}
        searcher = Searcher(snapshot, embedder, index_settings)
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
        info = _settings_info(index_settings, snapshot, depth)
        info["index"] = str(index_settings.index_dir)
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
        snapshot.close()
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


# -- output -------------------------------------------------------------------------------


def metric_label(name: str) -> str:
    base, _, k = name.partition("@")
    return LABELS.get(base, base) + (f"@{k}" if k else "")


def format_table(modes: Mapping[str, Mapping[str, float]], reference: Mapping[str, float] | None = None) -> str:
    """Metrics as rows, modes side by side as columns."""
    names = list(dict.fromkeys(m for values in modes.values() for m in values))
    columns = list(modes)
    header = f"{'metric':<12}" + "".join(f"{c:>10}" for c in columns)
    lines = [header, "-" * len(header)]
    for name in names:
        row = f"{metric_label(name):<12}" + "".join(f"{modes[c].get(name, float('nan')):>10.4f}" for c in columns)
        lines.append(row)
    return "\n".join(lines)


def format_evaluation(evaluation: Evaluation) -> str:
    what = f"{evaluation.dataset}" + (f" ({evaluation.split})" if evaluation.split else "")
    lines = [
        f"{what}: {len(evaluation.queries)} queries, {evaluation.level}-level relevance, "
        f"model {evaluation.settings.get('model')}"
        + (f" ({evaluation.settings['backend']})" if evaluation.settings.get("backend", "torch") != "torch" else "")
        + f", chunks of {evaluation.settings.get('chunk_size')} tokens",
        "",
        format_table(evaluation.modes),
        "",
    ]
    for skipped in evaluation.skipped:
        lines.append(f"skipped line {skipped.line}: {skipped.reason}")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in evaluation.timings.items())
    lines.append(f"{evaluation.seconds:.1f} s ({timing})")
    return "\n".join(lines)


def save_evaluation(evaluation: Evaluation, path: str | Path) -> None:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(evaluation.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_runs(evaluation: Evaluation, folder: str | Path) -> list[Path]:
    """TREC run files (`qid Q0 item rank score tag`), one per mode, and the qrels they are judged by."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(evaluation.dataset).stem) or "eval"
    written = []
    for mode, run in evaluation.runs.items():
        path = folder / f"{stem}.{mode}.trec"
        with open(path, "w", encoding="utf-8") as fh:
            for qid, items in run.items():
                for rank, (item, score) in enumerate(items.items(), start=1):
                    fh.write(f"{qid} Q0 {item} {rank} {float(score)!r} qa-{mode}\n")
        written.append(path)
    path = folder / f"{stem}.qrels"
    with open(path, "w", encoding="utf-8") as fh:
        for qid, items in evaluation.qrels.items():
            for item, grade in items.items():
                fh.write(f"{qid} 0 {item} {grade}\n")
    written.append(path)
    return written


# -- comparing saved results --------------------------------------------------------------


def load_saved(path: str | Path) -> dict:
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QAError(f"saved result {path} not found (write one with `qa eval ... --save FILE`)") from None
    except (OSError, ValueError) as exc:
        raise QAError(f"cannot read saved result {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT or "per_query" not in data:
        raise QAError(f"{path} is not a result saved by `qa eval --save`")
    data["path"] = str(path)
    return data


@dataclass(frozen=True)
class QueryChange:
    qid: str
    question: str
    a: float
    b: float
    first_a: int | None
    first_b: int | None

    @property
    def delta(self) -> float:
        return self.b - self.a


@dataclass
class Comparison:
    a: str
    b: str
    metric: str
    mode: str
    modes: dict[str, dict[str, tuple[float, float]]]  # mode -> metric -> (a, b)
    changes: list[QueryChange]  # worst first
    only_a: int = 0
    only_b: int = 0
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # "a"/"b" -> mode -> curve

    @property
    def worse(self) -> list[QueryChange]:
        return [c for c in self.changes if c.delta < 0]

    @property
    def better(self) -> list[QueryChange]:
        return [c for c in self.changes if c.delta > 0]

    def to_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "metric": self.metric,
            "mode": self.mode,
            "modes": {
                mode: {m: {"a": a, "b": b, "delta": round(b - a, 4)} for m, (a, b) in metrics.items()}
                for mode, metrics in self.modes.items()
            },
            "queries": len(self.changes),
            "worse": len(self.worse),
            "better": len(self.better),
            "only_in_a": self.only_a,
            "only_in_b": self.only_b,
            "per_query": [
                {
                    "id": c.qid,
                    "question": c.question,
                    "a": c.a,
                    "b": c.b,
                    "delta": round(c.delta, 6),
                    "first_relevant_a": c.first_a,
                    "first_relevant_b": c.first_b,
                }
                for c in self.changes
            ],
        }


def compare(a: dict, b: dict, metric: str = "ndcg@10", mode: str = "hybrid") -> Comparison:
    """Two saved results side by side; per-query changes of `metric` in `mode`, worst first."""
    shared_modes = [m for m in a["modes"] if m in b["modes"]]
    if not shared_modes:
        raise QAError(f"{a['path']} and {b['path']} have no retrieval mode in common")
    if mode not in shared_modes:
        raise QAError(f"mode '{mode}' is not in both results (both have: {', '.join(shared_modes)})")
    if metric not in a["modes"][mode] or metric not in b["modes"][mode]:
        raise QAError(f"metric '{metric}' is not in both results; both have: {', '.join(a['modes'][mode])}")
    modes = {
        m: {name: (a["modes"][m][name], b["modes"][m][name]) for name in a["modes"][m] if name in b["modes"][m]}
        for m in shared_modes
    }
    in_a = {q["id"]: q for q in a["per_query"]}
    in_b = {q["id"]: q for q in b["per_query"]}
    changes = []
    for qid, qa_ in in_a.items():
        qb = in_b.get(qid)
        if qb is None:
            continue
        ra, rb = qa_[mode], qb[mode]
        changes.append(
            QueryChange(
                qid,
                qa_.get("question", ""),
                ra["metrics"][metric],
                rb["metrics"][metric],
                ra.get("first_relevant"),
                rb.get("first_relevant"),
            )
        )
    if not changes:
        raise QAError(f"{a['path']} and {b['path']} share no query ids: were they run on the same question set?")
    order = {qid: i for i, qid in enumerate(in_a)}
    changes.sort(key=lambda c: (c.delta, order[c.qid]))
    return Comparison(
        a=a["path"],
        b=b["path"],
        metric=metric,
        mode=mode,
        modes=modes,
        changes=changes,
        only_a=len(set(in_a) - set(in_b)),
        only_b=len(set(in_b) - set(in_a)),
        curves={"a": a.get("curves", {}), "b": b.get("curves", {})},
    )


def format_comparison(comparison: Comparison, limit: int = 20) -> str:
    lines = [f"A: {comparison.a}", f"B: {comparison.b}", ""]
    header = f"{'mode':<9}{'metric':<12}{'A':>9}{'B':>9}{'B-A':>9}"
    lines += [header, "-" * len(header)]
    for mode, metrics in comparison.modes.items():
        for name, (a, b) in metrics.items():
            lines.append(f"{mode:<9}{metric_label(name):<12}{a:>9.4f}{b:>9.4f}{b - a:>+9.4f}")
    worse, better = comparison.worse, comparison.better
    same = len(comparison.changes) - len(worse) - len(better)
    lines += [
        "",
        f"{comparison.mode}, {metric_label(comparison.metric)} per query: {len(worse)} worse, "
        f"{len(better)} better, {same} unchanged (of {len(comparison.changes)} in both)",
    ]
    if comparison.only_a or comparison.only_b:
        lines.append(f"({comparison.only_a} queries only in A, {comparison.only_b} only in B: not compared)")
    for title, items in (("worse in B", worse), ("better in B", better[::-1])):
        if not items:
            continue
        lines += ["", f"{title}:"]
        width = max(len(c.qid) for c in items[:limit])
        for c in items[:limit]:
            rank = f"first relevant {_rank(c.first_a)} -> {_rank(c.first_b)}"
            lines.append(
                f"  {c.delta:+.3f}  {c.a:.3f} -> {c.b:.3f}  {rank:<28} {c.qid:<{width}}  {_clip(c.question, 70)}"
            )
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)


def _rank(rank: int | None) -> str:
    return str(rank) if rank else "none"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
