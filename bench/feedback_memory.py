"""A memory of answered questions, measured and not kept (docs/experiments/tried-and-not-kept.md).

    python -m bench.feedback_memory            # about 4 minutes

The idea: readers' feedback says which passage answered a question; a later question close to it
(the cosine of their embeddings above a threshold) lifts that passage's logit, and its sentences',
by a weight times how close. Simulated as bench/simulate_feedback.py simulates feedback: of the
same seeded 1,600 squad-dev-a questions, the first 800 are the feedback (the first of the five
best-scored candidates that holds an answer string is the passage marked as the answer; in the
noisy run 25 % of the verdicts mark a random other one). Asked of squad-dev-a's cached eval
index through the engine with its defaults (the reader on), each question's scores are kept,
and the memory is applied to them afterwards for every setting of the grid. Held out: the other
800 crowd questions, and the 186 natural-style questions of tests/data/natural_squad_questions.jsonl
(the memory then holds all 1,600 crowd questions). Judged by whether the best-scored sentence of
the best-scored passage holds an answer string, the scorer's own view of the highlight.

The best setting is chosen on the held-out questions themselves: an upper bound on what the
memory could gain, with its paired bootstrap interval (qa.evaluation.significance).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SQUAD = REPO.parent / "shared" / "data" / "squad-dev-a"
NATURAL = REPO / "tests" / "data" / "natural_squad_questions.jsonl"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8)
WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0)
NOISE = 0.25


@dataclass
class Seen:
    """One question's candidates as the engine scored them, with their labels."""

    vector: np.ndarray
    chunks: list[tuple[str, int, int]]
    passage_labels: np.ndarray
    passage_logits: np.ndarray
    spans: np.ndarray
    owner: np.ndarray
    sentence_labels: np.ndarray
    sentence_logits: np.ndarray


def ask_and_keep(engine, questions, targets) -> list[Seen]:
    from qa.training.combination import ask_all
    from qa.training.feedback import holds

    out = []
    for asked in ask_all(engine, questions, targets, reader=True):  # as `ask` answers: the reader on
        scored = asked.scored
        if scored is None or asked.q.vector is None:
            continue
        cands = scored.candidates
        owner = np.asarray(scored.sentences.candidate, dtype=int)
        spans = np.asarray(scored.sentences.spans, dtype=int).reshape(-1, 2)
        out.append(
            Seen(
                np.asarray(asked.q.vector, dtype=np.float32),
                [(c.doc_id, c.start, c.end) for c in cands],
                np.array([holds(c.start, c.end, c.doc_id, asked.targets) for c in cands], dtype=bool),
                np.asarray(scored.passage_logits, dtype=float),
                spans,
                owner,
                np.array([holds(s, e, cands[o].doc_id, asked.targets) for (s, e), o in zip(spans, owner)], dtype=bool),
                np.asarray(scored.sentence_logits, dtype=float),
            )
        )
    return out


def remembered(feedback: list[Seen], noise: float, rng: np.random.Generator) -> list[tuple[np.ndarray, str, int, int]]:
    """(question vector, doc id, start, end) of the passage each feedback question was answered by."""
    memory = []
    for seen in feedback:
        top = [int(i) for i in np.argsort(-seen.passage_logits, kind="stable")[:5]]
        holding = [i for i in top if seen.passage_labels[i]]
        others = [i for i in top if not seen.passage_labels[i]]
        wrong = rng.random() < noise
        if holding and not wrong:
            chosen = holding[0]
        elif wrong and others:
            chosen = int(rng.choice(others))
        else:
            continue
        memory.append((seen.vector, *seen.chunks[chosen]))
    return memory


