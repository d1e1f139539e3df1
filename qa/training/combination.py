"""Choosing how the reader's scores join the fitted sentence scorer (`qa fit reader --combine`).

Every question is asked once through the engine (the default settings, relevance gate included)
with the reader off, and the scored candidates are kept; then each combination (how many of the
best sentences the reader reads, how much its logit weighs, whether passages are ranked again) is
applied to them and the answer judged as `qa eval` judges it (passage [1]'s highlight holds the
answer, hit@1, the short answer). The reader's scores are cached, so each sentence is read once.
The questions one document alone answers are also asked without that document (as `qa eval
--withheld` does), and the share refused is reported with and without the reader.

The combination is chosen on the validation articles of squad-dev-a (never trained on) and the
natural-style questions over the articles the reader was trained on, so the held-out articles,
the seed corpus and the natural-style questions over them stay out of sample; it is written to
the reader's reader.json with the figures of every set, before (reader off) and after.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answering import scorer as scorer_module
from qa.answering.answer import build_answer
from qa.answering.reader import Context, Reader, Reading
from qa.answering.reading import Combination
from qa.answering.scorer import Scored, reread
from qa.config import Settings
from qa.evaluation.answers import judge_answer
from qa.evaluation.questions import Question, Targets, judge_questions, parse_questions, question_id
from qa.evaluation.runner import chunk_table

DEPTHS = (0, 2, 3, 5, 8)
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.5)
METRICS = ("highlight", "hit@1", "short_answer")


class CachingReader:
    """A reader whose scores are kept per (question, sentence in context): each is read once."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.settings = reader.settings
        self._cache: dict[tuple[str, Context], tuple[float, object]] = {}

    def score(self, question: str, sentences: Sequence[Context]) -> Reading:
        missing = [c for c in dict.fromkeys(sentences) if (question, c) not in self._cache]
        if missing:
            fresh = self.reader.score(question, missing)
            for context, value, phrase in zip(missing, fresh.relevance, fresh.phrases, strict=True):
                self._cache[(question, context)] = (float(value), phrase)
        found = [self._cache[(question, c)] for c in sentences]
        return Reading(np.array([v for v, _ in found], dtype=np.float32), [p for _, p in found])


@dataclass
class Asked:
    """One question, asked once: what `build_answer` needs to answer it under any combination."""

    question: Question
    targets: Targets
    query: str = ""
    scored: Scored | None = None  # None: answered without scoring (catalog questions, small talk)
    models: object = None
    q: object = None
    analyser: object = None
    threshold: float = 0.0
    fixed: object = None  # the engine's own answer, when nothing here can change it


@dataclass
class QuestionSet:
    name: str
    role: str  # "choose" (the combination is chosen on it) or "report"
    asked: list[Asked]
    withheld: list[Asked] = dataclasses.field(default_factory=list)  # asked without their answer's document


def ask_all(engine, questions: Sequence[Question], targets: dict[str, Targets], reader: bool = False) -> list[Asked]:
    """Each question through the engine, the reader off unless `reader`, its scored candidates kept."""
    saved = engine._reading
    if not reader:
        engine._reading = False  # the engine then passes no reading on
    captured: dict = {}
    real = scorer_module.score

    def spy(models, question, q, candidates, analyser, reading=None, local=None):
        scored = real(models, question, q, candidates, analyser, reading, local)
        captured.update(scored=scored, models=models, q=q, analyser=analyser, query=question)
        return scored

    out: list[Asked] = []
    scorer_module.score = spy
    try:
        for question in questions:
            captured.clear()
            answer = engine.ask(question.text)
            if "scored" not in captured:
                out.append(Asked(question, targets[question.qid], fixed=answer))
                continue
            out.append(
                Asked(
                    question,
                    targets[question.qid],
                    captured["query"],
                    captured["scored"],
                    captured["models"],
                    captured["q"],
                    captured["analyser"],
                    engine._gate_threshold(captured["models"]),
                )
            )
    finally:
        scorer_module.score = real
        engine._reading = saved
    return out


def ask_withheld(engine, questions: Sequence[Question], targets: dict[str, Targets]) -> list[Asked]:
    """The questions one document alone answers, each asked (reader off) of the corpus without it."""
    from qa.evaluation.withheld import withheld_questions, without_their_document

    out: list[Asked] = []
    for asked, without in without_their_document(engine, withheld_questions(engine, questions, targets)):
        out += ask_all(without, asked, targets)
    return out


COSINE_ALONE = "cosine alone"


