"""`qa fit feedback`: the answer models refitted on a corpus's own labelled questions, on top of the shipped ones.

The labelled questions are the index's own feedback export (qa.evaluation.labelled: the passage a
reader marked as answering each question, as a gold span) or a question set in `qa eval`'s
format. Each is asked through the engine with the shipped models (`ask`'s defaults; the features
are those its scorer computed), and labelled as `qa eval` judges an answer: a candidate chunk
holds the answer when an answer string lies inside it or at least half of it (or of a gold span,
the shorter) lies in a gold span; a sentence likewise. Every other candidate is a non-answer, the
passages a reader thumbed down among them.

The sentence scorer and the passage model are conditional logits (qa.answering.scorer); each is
refitted by maximum likelihood with an L2 pull towards the shipped weights (in the shipped
models' standardised feature space), started from them. The pull's strength is chosen by 5-fold
cross-validation on the training questions, on how often the best-scored candidate is one
labelled as the answer (what highlight and hit@1 count): the strongest pull within one standard
error (paired over questions) of the best one, the shipped models themselves (an infinite pull)
among the candidates; so a handful of questions leave the shipped weights where they are. The
log-likelihood is not the criterion: wrong verdicts (a reader marking a passage the shipped
models ranked lower) are matched best by a model less sure of its first choice, and on simulated
noisy feedback choosing by it lowered held-out highlight (bench/simulate_feedback.py).

The sentence model learns only from questions whose labels tell sentences apart (an answer
string, or a gold span shorter than its passage): a whole passage marked as the answer says which
passage, not which sentence. The relevance gate is not refitted (qa.answering.local: it keeps
judging the shipped scores).

With a held-out share (`--holdout`), the fit on the rest is measured on the held-out questions
through `ask`, before and after, with a paired bootstrap interval (qa.evaluation.significance);
the correction that is stored is then fitted on every question. A correction that lowers
held-out highlight beyond its interval is not stored.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.answering.features import passage_table
from qa.answering.local import LocalModels, local_path, read_local, shipped_hash, write_local
from qa.answering.scorer import AnswerModels, load_models, models_file
from qa.errors import QAError
from qa.evaluation.questions import Question, Targets
from qa.linear import LinearModel

HOLDOUT = 0.3
FOLDS = 5
# Pull strengths tried (an L2 penalty on the distance from the shipped weights, against a sum of
# one log-likelihood per question); math.inf keeps the shipped weights.
STRENGTHS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, math.inf)
MIN_QUESTIONS = 10  # fewer questions labelled for a model: it stays the shipped one
METRICS = ("highlight", "hit@1", "short_answer", "nothing_found")


# -- labels -------------------------------------------------------------------------------


def holds(start: int, end: int, doc_id: str, targets: Targets) -> bool:
    """A chunk or sentence holds the answer: an answer string lies inside it, or at least half of
    it or of a gold span (the shorter) lies in the other (a neighbour sharing a chunk's overlap does not)."""
    if any(start <= s and e <= end for s, e in targets.contained.get(doc_id, ())):
        return True
    return any(
        min(end, e) - max(start, s) >= 0.5 * min(end - start, e - s) > 0 for s, e in targets.overlapped.get(doc_id, ())
    )


@dataclass
class Example:
    """One labelled question as the shipped scorer saw it."""

    qid: str
    sentences: object  # qa.answering.features.SentenceTable
    candidates: list
    q: object
    analyser: object
    passage_labels: np.ndarray
    sentence_labels: np.ndarray | None  # None: the labels do not tell sentences apart


def label(asked, targets: Targets) -> Example | None:
    """The example of one question asked (qa.training.combination.Asked), or None when no candidate holds its answer."""
    scored = asked.scored
    if scored is None or not scored.candidates:
        return None
    cands = scored.candidates
    passages = np.array([holds(c.start, c.end, c.doc_id, targets) for c in cands], dtype=bool)
    if not passages.any() or passages.all():
        return None
    table = scored.sentences
    owner = np.asarray(table.candidate, dtype=int)
    sentences = np.array(
        [holds(int(s), int(e), cands[o].doc_id, targets) for (s, e), o in zip(table.spans, owner, strict=True)],
        dtype=bool,
    )
    inside = passages[owner]
    # Informative when some sentence of an answering passage does not hold the answer.
    telling = sentences.any() and bool((inside & ~sentences).any())
    return Example(asked.question.qid, table, cands, asked.q, asked.analyser, passages, sentences if telling else None)


# -- the pulled conditional logit ----------------------------------------------------------


class Groups:
    """Questions' candidate rows stacked, standardised as `base` standardises them."""

    def __init__(self, groups: Sequence[tuple[np.ndarray, np.ndarray]], base: LinearModel) -> None:
        sizes = np.array([len(labels) for _, labels in groups], dtype=int)
        self.n = len(groups)
        self.z = np.concatenate([(rows - base.mean) / base.scale for rows, _ in groups])
        self.positive = np.concatenate([np.asarray(labels, dtype=bool) for _, labels in groups])
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.owner = np.repeat(np.arange(self.n), sizes)

    def first_right(self, coef: np.ndarray) -> np.ndarray:
        """Per question, 1.0 when its best-scored row (the first of equals) is a positive one."""
        s = self.z @ coef
        ends = [*self.starts[1:], len(s)]
        return np.array([float(self.positive[a + int(np.argmax(s[a:b]))]) for a, b in zip(self.starts, ends)])

    def _terms(self, coef: np.ndarray):
        s = self.z @ coef
        top = np.maximum.reduceat(s, self.starts)
        e = np.exp(s - top[self.owner])
        total = np.add.reduceat(e, self.starts)
        positive = np.add.reduceat(np.where(self.positive, e, 0.0), self.starts)
        return np.log(positive) - np.log(total), e, total, positive

    def loss(self, coef: np.ndarray, base: np.ndarray, strength: float) -> tuple[float, np.ndarray]:
        ll, e, total, positive = self._terms(coef)
        p_all = e / total[self.owner]
        p_pos = np.where(self.positive, e, 0.0) / positive[self.owner]
        d = coef - base
        return float(-ll.sum() + 0.5 * strength * d @ d), (p_all - p_pos) @ self.z + strength * d


def fit_pulled(groups: Sequence[tuple[np.ndarray, np.ndarray]], base: LinearModel, strength: float) -> LinearModel:
    """The conditional logit on `groups` (rows, labels per question) with an L2 pull of `strength`
    towards `base`'s weights, started from them; math.inf (or no groups) gives `base` back."""
    from scipy.optimize import minimize

    if not groups or math.isinf(strength):
        return base
    data = Groups(groups, base)
    result = minimize(
        data.loss, base.coef.copy(), args=(base.coef, strength), jac=True, method="L-BFGS-B", options={"maxiter": 500}
    )
    return LinearModel(base.features, base.mean, base.scale, result.x.astype(np.float64), base.intercept)


@dataclass(frozen=True)
class Choice:
    model: LinearModel
    strength: float  # math.inf: the shipped weights
    questions: int
    first_right: dict[str, float] = field(default_factory=dict)  # strength -> cross-validated share

    def to_dict(self) -> dict:
        return {
            "questions": self.questions,
            "pull": None if math.isinf(self.strength) else self.strength,
            "cv_first_right": self.first_right,
        }


def choose_pull(groups: Sequence[tuple[np.ndarray, np.ndarray]], base: LinearModel, seed: int = 0) -> Choice:
    """The fit at the strongest pull whose cross-validated share of questions with a right first
    choice is within one standard error of the best pull's (paired over questions): a correction
    has to earn its distance from the shipped weights."""
    n = len(groups)
    if n < MIN_QUESTIONS:
        return Choice(base, math.inf, n)
    folds = np.random.default_rng(seed).permutation(n) % min(FOLDS, n)
    held: dict[float, np.ndarray] = {s: np.zeros(n) for s in STRENGTHS}
    for k in range(int(folds.max()) + 1):
        test = np.flatnonzero(folds == k)
        train = [groups[i] for i in np.flatnonzero(folds != k)]
        scoring = Groups([groups[i] for i in test], base)
        for strength in STRENGTHS:
            held[strength][test] = scoring.first_right(fit_pulled(train, base, strength).coef)
    best = max(STRENGTHS, key=lambda s: held[s].mean())
    chosen = best
    for strength in sorted(STRENGTHS, reverse=True):  # the shipped weights first, then ever weaker pulls
        diff = held[best] - held[strength]
        if diff.mean() <= diff.std(ddof=1) / math.sqrt(n):
            chosen = strength
            break
    table = {("shipped" if math.isinf(s) else f"{s:g}"): round(float(held[s].mean()), 4) for s in STRENGTHS}
    return Choice(fit_pulled(groups, base, chosen), chosen, n, table)


def fit_local(
    examples: Sequence[Example], shipped: AnswerModels, shipped_file_hash: str, embedding_model: str, seed: int = 0
) -> tuple[LocalModels, dict]:
    """The sentence model, then the passage model on the sentence model's logits (as it meets them)."""
    sentence = choose_pull(
        [(e.sentences.features, e.sentence_labels) for e in examples if e.sentence_labels is not None],
        shipped.sentence,
        seed,
    )
    passage_groups = [
        (
            passage_table(e.q, e.candidates, e.sentences, sentence.model.logits(e.sentences.features), e.analyser),
            e.passage_labels,
        )
        for e in examples
    ]
    passage = choose_pull(passage_groups, shipped.passage, seed)
    about = {"sentence": sentence.to_dict(), "passage": passage.to_dict()}
    local = LocalModels(
        None if math.isinf(sentence.strength) else sentence.model,
        None if math.isinf(passage.strength) else passage.model,
        shipped_file_hash,
        embedding_model,
        {"questions": len(examples), "models": about},
    )
    return local, about


# -- through the engine ----------------------------------------------------------------------


@dataclass
class Outcome:
    local: LocalModels
    models: dict  # each model's choice, fitted on every question
    questions: int  # labelled questions used
    skipped: list[str]
    held_out: int = 0
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    differences: dict = field(default_factory=dict)  # metric -> qa.evaluation.significance.Difference
    stored: str = ""  # where it was written ("" when not)
    refused: str = ""  # why it was not stored

    def to_dict(self) -> dict:
        return {
            "questions": self.questions,
            "held_out": self.held_out,
            "skipped": self.skipped,
            "models": self.models,
            "before": self.before,
            "after": self.after,
            "differences": {m: d.to_dict() for m, d in self.differences.items()},
            "stored": self.stored,
            "refused": self.refused,
        }


def examples_of(engine, questions: Sequence[Question], targets: dict[str, Targets]) -> list[Example]:
    """Each question asked through the engine with the shipped models, labelled."""
    from qa.training.combination import ask_all

    saved = engine._local
    engine._local = False
    try:
        asked = ask_all(engine, questions, targets)
    finally:
        engine._local = saved
    return [e for e in (label(a, targets[a.question.qid]) for a in asked) if e is not None]


def answers_through_ask(engine, questions: Sequence[Question], targets, local: LocalModels | None, progress=False):
    """Per-query answer metrics (metric -> qid -> value) of `ask` with `local` (None: the shipped models)."""
    from qa.evaluation.answers import evaluate_answers

    saved = engine._local
    engine._local = local if local is not None else False
    try:
        return evaluate_answers(engine, questions, targets, progress=progress).per_query
    finally:
        engine._local = saved


def judged(engine, questions: Sequence[Question]) -> tuple[list[Question], dict[str, Targets], list[str]]:
    from qa.training.combination import judged as judge

    kept, targets = judge(engine, list(questions))
    ids = {q.qid for q in kept}
    skipped = [f"{q.text!r}: no passage of the index holds its answer" for q in questions if q.qid not in ids]
    return kept, targets, skipped


def fit_feedback(
    engine,
    questions: Sequence[Question],
    holdout: float = HOLDOUT,
    seed: int = 0,
    store: bool = True,
    progress: bool = False,
) -> Outcome:
    """Fit the index's correction on `questions`; with `holdout`, measure a fit on the rest
    through `ask` first; with `store`, write it beside the index."""
    from qa.evaluation.significance import paired_difference

    if engine.store.kind != "local":
        raise QAError("qa fit feedback keeps its models beside a local index; a database store is not supported yet")
    if not 0.0 <= holdout < 1.0:
        raise QAError(f"--holdout must be a share from 0 up to (not including) 1 (got {holdout:g})")
    shipped_file = models_file(engine.settings.sentence_vectors)
    shipped = load_models(shipped_file)
    fingerprint, embedding = shipped_hash(shipped_file), engine.embedder.cache_key
    kept, targets, skipped = judged(engine, questions)
    if len(kept) < 2:
        raise QAError(f"{len(kept)} labelled question(s) can be judged on this index: too few to fit anything")
    order = np.random.default_rng(seed).permutation(len(kept))
    n_held = round(holdout * len(kept))
    held = [kept[i] for i in sorted(order[:n_held])]
    train = [kept[i] for i in sorted(order[n_held:])]
    examples = examples_of(engine, train, targets)
    outcome_fields: dict = {}
    if held:
        measured, _ = fit_local(examples, shipped, fingerprint, embedding, seed)
        before = answers_through_ask(engine, held, targets, None, progress)
        after = answers_through_ask(engine, held, targets, measured, progress)
        outcome_fields = {
            "held_out": len(held),
            "before": {m: round(float(np.mean(list(before[m].values()))), 4) for m in METRICS},
            "after": {m: round(float(np.mean(list(after[m].values()))), 4) for m in METRICS},
            "differences": {
                m: paired_difference([before[m][q.qid] for q in held], [after[m][q.qid] for q in held], seed)
                for m in METRICS
            },
        }
        examples += examples_of(engine, held, targets)
    local, about = fit_local(examples, shipped, fingerprint, embedding, seed)
    local.meta.update(seed=seed, index_version=engine.reader.name)  # what it was fitted on; a rebuild keeps it
    outcome = Outcome(local, about, len(kept), skipped, **outcome_fields)
    if outcome.differences:
        local.meta["held_out"] = {
            "questions": outcome.held_out,
            "before": outcome.before,
            "after": outcome.after,
            "differences": {m: d.to_dict() for m, d in outcome.differences.items()},
        }
        highlight = outcome.differences["highlight"]
        if highlight.high < 0:
            outcome.refused = (
                f"the correction lowered held-out highlight by {-highlight.delta:.4f} "
                f"(95 % CI {highlight.low:+.4f} to {highlight.high:+.4f}): not stored"
            )
    if store and not outcome.refused:
        path = write_local(local, local_path(engine.store.location))
        read_local(path, shipped_file, embedding)  # what was written reads back
        outcome.stored = str(path)
    return outcome


def format_outcome(outcome: Outcome) -> str:
    lines = [f"{outcome.questions} labelled questions judged on this index ({len(outcome.skipped)} left out)"]
    for name in ("sentence", "passage"):
        choice = outcome.models[name]
        if choice["questions"] < MIN_QUESTIONS:
            why = f"only {choice['questions']} questions label it (at least {MIN_QUESTIONS} needed)"
        elif choice["pull"] is None:
            why = f"no correction beat it in cross-validation ({choice['questions']} questions)"
        else:
            why = ""
        done = (
            f"kept as shipped: {why}"
            if why
            else f"corrected (pull {choice['pull']:g}, {choice['questions']} questions)"
        )
        lines.append(f"  {name} model: {done}")
    if outcome.differences:
        lines.append(f"held out: {outcome.held_out} questions, answered through ask (fit on the others)")
        lines.append(f"  {'metric':14} {'before':>7} {'after':>7} {'change':>8}  95 % CI              p")
        for m, d in outcome.differences.items():
            lines.append(
                f"  {m:14} {outcome.before[m]:7.4f} {outcome.after[m]:7.4f} {d.delta:+8.4f}  "
                f"[{d.low:+.4f}, {d.high:+.4f}]  {d.p:.3f}"
            )
    if outcome.refused:
        lines.append(outcome.refused)
    elif outcome.stored:
        lines.append(
            f"wrote {outcome.stored} (fitted on all {outcome.questions} questions; QA_LOCAL_MODELS=off ignores it)"
        )
    return "\n".join(lines)


def labelled_questions(engine, path: str | None) -> list[Question]:
    """The question set in `path`, or the index's own feedback as `qa feedback export` writes it."""
    from qa.evaluation.labelled import export_feedback
    from qa.evaluation.questions import load_questions, parse_questions

    if path:
        return load_questions(path)
    if engine.feedback is None:
        raise QAError("feedback is switched off (QA_FEEDBACK=off): give a labelled question set with --questions")

    def doc_length(doc_id: str) -> int | None:
        doc = engine.reader.document(doc_id)
        return None if doc is None else len(doc.text)

    export = export_feedback(engine.feedback.records(), doc_length)
    if not export.lines:
        raise QAError(
            "no reader has marked a passage as the answer yet: nothing to fit on "
            "(or give a labelled question set with --questions)"
        )
    return parse_questions([json.dumps(line) for line in export.lines], "the index's feedback")


def main_feedback(engine, questions: str | None, holdout: float, seed: int, as_json: bool = False) -> int:
    """`qa fit feedback`."""
    outcome = fit_feedback(engine, labelled_questions(engine, questions), holdout, seed, progress=sys.stderr.isatty())
    print(json.dumps(outcome.to_dict(), indent=2) if as_json else format_outcome(outcome))
    return 0