def closeness(seen: Seen, memory, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate and per sentence: how close the closest remembered question answered by it is (0..1)."""
    from qa.evaluation.questions import Targets
    from qa.training.feedback import holds

    sims = np.stack([m[0] for m in memory]) @ seen.vector
    near = np.maximum(0.0, (sims - threshold) / (1.0 - threshold))
    passages, sentences = np.zeros(len(seen.chunks)), np.zeros(len(seen.spans))
    for j in np.flatnonzero(near > 0):
        _, doc_id, s, e = memory[j]
        answered = Targets({}, {doc_id: [(s, e)]})  # the remembered passage, as a gold span
        for i, (d, a, b) in enumerate(seen.chunks):
            if holds(a, b, d, answered):
                passages[i] = max(passages[i], near[j])
        for k, (a, b) in enumerate(seen.spans):
            if holds(int(a), int(b), seen.chunks[seen.owner[k]][0], answered):
                sentences[k] = max(sentences[k], near[j])
    return passages, sentences


def highlighted(seen: Seen, passages: np.ndarray, sentences: np.ndarray, wp: float, ws: float) -> float:
    first = int(np.argmax(seen.passage_logits + wp * passages))
    rows = np.flatnonzero(seen.owner == first)
    if not len(rows):
        return float(seen.passage_labels[first])
    best = rows[int(np.argmax((seen.sentence_logits + ws * sentences)[rows]))]
    return float(seen.sentence_labels[best])


def best_setting(held: list[Seen], memory) -> tuple[tuple | None, np.ndarray, np.ndarray]:
    """The best (threshold, passage weight, sentence weight) of the grid on `held` (None: no memory is as
    good), and per-question values before and after."""
    before = np.array([highlighted(s, np.zeros(len(s.chunks)), np.zeros(len(s.spans)), 0.0, 0.0) for s in held])
    best, best_values = None, before
    for threshold in THRESHOLDS:
        near = [closeness(s, memory, threshold) for s in held]
        for wp in WEIGHTS:
            for ws in WEIGHTS:
                values = np.array([highlighted(s, p, t, wp, ws) for s, (p, t) in zip(held, near)])
                if values.mean() > best_values.mean() + 1e-12:
                    best, best_values = (threshold, wp, ws), values
    return best, before, best_values


def main() -> int:
    from bench.simulate_feedback import SQUAD as squad_dir
    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.evaluation.cache import cached_index
    from qa.evaluation.questions import load_questions
    from qa.evaluation.significance import paired_difference
    from qa.ingest.readers import scan_corpus
    from qa.training.feedback import judged

    started = time.perf_counter()
    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.backend)
    cached, _ = cached_index(squad_dir, settings, embedder, scan_corpus(squad_dir / "corpus"), squad_dir / "corpus")
    engine = open_index(settings=cached.with_(feedback="off", local_models="off"), build=False, embedder=embedder)
    kept, targets, _ = judged(engine, load_questions(squad_dir / "questions.jsonl"))
    order = np.random.default_rng(0).permutation(len(kept))[:1600]  # bench.simulate_feedback's sample and split
    feedback = ask_and_keep(engine, [kept[i] for i in sorted(order[:800])], targets)
    held = ask_and_keep(engine, [kept[i] for i in sorted(order[800:])], targets)
    natural, natural_targets, _ = judged(engine, load_questions(NATURAL))
    natural_seen = ask_and_keep(engine, natural, natural_targets)
    print(f"asked in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    runs = [
        ("crowd, held out", "clean", held, remembered(feedback, 0.0, np.random.default_rng(1))),
        ("crowd, held out", "noisy (25 % wrong)", held, remembered(feedback, NOISE, np.random.default_rng(1))),
        ("natural", "clean, all 1,600", natural_seen, remembered(feedback + held, 0.0, np.random.default_rng(1))),
    ]
    print(
        f"{'asked':17} {'feedback':19} {'n':>4} {'memory':>6}  {'before':>6} {'best':>6} {'change':>7}  95 % CI"
        "            setting (threshold, passage, sentence weight)"
    )
    for asked, kind, seen, memory in runs:
        setting, before, after = best_setting(seen, memory)
        d = paired_difference(before, after)
        chosen = "no memory: none of the grid does better" if setting is None else str(setting)
        print(
            f"{asked:17} {kind:19} {len(seen):4d} {len(memory):6d}  {before.mean():6.3f} {after.mean():6.3f} "
            f"{d.delta:+7.3f}  [{d.low:+.3f}, {d.high:+.3f}]  {chosen}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
