"""`qa report`: what readers asked and what the corpus failed them on, from the feedback store.

Questions are grouped by subject: each distinct question is embedded with the index's model
and joined to others by scikit-learn's agglomerative clustering (average linkage over cosine
distances), so "when did Japan protest?" and "how did Japan react?" count together. A refused
question (nothing found) asked under an older index is asked again of the current one, and
marked when it is now answered (a document added since holds it).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.storage.feedback import FeedbackRecord

# Questions whose average cosine similarity reaches this are one subject.
DEFAULT_SIMILARITY = 0.5
EXAMPLES = 3  # questions shown per subject


@dataclass(frozen=True)
class Subject:
    """Similar questions, with what happened to them."""

    label: str  # the question most like the others
    questions: tuple[str, ...]  # distinct, most asked first
    asked: int
    refused: int
    bad: int
    good: int
    answered: int
    now_answered: tuple[str, ...] = ()  # refused questions the current index answers

    @property
    def failed(self) -> int:
        return self.refused + self.bad

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "questions": list(self.questions),
            "asked": self.asked,
            "refused": self.refused,
            "thumbed_down": self.bad,
            "good": self.good,
            "answered": self.answered,
            "now_answered": list(self.now_answered),
        }


@dataclass(frozen=True)
class VersionTrend:
    """The records made while one index version answered."""

    version: str
    first: str  # time of its first record
    asked: int
    refused: int
    bad: int
    current: bool = False

    def to_dict(self) -> dict:
        return {
            "index_version": self.version,
            "first_record": self.first,
            "current": self.current,
            "asked": self.asked,
            "refused": self.refused,
            "thumbed_down": self.bad,
            "refused_share": _share(self.refused, self.asked),
            "thumbed_down_share": _share(self.bad, self.asked),
        }


@dataclass(frozen=True)
class UsageReport:
    since: str | None
    asked: int
    refused: int
    bad: int
    good: int
    answered: int
    subjects: tuple[Subject, ...]  # most failed first
    passages: tuple[tuple[str, int, int, int, int], ...]  # (doc_id, start, end, times shown, in bad answers)
    trend: tuple[VersionTrend, ...]  # oldest first
    refused_questions: tuple[str, ...] = ()
    bad_questions: tuple[str, ...] = ()
    now_answered: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "since": self.since,
            "asked": self.asked,
            "refused": self.refused,
            "thumbed_down": self.bad,
            "good": self.good,
            "answered": self.answered,
            "subjects": [s.to_dict() for s in self.subjects],
            "refused_questions": list(self.refused_questions),
            "thumbed_down_questions": list(self.bad_questions),
            "now_answered": list(self.now_answered),
            "passages": [
                {"doc_id": d, "start": s, "end": e, "shown": n, "in_thumbed_down": b} for d, s, e, n, b in self.passages
            ],
            "trend": [t.to_dict() for t in self.trend],
        }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def cluster_questions(vectors: np.ndarray, similarity: float = DEFAULT_SIMILARITY) -> list[int]:
    """A subject number per question vector (average-linkage clusters over cosine distance)."""
    if len(vectors) < 2:
        return [0] * len(vectors)
    from sklearn.cluster import AgglomerativeClustering

    clustering = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=1.0 - similarity
    )
    return [int(label) for label in clustering.fit_predict(vectors)]


def _key(question: str) -> str:
    return " ".join(question.lower().split())


def build_report(
    records: Sequence[FeedbackRecord],
    encode: Callable[[Sequence[str]], np.ndarray],
    current_version: str = "",
    answers_now: Callable[[FeedbackRecord], bool] | None = None,
    since: str | None = None,
    similarity: float = DEFAULT_SIMILARITY,
) -> UsageReport:
    """The report over these records; `answers_now` re-asks a refused question of the current index."""
    asked = [r for r in records if r.kind == "asked"]
    kinds = Counter(r.kind for r in records)
    refused = [r for r in asked if r.refused]
    now: dict[str, bool] = {}
    if answers_now is not None:
        for r in refused:
            key = _key(r.question)
            if r.index_version != current_version and key not in now:
                now[key] = answers_now(r)
    # One text per distinct question (case and spacing aside), the most frequent spelling; a
    # follow-up ("and how did Japan respond?") is placed by what was searched for it.
    spellings: dict[str, Counter] = {}
    searched: dict[str, str] = {}
    for r in records:
        spellings.setdefault(_key(r.question), Counter())[r.question] += 1
        if r.history and r.searched.strip():
            searched.setdefault(_key(r.question), r.searched)
    keys = list(spellings)
    texts = [searched.get(k) or spellings[k].most_common(1)[0][0] for k in keys]
    matrix = np.asarray(encode(texts), dtype=np.float32) if texts else np.zeros((0, 1), dtype=np.float32)
    labels = cluster_questions(matrix, similarity)
    vectors = dict(zip(keys, matrix))
    subject_of = dict(zip(keys, labels))
    members: dict[int, list[str]] = {}
    for k, label in zip(keys, labels):
        members.setdefault(label, []).append(k)
    subjects = []
    for label, group in members.items():
        counts = Counter()
        for r in records:
            if subject_of[_key(r.question)] == label:
                counts[r.kind] += 1
                counts["refused"] += r.kind == "asked" and r.refused
        ordered = sorted(group, key=lambda k: -sum(spellings[k].values()))
        central = ordered[0]
        if len(group) > 2:
            members_matrix = np.stack([vectors[k] for k in group])
            central = group[int(np.argmax((members_matrix @ members_matrix.T).mean(axis=1)))]
        label_text = spellings[central].most_common(1)[0][0]
        subjects.append(
            Subject(
                label=label_text,
                questions=tuple(spellings[k].most_common(1)[0][0] for k in ordered),
                asked=counts["asked"],
                refused=counts["refused"],
                bad=counts["bad"],
                good=counts["good"],
                answered=counts["answered"],
                now_answered=tuple(spellings[k].most_common(1)[0][0] for k in ordered if now.get(k)),
            )
        )
    subjects.sort(key=lambda s: (-s.failed, -s.asked, s.label))
    shown: Counter = Counter()
    in_bad: Counter = Counter()
    for r in asked:
        for p in r.passages:
            shown[(p.doc_id, p.start, p.end)] += 1
    for r in records:
        if r.kind == "bad":
            for p in r.passages:
                in_bad[(p.doc_id, p.start, p.end)] += 1
    passages = tuple(
        (d, s, e, shown[(d, s, e)], in_bad[(d, s, e)])
        for d, s, e in sorted(set(shown) | set(in_bad), key=lambda x: (-in_bad[x], -shown[x], x))
    )
    return UsageReport(
        since=since,
        asked=len(asked),
        refused=len(refused),
        bad=kinds["bad"],
        good=kinds["good"],
        answered=kinds["answered"],
        subjects=tuple(subjects),
        passages=passages,
        trend=_trend(records, current_version),
        refused_questions=tuple(dict.fromkeys(r.question for r in refused)),
        bad_questions=tuple(dict.fromkeys(r.question for r in records if r.kind == "bad")),
        now_answered=tuple(dict.fromkeys(r.question for r in refused if now.get(_key(r.question)))),
    )


def _trend(records: Sequence[FeedbackRecord], current: str) -> tuple[VersionTrend, ...]:
    """Per index version, in the order they answered: how many asked, refused, thumbed down."""
    order: dict[str, str] = {}
    counts: dict[str, Counter] = {}
    for r in records:
        order.setdefault(r.index_version, r.time)
        c = counts.setdefault(r.index_version, Counter())
        c[r.kind] += 1
        c["refused"] += r.kind == "asked" and r.refused
    return tuple(
        VersionTrend(v, order[v], counts[v]["asked"], counts[v]["refused"], counts[v]["bad"], v == current)
        for v in sorted(order, key=lambda v: order[v])
    )


# -- output ---------------------------------------------------------------------------------------


def format_report(report: UsageReport, top: int = 10) -> str:
    since = f" since {report.since}" if report.since else ""
    lines = [
        f"{report.asked} questions asked{since}: {report.refused} refused (nothing found, "
        f"{_share(report.refused, report.asked):.0%}), {report.bad} thumbed down, {report.good} thumbed up, "
        f"{report.answered} with a passage marked as the answer",
    ]
    if not report.asked and not report.bad and not report.answered:
        lines.append("(no feedback recorded yet: readers' questions and verdicts appear here once asked)")
        return "\n".join(lines)
    header = f"{'asked':>6}{'refused':>9}{'down':>6}{'up':>5}{'answered':>10}  subject (similar questions)"
    lines += ["", "By subject, most failed first:", header, "-" * len(header)]
    for s in report.subjects[:top]:
        more = f" (+{len(s.questions) - 1} similar)" if len(s.questions) > 1 else ""
        lines.append(f"{s.asked:>6}{s.refused:>9}{s.bad:>6}{s.good:>5}{s.answered:>10}  {_clip(s.label, 70)}{more}")
        for q in s.questions[1:EXAMPLES]:
            lines.append(f"{'':>36}  · {_clip(q, 68)}")
        for q in s.now_answered:
            lines.append(f"{'':>36}  ✓ answered now: {_clip(q, 54)}")
    if len(report.subjects) > top:
        lines.append(f"  ... and {len(report.subjects) - top} more subjects (--top N)")
    if report.passages:
        lines += ["", f"Passages shown (most thumbed down, then most shown; top {top}):"]
        lines.append(f"{'shown':>6}{'down':>6}  passage")
        for doc_id, start, end, n, bad in report.passages[:top]:
            lines.append(f"{n:>6}{bad:>6}  {doc_id} {start}:{end}")
    if report.trend:
        lines += ["", "By index version, oldest first:"]
        lines.append(f"{'asked':>6}{'refused':>9}{'down':>6}  index version (first question)")
        for t in report.trend:
            mark = "  ← current" if t.current else ""
            lines.append(
                f"{t.asked:>6}{_pct(t.refused, t.asked):>9}{_pct(t.bad, t.asked):>6}  {t.version} ({t.first}){mark}"
            )
    return "\n".join(lines)


def report_csv(report: UsageReport) -> str:
    """One row per subject: its counts and its questions."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["subject", "asked", "refused", "thumbed_down", "good", "answered", "now_answered", "questions"])
    for s in report.subjects:
        writer.writerow(
            [
                s.label,
                s.asked,
                s.refused,
                s.bad,
                s.good,
                s.answered,
                " | ".join(s.now_answered),
                " | ".join(s.questions),
            ]
        )
    return out.getvalue()


def _pct(part: int, whole: int) -> str:
    return f"{_share(part, whole):.0%}" if whole else "—"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