def answer_with(asked: Asked, reader, combination: Combination | str | None):
    """The answer under a combination (None: the reader off; COSINE_ALONE: each passage's sentence
    chosen by the bi-encoder cosine alone, the baseline the fitted scorer must not fall below)."""
    if asked.fixed is not None or asked.scored is None:
        return asked.fixed
    scored = asked.scored
    if combination == COSINE_ALONE:
        scored = dataclasses.replace(scored, sentence_logits=np.asarray(scored.sentences.cosines, dtype=np.float64))
    elif combination is not None and combination.active:
        scored = reread(scored, asked.models, asked.query, asked.q, asked.analyser, reader, combination)
    return build_answer(asked.question.text, scored, asked.models, 5, "hybrid", threshold=asked.threshold)


def figures(asked: list[Asked], reader, combination: Combination | None) -> dict[str, float]:
    values: dict[str, list[float]] = {m: [] for m in (*METRICS, "nothing_found", "phrase_shown", "phrase_right")}
    for item in asked:
        answer = answer_with(item, reader, combination)
        metrics, _ = judge_answer(answer, item.question, item.targets)
        for name in (*METRICS, "nothing_found"):
            values[name].append(metrics[name])
        phrase = answer.passages[0].highlight.answer if answer.passages else None
        values["phrase_shown"].append(float(phrase is not None))
        if phrase is not None:
            values["phrase_right"].append(float(_phrase_right(phrase, item)))
    out = {name: round(float(np.mean(v)), 4) for name, v in values.items() if v}
    out["questions"] = len(asked)
    return out


def refused(asked: list[Asked], reader, combination: Combination | None) -> float:
    """The share of the questions answered "nothing found"."""
    return float(np.mean([not answer_with(item, reader, combination).passages for item in asked]))


def _phrase_right(phrase, item: Asked) -> bool:
    """A shown phrase is right when it holds an answer string or lies inside one's occurrence."""
    doc = item.targets
    spans = [span for spans in doc.contained.values() for span in spans]
    text = " ".join(phrase.text.lower().split())
    if any(" ".join(a.lower().split()) in text for a in item.question.answers):
        return True
    return any(s <= phrase.start and phrase.end <= e for s, e in spans)


def choose(sets: list[QuestionSet], reader) -> tuple[Combination, list[dict]]:
    """The combination with the best mean highlight over the sets chosen on (ties: the shallower)."""
    trials = []
    choosing = [s for s in sets if s.role == "choose"]
    for depth, weight, passages in itertools.product(DEPTHS, WEIGHTS, (False, True)):
        if (depth == 0) != (weight == 0.0) or (depth == 0 and passages):
            continue
        combination = Combination(depth, weight, passages)
        per_set = {s.name: figures(s.asked, reader, combination) for s in choosing}
        mean = float(np.mean([f["highlight"] for f in per_set.values()]))
        trials.append({"depth": depth, "weight": weight, "passages": passages, "highlight": round(mean, 4)})
    best = max(trials, key=lambda t: (round(t["highlight"], 3), -t["depth"]))
    return Combination(best["depth"], best["weight"], best["passages"]), trials


