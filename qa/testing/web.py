"""Run the web chat (`app.py`) in a child process and wait until it answers.

Used by the end-to-end tests, the browser tests and the benchmarks, which all need a real
server on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from qa.errors import QAError

APP = Path(__file__).resolve().parents[2] / "app.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(corpus: Path, index: Path, **extra: str) -> dict[str, str]:
    """This process's environment without QA_/GRADIO_ settings, pointed at corpus and index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "GRADIO_"))}
    env.update(
        QA_CORPUS=str(corpus), QA_INDEX=str(index), GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", **extra
    )
    return env


@contextlib.contextmanager
def running_app(
    env: Mapping[str, str],
    log: Path,
    args: Sequence[str] = (),
    timeout: float = 120.0,
    poll: float = 0.2,
    command: Sequence[str] = (sys.executable, str(APP)),
) -> Iterator[str]:
    """`python app.py --port N` (or `command --port N`, e.g. `python -m qa serve`) with env;
    yields its URL once it answers HTTP, stops it after."""
    port = free_port()
    name = " ".join(command[1:])
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port), *args],
            cwd=APP.parent,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise QAError(
                    f"{' '.join(command[1:])} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
                )
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise QAError(
                    f"{name} did not answer within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(poll)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
