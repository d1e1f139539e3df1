"""Answers as readers see them: each question through `ask` with its defaults, relevance gate included.

For every judged question of a set: was it answered at all ("nothing found" is a failure, since
every question of the set has an answer in the corpus), does passage [1] hold the answer, does
one of the passages, does passage [1]'s highlighted sentence, does the short answer. With a file
of off-topic questions (`qa eval --unanswerable FILE`), the share of them that `ask` refuses;
with `--withheld`, the share of questions it refuses when the one document that answers them is
taken out of the corpus (qa.evaluation.withheld).
A passage or sentence holds the answer when one of the answer strings lies inside it, or it
overlaps a gold span; the short answer when it contains an answer string (or a gold span's text).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import QAError
from qa.evaluation.questions import Question, Targets, answer_pattern, normalise, read_lines

ANSWER_METRICS = ("nothing_found", "hit@1", "hit@5", "highlight", "short_answer")
ASK = "ask"  # the column of `ask`'s answers beside the retrieval modes


@dataclass
class AnswerResults:
    per_query: dict[str, dict[str, float]]  # metric -> qid -> value
    first_relevant: dict[str, int | None]  # qid -> rank of the first passage holding the answer
    shown: dict[str, dict[str, float]]  # qid -> {passage "doc:start-end": score}, best first
    latency_ms: list[float] = field(default_factory=list)
    offtopic: dict = field(default_factory=dict)  # {"file", "questions", "refused", "per_query": {text: 0/1}}
    # qa.evaluation.withheld: {"documents", "questions", "refused", "per_query": {qid: 0/1}}
    withheld: dict = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        out = {m: round(float(np.mean(list(v.values()))), 4) for m, v in self.per_query.items() if v}
        if self.offtopic:
            out["offtopic_refused"] = self.offtopic["refused"]
        if self.withheld:
            out["withheld_refused"] = self.withheld["refused"]
        if self.latency_ms:
            out["p50_ms"] = round(float(np.percentile(self.latency_ms, 50)), 1)
        return out


def _holds(start: int, end: int, doc_id: str, targets: Targets) -> bool:
    inside = any(start <= s and e <= end for s, e in targets.contained.get(doc_id, ()))
    return inside or any(start < e and s < end for s, e in targets.overlapped.get(doc_id, ()))


def text_holds(text: str, question: Question, targets: Targets) -> bool:
    """Whether a text shown to a reader (a short answer, a sentence) holds an answer string or a gold span's text."""
    return any(answer_pattern(a).search(text) for a in question.answers) or any(
        normalise(span_text) in normalise(text) for span_text in targets.span_texts
    )


def judge_answer(answer, question: Question, targets: Targets) -> tuple[dict[str, float], int | None]:
    """The answer metrics of one `ask` answer, and the rank of its first passage holding the answer."""
    if not answer.passages:
        return {"nothing_found": 1.0, "hit@1": 0.0, "hit@5": 0.0, "highlight": 0.0, "short_answer": 0.0}, None
    holding = [_holds(p.start, p.end, p.doc_id, targets) for p in answer.passages]
    first = next((i + 1 for i, h in enumerate(holding) if h), None)
    top = answer.passages[0]
    highlight = _holds(top.highlight.start, top.highlight.end, top.doc_id, targets)
    short = text_holds(answer.answer, question, targets)
    return {
        "nothing_found": 0.0,
        "hit@1": float(bool(holding[0])),
        "hit@5": float(any(holding[:5])),
        "highlight": float(highlight),
        "short_answer": float(short),
    }, first


def read_unanswerable(path: str | Path) -> list[str]:
    """Off-topic questions, one a line; blank lines and lines starting with # are skipped."""
    path = Path(path).expanduser()
    lines = read_lines(path, "off-topic question file", "a text file with one question a line")
    questions = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not questions:
        raise QAError(f"{path} holds no question (one a line; lines starting with # are comments)")
    return questions


def evaluate_answers(
    engine,
    questions: Sequence[Question],
    targets: Mapping[str, Targets],
    unanswerable: Sequence[str] = (),
    unanswerable_name: str = "",
    progress: bool = False,
) -> AnswerResults:
    """Ask every question with `ask`'s defaults and judge what a reader would see."""
    from tqdm import tqdm

    per_query: dict[str, dict[str, float]] = {m: {} for m in ANSWER_METRICS}
    first: dict[str, int | None] = {}
    shown: dict[str, dict[str, float]] = {}
    latency: list[float] = []
    for question in tqdm(
        questions, desc="    ask", unit="question", disable=not progress, file=sys.stderr, dynamic_ncols=True
    ):
        started = time.perf_counter()
        answer = engine.ask(question.text)
        latency.append((time.perf_counter() - started) * 1000)
        metrics, rank = judge_answer(answer, question, targets[question.qid])
        for name, value in metrics.items():
            per_query[name][question.qid] = value
        first[question.qid] = rank
        shown[question.qid] = {f"{p.doc_id}:{p.start}-{p.end}": p.score for p in answer.passages}
    offtopic: dict = {}
    if unanswerable:
        refused = {}
        for text in tqdm(
            unanswerable, desc="off-topic", unit="question", disable=not progress, file=sys.stderr, dynamic_ncols=True
        ):
            refused[text] = 0.0 if engine.ask(text).passages else 1.0
        offtopic = {
            "file": unanswerable_name,
            "questions": len(refused),
            "refused": round(float(np.mean(list(refused.values()))), 4),
            "per_query": refused,
        }
    return AnswerResults(per_query, first, shown, latency, offtopic)
