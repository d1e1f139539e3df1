"""The latency or indexing benchmark of this checkout and of an earlier commit, run in turn.

    python -m bench.against 139701b                      # p50 at 100k chunks, 3 rounds of each
    python -m bench.against 139701b --rounds 5 --scales 10000,100000 --json results/against.json
    python -m bench.against 139701b --part indexing      # full-build throughput, onnx-int8, 3 rounds
    python -m bench.against --report results/against.json   # print a saved run again

A baseline file (`bench.run --baseline OLD.json`) holds one moment of a noisy machine: the same
code reads 10-30 % apart from run to run, and more from one day to the next. Here the earlier
commit is checked out in a temporary git worktree and both trees run `python -m bench.run --only
latency` alternately, round after round, so they are compared under the same conditions. Each runs
its own benchmark (the earlier figures are what its bench/run.py measured) with this environment's
packages. The ratio is of the medians over the rounds; the range is the rounds' own ratios.

`--part indexing` runs `bench.run --only indexing --backends onnx-int8` the same way and compares
the full build of the same SciFact abstracts in documents per second: the same input on both
sides, whereas chunks per second also counts how each commit cuts it into chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from qa.testing.against import compare, compare_indexing, print_report

ROOT = Path(__file__).resolve().parents[1]


def bench_run(tree: Path, part: str, options: list[str], out: Path) -> list[dict]:
    """One `bench.run --only PART` in `tree`, its rows."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "bench.run", "--only", part, *options, "--json", str(out)]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {part} benchmark failed in {tree}:\n{done.stderr[-2000:]}")
    return json.loads(out.read_text(encoding="utf-8"))[part]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commit", nargs="?", help="the earlier commit (any git revision)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=("latency", "indexing"), default="latency")
    parser.add_argument("--scales", default="100000", help="chunks, for latency")
    parser.add_argument("--docs", type=int, default=1000, help="SciFact abstracts, for indexing")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--report", metavar="FILE", help="print the table of an earlier --json run (measures nothing)")
    args = parser.parse_args(argv)
    if args.report:
        try:
            print_report(json.loads(Path(args.report).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise SystemExit(f"cannot read the saved run {args.report}: {exc}") from None
        return 0
    if not args.commit:
        parser.error("name the earlier commit, or --report FILE")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    head = (head.strip() or "HEAD") + (" with uncommitted changes" if dirty.strip() else "")
    with tempfile.TemporaryDirectory(prefix="qa-against-") as tmp:
        tree = Path(tmp) / "tree"
        shared = ROOT.parent / "shared"  # the data beside the repository, beside the worktree too
        if shared.is_dir():
            (Path(tmp) / "shared").symlink_to(shared.resolve(), target_is_directory=True)
        added = subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), args.commit], cwd=ROOT, capture_output=True, text=True
        )
        if added.returncode != 0:
            raise SystemExit(f"cannot check out {args.commit}: {added.stderr.strip()}")
        try:
            base, new = [], []
            if args.part == "latency":
                options = ["--scales", args.scales]
            else:
                options = ["--backends", "onnx-int8", "--docs", str(args.docs)]
            for r in range(args.rounds):  # in turn, so a slow spell of the machine hits both sides
                base.append(bench_run(tree, args.part, options, Path(tmp) / f"old-{r}.json"))
                new.append(bench_run(ROOT, args.part, options, Path(tmp) / f"new-{r}.json"))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    rows = compare(base, new) if args.part == "latency" else compare_indexing(base, new)
    data = {"part": args.part, "commit": args.commit, "head": head, "rounds": args.rounds, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")
    print_report(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
