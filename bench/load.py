"""Load test of the web chat's API: many gradio_client clients asking `/ask` at once.

    python -m bench.load                          # the real bundled model on the bundled corpus, 50 x 20
    python -m bench.load --model hash --clients 10 --questions 5    # a quick run without the model
    python -m bench.load --url http://127.0.0.1:7860/               # a server that is already running
    python -m bench.load --json results/load.json                   # also write the figures as JSON
    python -m bench.load --json                                     # only the JSON, on stdout

Starts `python app.py --port FREE` on 127.0.0.1 (unless --url is given) with its own index in
a temporary folder (so the repository's index/ is never touched; --index to reuse one), waits
until it answers, then runs --clients clients in parallel, each asking --questions questions
one after the other. Every answer must be the JSON of `qa ask --json`; anything else counts as
an error. Prints throughput (questions per second over the whole run) and p50/p95 latency of
single questions as the clients saw them (queueing included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from qa.testing.load import run_load
from qa.testing.web import running_app, server_env

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def app_server(
    corpus: Path,
    index: Path,
    model: str | None,
    backend: str | None,
    concurrency: int | None,
    log: Path,
    timeout: float = 600.0,
) -> Iterator[str]:
    """`python app.py` on a free loopback port; yields its URL once it answers, stops it after."""
    extra = {"QA_MODEL": model or "", "QA_BACKEND": backend or ""}
    env = server_env(corpus, index, **{k: v for k, v in extra.items() if v})
    args = ["--concurrency", str(concurrency)] if concurrency else []
    with running_app(env, log, args, timeout=timeout, poll=0.25) as url:
        yield url


def resolved_server(args: argparse.Namespace) -> dict:
    """Model, backend and concurrency the started server runs with (its defaults resolved)."""
    from qa.cli import add_serve_arguments
    from qa.config import Settings

    chosen = {"QA_MODEL": args.model or "", "QA_BACKEND": args.backend or ""}
    settings = Settings.from_env(chosen)
    serve = argparse.ArgumentParser()
    add_serve_arguments(serve)
    concurrency = args.concurrency or serve.parse_args([]).concurrency
    return {"model": settings.model, "backend": settings.backend, "concurrency": concurrency, "corpus": args.corpus}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="clients asking at once (default 50)")
    parser.add_argument("--questions", type=int, default=20, help="questions per client (default 20)")
    parser.add_argument("-k", type=int, default=5, help="passages per answer (default 5)")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "lexical"])
    parser.add_argument("--url", help="ask this running server instead of starting app.py")
    parser.add_argument("--corpus", default=str(REPO / "corpus"), help="corpus folder (default the bundled one)")
    parser.add_argument("--index", help="index folder (default: a new temporary one, built at start)")
    parser.add_argument("--model", help="QA_MODEL for the server (default the bundled model; 'hash' for a dry run)")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], help="QA_BACKEND for the server")
    parser.add_argument("--concurrency", type=int, help="app.py --concurrency (default: the app's own default)")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="FILE", help="write the figures as JSON to FILE (stdout if no FILE)"
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.questions < 1:
        parser.error("--clients and --questions must be at least 1")

    with contextlib.ExitStack() as stack:
        server: dict = {}
        url = args.url
        if url is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-load-")))
            index = Path(args.index) if args.index else work / "index"
            log = work / "app.log"
            server = resolved_server(args)
            print(f"starting app.py ({server['model']} model, index {index})…", file=sys.stderr)
            url = stack.enter_context(
                app_server(Path(args.corpus), index, args.model, args.backend, args.concurrency, log)
            )
        print(f"{args.clients} clients x {args.questions} questions against {url}ask …", file=sys.stderr)
        result = run_load(url, args.clients, args.questions, args.k, args.mode)
        result.server = server
        if result.errors and server:
            print(f"server log (last lines):\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
    data = asdict(result)
    if args.json == "-":
        print(json.dumps(data, indent=2))
    else:
        print(result.summary())
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
