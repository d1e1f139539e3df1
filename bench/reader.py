"""`ask` with and without the reader (qa.answering.reader), side by side: time and answers.

    python -m bench.reader                 # 300 squad-dev-a questions, spread over its articles
    python -m bench.reader --limit 100     # fewer
    python -m bench.reader --also DIR      # and a third path: the reader in DIR (e.g. `qa fit reader --ship DIR`)

Both paths answer the same questions on the same index through `ask` with its defaults (the
gate included), alternating question by question so that the machine's noise falls on both
alike; the reader's model is opened (and its first call made) before timing. Prints the p50 and
p90 time per question of each path, the ratio reader / no reader, and the share of questions
whose passage [1] highlight holds the answer on each (all squad-dev-a articles: the reader was
trained on most of them, so this is a speed benchmark, not an accuracy one; see
`qa fit reader --combine` for held-out figures).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from qa.training.answers import REPO, collections, open_collection, read_questions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=300, help="questions (default 300)")
    parser.add_argument("--also", metavar="DIR", help="another reader's folder, timed as a third path")
    args = parser.parse_args(argv)

    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.evaluation.answers import judge_answer
    from qa.evaluation.questions import judge_questions, parse_questions
    from qa.evaluation.runner import chunk_table

    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.backend)
    name, corpus, questions_file, _ = next(c for c in collections(REPO) if c[0] == "squad-dev-a")
    engine = open_collection(corpus, None, settings, embedder)
    rows = read_questions(questions_file)
    step = max(1, len(rows) // args.limit)
    import json

    questions = parse_questions([json.dumps(r) for r in rows[::step][: args.limit]], name)

    def document(key: str):
        doc = engine.reader.document(key)
        return (doc.doc_id, doc.text) if doc else None

    judged = judge_questions(questions, chunk_table(engine.reader), document)
    reading = engine.reading()
    if reading is None:
        parser.error("the reader is off (QA_READER=off) or reads nothing: nothing to compare")
    paths: dict[str, object] = {"without": False, "with": reading}
    if args.also:
        from qa.answering.reader import Reader
        from qa.answering.reading import Combination

        other = Reader(Path(args.also))
        paths["also"] = (other, Combination.of(other))
    for state in paths.values():
        engine._reading = state
        engine.ask(judged.questions[0].text)  # the models opened, caches warm
    times: dict[str, list[float]] = {path: [] for path in paths}
    held: dict[str, list[float]] = {path: [] for path in paths}
    for question in judged.questions:
        for path, state in paths.items():
            engine._reading = state
            started = time.perf_counter()
            answer = engine.ask(question.text)
            times[path].append((time.perf_counter() - started) * 1000)
            held[path].append(judge_answer(answer, question, judged.targets[question.qid])[0]["highlight"])
    engine._reading = reading

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]

    print(f"{name}: {len(judged.questions)} questions through ask, alternating paths")
    print(f"{'path':16} {'p50 ms':>8} {'p90 ms':>8} {'highlight':>10}")
    for path in paths:
        label = f"{path} reader" if path != "also" else Path(args.also).name
        print(
            f"{label:16} {statistics.median(times[path]):>8.1f} {pct(times[path], 90):>8.1f} "
            f"{sum(held[path]) / len(held[path]):>10.4f}"
        )
    for path in paths:
        if path != "without":
            ratio = statistics.median(times[path]) / statistics.median(times["without"])
            print(f"ratio {path} / without: p50 {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
