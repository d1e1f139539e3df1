"""`qa fit feedback` measured: readers' feedback simulated from squad-dev-a's own questions.

    python -m bench.simulate_feedback                     # 1,600 questions: 800 as feedback, 800 held out
    python -m bench.simulate_feedback --questions 0       # all 4,566
    python -m bench.simulate_feedback --noise 0.3 --json
    python -m bench.simulate_feedback --runs answers     # the feedback half labelled with answer strings

A seeded sample of squad-dev-a's questions is split in two. Each question of the first half is
asked of a copy of squad-dev-a's cached eval index (the cache itself is left alone) with the
shipped models, and a simulated reader records what a reader of the web chat would: the question
asked, then "answered" with the first shown passage that holds an answer string, or a thumbs-down
when none does. With noise, that many of the verdicts are wrong: a passage that does not hold
the answer marked as the answer (a random shown one), or, when none held it, a random one marked
anyway. `qa fit feedback --holdout 0` then fits on the index's own feedback export, as a user
would run it, and writes local-models.json beside the copy; the second half of the questions is
asked through `ask` before (shipped models) and after (the engine reading that file), judged on
squad's answer strings as `qa eval` judges them, with a paired bootstrap interval. `--runs
answers` gives the fit the feedback half as a hand-labelled question set instead, with squad's
answer strings (`qa fit feedback --questions FILE`): labels that tell sentences apart, which a
passage marked as the answer does not.

Mind that the shipped answer models were themselves fitted on every squad-dev-a question (and
the reader trained on most of its articles): "before" is in sample for them, so what is left for
a corpus's own feedback to gain here is small; on a corpus the shipped models never saw, more is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SQUAD = REPO.parent / "shared" / "data" / "squad-dev-a"


def simulate(engine, questions, targets, noise: float, rng: np.random.Generator) -> dict:
    """Record each question's simulated feedback in the engine's feedback store; counts of what was recorded."""
    from qa.storage.feedback import FeedbackRecord, ShownPassage

    counts = {"answered": 0, "wrong passage": 0, "thumbs down": 0, "refused": 0}
    engine._local = False
    for question in questions:
        answer = engine.ask(question.text)
        shown = tuple(ShownPassage(p.doc_id, p.start, p.end, p.rank) for p in answer.passages)
        engine.feedback.add(FeedbackRecord("asked", question.text, passages=shown, answer=answer.answer, channel="web"))
        if not shown:
            counts["refused"] += 1
            continue
        contained = targets[question.qid].contained
        holding = [p.rank for p in shown if any(p.start <= s and e <= p.end for s, e in contained.get(p.doc_id, ()))]
        wrong = rng.random() < noise
        others = [p.rank for p in shown if p.rank not in holding]
        if holding and not wrong:
            rank, kind = holding[0], "answered"
        elif wrong and others:
            rank, kind = int(rng.choice(others)), "wrong passage"
        else:
            rank, kind = None, "thumbs down"
        counts[kind] += 1
        if rank is None:
            engine.feedback.add(FeedbackRecord("bad", question.text, passages=shown, channel="web"))
        else:
            engine.feedback.add(FeedbackRecord("answered", question.text, passages=shown, rank=rank, channel="web"))
    engine._local = None
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=1600, help="questions sampled (default 1600; 0: all)")
    parser.add_argument("--share", type=float, default=0.5, help="share of them given as feedback (default 0.5)")
    parser.add_argument("--noise", type=float, default=0.25, help="share of wrong verdicts in the noisy run")
    parser.add_argument(
        "--runs",
        default="clean,noisy",
        help="which to run, comma-separated (default clean,noisy): clean and noisy simulated feedback, and "
        "answers: the feedback half as a hand-labelled set with squad's answer strings (`--questions FILE`)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="qa eval's index cache (default its own)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.evaluation.answers import evaluate_answers
    from qa.evaluation.cache import cached_index
    from qa.evaluation.questions import load_questions
    from qa.evaluation.significance import paired_difference
    from qa.ingest.readers import scan_corpus
    from qa.training.feedback import METRICS, fit_feedback, judged, labelled_questions

    started = time.perf_counter()
    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.backend)
    cached, _ = cached_index(SQUAD, settings, embedder, scan_corpus(SQUAD / "corpus"), SQUAD / "corpus", args.cache)
    rng = np.random.default_rng(args.seed)
    out: dict = {"runs": {}}
    with tempfile.TemporaryDirectory(prefix="qa-feedback-sim-") as tmp:
        every = {
            "clean": ("clean", 0.0),
            "noisy": (f"noisy ({args.noise:.0%} wrong)", args.noise),
            "answers": ("answer strings", None),
        }
        wanted = {part.strip() for part in args.runs.split(",")}
        runs = dict(every[key] for key in every if key in wanted)
        if not runs:
            parser.error(f"--runs: choose from clean, noisy, answers (got {args.runs!r})")
        before = None
        for name, noise in runs.items():
            copy = Path(tmp) / name.split()[0]
            shutil.copytree(
                cached.index_dir, copy, ignore=shutil.ignore_patterns(".lock", "feedback.sqlite*", "local-models.json")
            )
            engine = open_index(
                settings=cached.with_(index_dir=copy, feedback="on", local_models="on"), build=False, embedder=embedder
            )
            if before is None:
                kept, targets, _ = judged(engine, load_questions(SQUAD / "questions.jsonl"))
                order = rng.permutation(len(kept))
                if args.questions:
                    order = order[: args.questions]
                n_feedback = round(args.share * len(order))
                feedback = [kept[i] for i in sorted(order[:n_feedback])]
                held = [kept[i] for i in sorted(order[n_feedback:])]
                engine._local = False
                before = evaluate_answers(engine, held, targets).per_query
                engine._local = None
                out["questions"] = {"feedback": len(feedback), "held_out": len(held), "seed": args.seed}
                out["before"] = {m: round(float(np.mean(list(before[m].values()))), 4) for m in METRICS}
                print(f"held-out before: {out['before']} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
            if noise is None:  # the questions as a labelled set, answer strings and all
                counts = {"labelled with answer strings": len(feedback)}
                outcome = fit_feedback(engine, feedback, holdout=0.0, seed=args.seed)
            else:
                # Each run's verdicts drawn from a generator of its own: the same whichever runs are asked for.
                verdicts = np.random.default_rng([args.seed, int(noise * 1000)])
                counts = simulate(engine, feedback, targets, noise, verdicts)
                outcome = fit_feedback(engine, labelled_questions(engine, None), holdout=0.0, seed=args.seed)
            assert engine.local_models() is not None or not outcome.stored
            after = evaluate_answers(engine, held, targets).per_query  # the engine reads local-models.json
            differences = {
                m: paired_difference([before[m][q.qid] for q in held], [after[m][q.qid] for q in held], args.seed)
                for m in METRICS
            }
            out["runs"][name] = {
                "feedback": counts,
                "labelled": outcome.questions,
                "models": outcome.models,
                "after": {m: round(float(np.mean(list(after[m].values()))), 4) for m in METRICS},
                "differences": {m: d.to_dict() for m, d in differences.items()},
            }
            print(f"{name}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
            engine.snapshot.close()
    out["seconds"] = round(time.perf_counter() - started)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    q = out["questions"]
    print(f"squad-dev-a: {q['feedback']} questions as feedback, {q['held_out']} held out (seed {q['seed']})")
    for name, run in out["runs"].items():
        pulls = ", ".join(
            f"{m} pull {c['pull'] if c['pull'] is not None else 'none (shipped)'}" for m, c in run["models"].items()
        )
        print(f"\n{name}: {run['labelled']} labelled questions {run['feedback']}; {pulls}")
        print(f"  {'metric':14} {'before':>7} {'after':>7} {'change':>8}  95 % CI              p")
        for m, d in run["differences"].items():
            print(
                f"  {m:14} {out['before'][m]:7.4f} {run['after'][m]:7.4f} {d['delta']:+8.4f}  "
                f"[{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]  {d['p']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
