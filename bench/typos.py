"""Answers to misspelt questions, with the spelling fallback (qa.retrieval.spelling) on and off.

    python -m bench.typos                 # 1,000 squad-dev-a questions, one typo each
    python -m bench.typos --limit 200     # fewer

Each question gets one typo of the kind people make: the 3rd and 4th letters of its longest
word (seven letters or more) swapped ("education" -> "edcuation"), unless that makes a word the
corpus uses. The questions are spread evenly over squad-dev-a (so over its articles); those
without such a word are left out. Both runs ask through `ask` with its defaults (the gate
included) on the same index, and print the share of questions answered at all, with the answer
in passage [1] and in the five passages, and the p50 time per question, side by side with the
ratio on / off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from qa.testing.typos import misspelt
from qa.training.answers import REPO, collections, open_collection, read_questions


def run(engine, questions: list[dict]) -> dict[str, float]:
    from qa.evaluation.questions import answer_pattern

    found = first = five = 0
    times = []
    for q in questions:
        started = time.perf_counter()
        answer = engine.ask(q["question"])
        times.append(time.perf_counter() - started)
        patterns = [answer_pattern(a) for a in q["answers"]]
        holds = [any(p.search(passage.text) for p in patterns) for passage in answer.passages]
        found += bool(answer.passages)
        first += bool(holds) and holds[0]
        five += any(holds)
    n = len(questions)
    return {
        "answered": found / n,
        "hit@1": first / n,
        "hit@5": five / n,
        "p50 ms": 1000 * statistics.median(times),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=1000, help="questions to misspell (default 1000)")
    args = parser.parse_args(argv)

    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.engine import open_index
    from qa.retrieval.spelling import held

    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.backend)
    name, corpus, questions_file, _ = collections(REPO)[0]
    engine = open_collection(corpus, None, settings, embedder)
    reader = engine.searcher.reader

    def known(word: str) -> bool:
        return held(reader, [word])[word] > 0

    every = read_questions(questions_file)
    step = max(1, len(every) // args.limit)
    asked = []
    for q in every[::step]:
        text = misspelt(q["question"], known)
        if text is not None:
            asked.append({**q, "question": text})
    asked = asked[: args.limit]
    off = open_index(settings=engine.settings.with_(spelling="off"), embedder=embedder)
    for q in asked[:10]:  # both engines warm (the English word list, memoised chunk facts)
        engine.ask(q["question"])
        off.ask(q["question"])
    print(f"{name}: {len(asked)} questions with one typo each, through `ask`")
    results = {"off": run(off, asked), "on": run(engine, asked)}
    print("\n| | spelling off | spelling on (default) | ratio (on / off) |\n| --- | --- | --- | --- |")
    for metric in results["on"]:
        a, b = results["off"][metric], results["on"][metric]
        digits = 1 if metric.endswith("ms") else 4
        print(f"| {metric} | {a:.{digits}f} | {b:.{digits}f} | {b / a:.2f} |" if a else f"| {metric} | {a} | {b} | |")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
