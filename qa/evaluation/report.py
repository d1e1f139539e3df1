"""Printing, saving and comparing evaluations: tables, --save files, TREC runs, --compare."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import QAError
from qa.evaluation.answers import ASK
from qa.evaluation.dialogues import DialogueEvaluation
from qa.evaluation.metrics import LABELS, RESULT_FORMAT
from qa.evaluation.runner import Evaluation
from qa.evaluation.significance import ALPHA, CONFIDENCE, Difference, paired_differences


def metric_label(name: str) -> str:
    base, _, k = name.partition("@")
    return LABELS.get(base, base) + (f"@{k}" if k else "")


def format_table(modes: Mapping[str, Mapping[str, float]], reference: Mapping[str, float] | None = None) -> str:
    """Metrics as rows, modes side by side as columns."""
    names = list(dict.fromkeys(m for values in modes.values() for m in values))
    columns = list(modes)
    header = f"{'metric':<16}" + "".join(f"{c:>10}" for c in columns)
    lines = [header, "-" * len(header)]
    for name in names:
        cells = "".join(f"{modes[c][name]:>10.4f}" if name in modes[c] else f"{'—':>10}" for c in columns)
        lines.append(f"{metric_label(name):<16}" + cells)
    return "\n".join(lines)


def format_evaluation(evaluation: Evaluation) -> str:
    what = f"{evaluation.dataset}" + (f" ({evaluation.split})" if evaluation.split else "")
    lines = [
        f"{what}: {len(evaluation.queries)} queries, {evaluation.level}-level relevance, "
        f"model {evaluation.settings.get('model')}"
        + (f" ({evaluation.settings['backend']})" if evaluation.settings.get("backend", "torch") != "torch" else "")
        + f", chunks of {evaluation.settings.get('chunk_size')} tokens"
        + _rerank_label(evaluation.settings),
        "",
        format_table(evaluation.modes),
        "",
    ]
    for skipped in evaluation.skipped:
        lines.append(f"skipped line {skipped.line}: {skipped.reason}")
    if withheld := _withheld_line(evaluation):
        lines.append(withheld)
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in evaluation.timings.items())
    lines.append(f"{evaluation.seconds:.1f} s ({timing})")
    return "\n".join(lines)


def _withheld_line(evaluation: Evaluation) -> str:
    """What `--withheld` asked (the WithheldRefused figure is the share of these refused)."""
    withheld = evaluation.answers.withheld if evaluation.answers is not None else {}
    if not withheld:
        return ""
    return (
        f"withheld: {withheld['questions']} questions, each asked without the one document holding its answer"
        f" ({withheld['documents']} documents withheld in turn)"
    )


def collection_label(evaluation: Evaluation) -> str:
    return evaluation.dataset + (f" ({evaluation.split})" if evaluation.split else "")


def _rerank_label(settings: dict) -> str:
    """How the hybrid rows were ranked (runs saved before the re-ranker have no such setting)."""
    depth = settings.get("rerank_depth")
    if depth is None:
        return ""
    return f", hybrid re-ranked at {depth}" if depth else ", hybrid without re-ranking"


def format_evaluations(evaluations: Sequence[Evaluation]) -> str:
    """Several collections: what each is, then one table with a row per collection and mode."""
    if len(evaluations) == 1:
        return format_evaluation(evaluations[0])
    first = evaluations[0].settings
    lines = [
        f"model {first.get('model')}"
        + (f" ({first['backend']})" if first.get("backend", "torch") != "torch" else "")
        + f", chunks of {first.get('chunk_size')} tokens, chunk context {first.get('chunk_context', 'none')}"
        + _rerank_label(first),
    ]
    for e in evaluations:
        lines.append(f"{collection_label(e)}: {len(e.queries)} queries, {e.level}-level relevance")
    width = max(len(collection_label(e)) for e in evaluations) + 2
    rankings = [(e, {m: v for m, v in e.modes.items() if m != ASK}) for e in evaluations]
    answers = [(e, {ASK: e.modes[ASK]}) for e in evaluations if ASK in e.modes]
    lines += ["", *_rows_table(rankings, width)]
    if answers:
        lines += ["", "answers through `ask` (its defaults, relevance gate included):", *_rows_table(answers, width)]
    lines.append("")
    for e in evaluations:
        for skipped in e.skipped:
            lines.append(f"{e.dataset}: skipped line {skipped.line}: {skipped.reason}")
        if withheld := _withheld_line(e):
            lines.append(f"{collection_label(e)}: {withheld}")
    for e in evaluations:
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in e.timings.items())
        lines.append(f"{collection_label(e)}: {e.seconds:.1f} s ({timing})")
    return "\n".join(lines)


def _rows_table(rows: Sequence[tuple[Evaluation, Mapping[str, Mapping[str, float]]]], width: int) -> list[str]:
    """A row per collection and mode, a column per metric any row has."""
    names = list(dict.fromkeys(m for _, modes in rows for values in modes.values() for m in values))
    widths = {n: max(11, len(metric_label(n)) + 2) for n in names}
    header = f"{'collection':<{width}}{'mode':<9}" + "".join(f"{metric_label(n):>{widths[n]}}" for n in names)
    lines = [header, "-" * len(header)]
    for e, modes in rows:
        for mode, values in modes.items():
            cells = "".join(f"{values[n]:>{widths[n]}.4f}" if n in values else " " * widths[n] for n in names)
            lines.append(f"{collection_label(e):<{width}}{mode:<9}{cells}")
    return lines


def output_paths(path: str | Path, evaluations: Sequence[Evaluation]) -> list[Path]:
    """Where --save or --plot writes each evaluation: `path` for one, `<stem>-<collection><suffix>` for several."""
    path = Path(path).expanduser()
    if len(evaluations) == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{_slug(e.dataset)}{path.suffix}") for e in evaluations]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(name).stem).strip("-") or "eval"


def save_evaluation(evaluation: Evaluation, path: str | Path) -> None:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(evaluation.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_runs(evaluation: Evaluation, folder: str | Path) -> list[Path]:
    """TREC run files (`qid Q0 item rank score tag`), one per mode, and the qrels they are judged by."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    stem = _slug(evaluation.dataset)
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
    differences: dict[tuple[str, str], Difference] = field(default_factory=dict)  # (mode, metric) -> test

    def _test(self, mode: str, metric: str) -> dict:
        difference = self.differences.get((mode, metric))
        return {"test": difference.to_dict()} if difference else {}

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
                mode: {
                    m: {"a": a, "b": b, "delta": round(b - a, 4), **self._test(mode, m)}
                    for m, (a, b) in metrics.items()
                }
                for mode, metrics in self.modes.items()
            },
            "significance": {
                "test": "paired randomisation (sign flips), two-sided; Holm over the rows where a query moved",
                "interval": f"{CONFIDENCE:.0%} bootstrap percentile interval of the mean of B-A",
                "alpha": ALPHA,
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
        differences=paired_differences(_per_query_values(a), _per_query_values(b)),
    )