def squad_sets(settings: Settings, natural: Path | None) -> list[tuple[str, str, list[Question]]]:
    """squad-dev-a's validation and held-out articles' questions, and the natural-style questions."""
    from qa.training import reader as training

    articles = training.read_corpus(training.SHARED / "corpus")
    placed = training.place_questions(training.read_jsonl(training.SHARED / "questions.jsonl"), articles)
    by_article: dict[str, list[dict]] = {}
    for p in placed:
        by_article.setdefault(p.article, []).append({"question": p.question, "answers": p.answers})

    def questions(rows: list[dict], name: str) -> list[Question]:
        unique = {
            question_id(r["question"]): {"question": r["question"], "answers": r["answers"]} for r in reversed(rows)
        }
        return parse_questions([json.dumps(r) for r in reversed(unique.values())], name)

    def of(names: Sequence[str]) -> list[dict]:
        return [row for name in names for row in by_article.get(name, [])]

    out = [
        ("squad validation articles", "choose", questions(of(training.VALIDATION), "validation")),
        ("squad held-out articles", "report", questions(of(training.HELD_OUT), "held-out")),
    ]
    if natural is not None and natural.is_file():
        rows = [json.loads(line) for line in natural.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept_out = set(training.HELD_OUT)
        trained = [r for r in rows if r.get("article") not in kept_out]
        held = [r for r in rows if r.get("article") in kept_out]
        out.append(("natural squad, other articles", "choose", questions(trained, "nt")))
        out.append(("natural squad, held-out articles", "report", questions(held, "nh")))
    return out


def judged(engine, questions: list[Question]) -> tuple[list[Question], dict[str, Targets]]:
    reader = engine.reader

    def document(key: str):
        doc = reader.document(key)
        return (doc.doc_id, doc.text) if doc else None

    judgements = judge_questions(questions, chunk_table(reader), document)
    return judgements.questions, judgements.targets


def run(reader: Reader, repo: Path, settings: Settings | None = None, progress=print, limit: int | None = None) -> dict:
    """Ask every set, choose the combination, and return it with every set's figures.

    `limit` keeps the first questions of each set only (a quick look, not a fit to ship)."""
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.evaluation.cache import cached_index
    from qa.ingest.readers import scan_corpus
    from qa.training import reader as training

    settings = settings or Settings.from_env()
    embedder = load_embedder(settings.model, settings.backend)
    caching = CachingReader(reader)
    sets: list[QuestionSet] = []
    started = time.perf_counter()

    squad = training.SHARED
    index_settings, _ = cached_index(squad, settings, embedder, scan_corpus(squad / "corpus"), squad / "corpus")
    engine = open_index(settings=index_settings, build=False, embedder=embedder)
    for name, role, questions in squad_sets(settings, repo / "tests" / "data" / "natural_squad_questions.jsonl"):
        kept, targets = judged(engine, questions[:limit])
        sets.append(QuestionSet(name, role, ask_all(engine, kept, targets), ask_withheld(engine, kept, targets)))
        progress(f"asked {name}: {len(kept)} questions ({time.perf_counter() - started:.0f} s)")

    seed = open_index(
        settings=settings.with_(corpus_dir=repo / "corpus", index_dir=repo / "index"), build=True, embedder=embedder
    )
    for name, path in (
        ("seed questions", repo / "tests" / "data" / "seed_questions.jsonl"),
        ("natural seed questions", repo / "tests" / "data" / "natural_seed_questions.jsonl"),
    ):
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            kept, targets = judged(seed, parse_questions(lines, path.name)[:limit])
            sets.append(QuestionSet(name, "report", ask_all(seed, kept, targets), ask_withheld(seed, kept, targets)))
            progress(f"asked {name}: {len(kept)} questions ({time.perf_counter() - started:.0f} s)")

    combination, trials = choose(sets, caching)
    progress(f"chose depth {combination.depth}, weight {combination.weight:g}, passages {combination.passages}")
    table = {}
    for s in sets:
        row = {
            "role": s.role,
            "cosine alone": figures(s.asked, caching, COSINE_ALONE),
            "reader off": figures(s.asked, caching, None),
            "reader on": figures(s.asked, caching, combination),
        }
        if s.withheld:
            row["reader off"]["withheld_refused"] = round(refused(s.withheld, caching, None), 4)
            row["reader on"]["withheld_refused"] = round(refused(s.withheld, caching, combination), 4)
            row["reader on"]["withheld_questions"] = len(s.withheld)
        table[s.name] = row
    return {
        "combination": {
            "depth": combination.depth,
            "weight": combination.weight,
            "passages": combination.passages,
            "chosen_on": [s.name for s in sets if s.role == "choose"],
        },
        "answers": table,
        "trials": trials,
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_table(result: dict) -> None:
    """Each set's figures: the cosine alone, the fitted scorer (reader off), and with the reader."""
    columns = ("highlight", "hit@1", "short_answer")
    print(f"{'set':34} {'role':7} {'n':>4}  " + "  ".join(f"{m + ' cos/off/on':>24}" for m in columns) + "  phrases")
    for name, row in result["answers"].items():
        cos, off, on = row["cosine alone"], row["reader off"], row["reader on"]
        cells = "  ".join(f"{cos[m]:>8.4f}/{off[m]:.4f}/{on[m]:.4f}" for m in columns)
        shown = f"{on.get('phrase_shown', 0):.2f} shown, {on.get('phrase_right', 0):.3f} right"
        withheld = (
            f"  withheld refused {off['withheld_refused']:.4f}/{on['withheld_refused']:.4f}"
            f" of {on['withheld_questions']}"
            if "withheld_refused" in on
            else ""
        )
        print(f"{name:34} {row['role']:7} {on['questions']:>4}  {cells}  {shown}{withheld}")


def main_combine(limit: int | None = None, folder: Path | None = None) -> int:
    """`qa fit reader --combine`: choose, print, and (on the full sets) write reader.json's combination."""
    from qa.answering.reader import MODEL_DIR

    folder = folder or MODEL_DIR
    reader = Reader(folder)
    repo = Path(__file__).resolve().parents[2]
    result = run(reader, repo, limit=limit, progress=lambda line: print(line, flush=True))
    print_table(result)
    chosen = result["combination"]
    print(f"combination: depth {chosen['depth']}, weight {chosen['weight']:g}, passages {chosen['passages']}")
    if limit is not None:
        print("(a look at the first questions only: reader.json is left as it is)")
        return 0
    meta = folder / "reader.json"
    data = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
    data["combination"] = chosen
    data["answers_through_ask"] = result["answers"]
    data["combination_trials"] = result["trials"]
    meta.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote the combination and the figures to {meta}")
    return 0
