"""Metrics over runs: ir-measures (trec_eval's definitions), document and passage runs, Recall@k curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qa.retrieval.fusion import strictly_decreasing

RECALL_KS = (1, 5, 10, 100)
HIT_KS = (1, 5, 10)
CUTOFF = max(RECALL_KS)  # runs keep this many items; MAP is MAP@CUTOFF
CURVE_KS = range(1, CUTOFF + 1)
DEFAULT_DEPTH = 1000  # chunks per retriever: enough for 100 distinct documents
RESULT_FORMAT = 1
MAX_REPORTED_ERRORS = 20

# Our metric names (lower case, as in --json) -> ir-measures' names.
IR_MEASURES_NAMES = {"ndcg": "nDCG", "recall": "R", "mrr": "RR", "map": "AP", "hit": "Success"}
LABELS = {
    "ndcg": "nDCG",
    "recall": "Recall",
    "mrr": "MRR",
    "map": "MAP",
    "hit": "Hit",
    "nothing_found": "NothingFound",
    "highlight": "Highlight",
    "short_answer": "ShortAnswer",
    "offtopic_refused": "OffTopicRefused",
    "withheld_refused": "WithheldRefused",
    "p50_ms": "p50 ms",
}


def metric_names(passages: bool) -> list[str]:
    """The reported metrics; hit@k only for question sets (any relevant passage in the top k)."""
    names = ["ndcg@10", *(f"recall@{k}" for k in RECALL_KS), "mrr@10", f"map@{CUTOFF}"]
    return names + [f"hit@{k}" for k in HIT_KS] if passages else names


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