def _per_query_values(saved: dict) -> dict[str, dict[str, dict[str, float]]]:
    """mode -> metric -> query id -> value, from a --save file (off-topic questions keyed by their text)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for entry in saved["per_query"]:
        for mode in saved["modes"]:
            for name, value in entry.get(mode, {}).get("metrics", {}).items():
                out.setdefault(mode, {}).setdefault(name, {})[entry["id"]] = value
    for key, name in (("offtopic", "offtopic_refused"), ("withheld", "withheld_refused")):
        if saved.get(key, {}).get("per_query"):
            out.setdefault(ASK, {})[name] = dict(saved[key]["per_query"])
    return out


def format_comparison(comparison: Comparison, limit: int = 20) -> str:
    lines = [f"A: {comparison.a}", f"B: {comparison.b}", ""]
    interval = f"{CONFIDENCE:.0%} CI of B-A"
    header = f"{'mode':<9}{'metric':<16}{'A':>9}{'B':>9}{'B-A':>9}  {interval:<20}{'p':>8}{'p Holm':>8}"
    lines += [header, "-" * len(header)]
    for mode, metrics in comparison.modes.items():
        for name, (a, b) in metrics.items():
            row = f"{mode:<9}{metric_label(name):<16}{a:>9.4f}{b:>9.4f}{b - a:>+9.4f}"
            difference = comparison.differences.get((mode, name))
            if difference is not None and not difference.tested:
                row += f"  {'no query moved':<20}{'—':>8}{'—':>8}"
            elif difference is not None:
                ci = f"[{difference.low:+.4f}, {difference.high:+.4f}]"
                row += f"  {ci:<20}{_p(difference.p):>8}{_p(difference.p_holm):>8}"
                row += "" if difference.significant else "  n.s."
            lines.append(row)
    lines += [
        "",
        f"paired over the queries in both; p: randomisation test (two-sided), Holm-corrected over the rows "
        f"where a query moved; n.s.: not significant at {ALPHA}",
    ]
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
        if not items or limit < 1:  # --top 0: the counts alone
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


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _rank(rank: int | None) -> str:
    return str(rank) if rank else "none"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- dialogue sets ------------------------------------------------------------------------

DIALOGUE_LABELS = {
    "turns": "turns",
    "refused": "Refused",
    "passage1": "Passage[1]",
    "first_sentence": "FirstSentence",
    "short_answer": "ShortAnswer",
    "repeated": "Repeated",
    "median_words": "MedianWords",
}
_DIALOGUE_FORMATS = {"turns": "d", "median_words": ".1f"}


def format_dialogues(evaluation: DialogueEvaluation) -> str:
    """A dialogue set: what it is, then a row per group (overall, first turns, follow-ups, each kind)."""
    settings = evaluation.settings
    corpora = ", ".join(f"{name} ({where})" for name, where in evaluation.corpora.items())
    lines = [
        f"{evaluation.dataset}: {evaluation.conversations} conversations, {len(evaluation.results)} turns judged, "
        f"asked through Conversation (follow-ups carry context), model {settings.get('model')}"
        + (f" ({settings['backend']})" if settings.get("backend", "torch") != "torch" else ""),
        f"corpora: {corpora}",
        "",
    ]
    groups = evaluation.groups()
    width = max(len(name) for name in groups) + 2
    widths = {n: max(8, len(label) + 2) for n, label in DIALOGUE_LABELS.items()}
    header = f"{'turns of':<{width}}" + "".join(f"{label:>{widths[n]}}" for n, label in DIALOGUE_LABELS.items())
    lines += [header, "-" * len(header)]
    for name, values in groups.items():
        cells = "".join(f"{values[n]:>{widths[n]}{_DIALOGUE_FORMATS.get(n, '.4f')}}" for n in DIALOGUE_LABELS)
        lines.append(f"{name:<{width}}{cells}")
    lines += [
        "",
        "Passage[1], FirstSentence, ShortAnswer: shares of turns whose passage [1], short answer's first sentence,",
        "short answer holds the answer; Repeated: share of the sentences shown that the previous turn's short answer",
        "showed; MedianWords: the median short answer, in words",
    ]
    for skipped in evaluation.skipped:
        lines.append(f"skipped {skipped.qid} (line {skipped.line}): {skipped.reason}")
    lines.append(f"{evaluation.seconds:.1f} s")
    return "\n".join(lines)
