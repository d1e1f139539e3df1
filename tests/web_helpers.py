"""Shared pieces of the web chat tests: a small corpus with hostile and non-ASCII text, a
hash-model engine over it, an HTML checker, and a real app server on a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FILLER = "\n\n".join(
    f"Weather log entry {i}: a quiet grey morning over the harbour, with light rain." for i in range(60)
)

WEB_DOCS = {
    "kurils.md": """\
        ---
        title: Deployments on the Kuril islands
        author: Anna Petrova
        date: 2020-12-10
        ---
        Russia deployed an S-300V4 air defence system to the Kuril islands on combat duty.

        Bastion coastal missiles were deployed to the Kuril islands in December as well.

        Japan protested against the deployment through diplomatic channels and summoned the ambassador.
        """,
    "tokyo.md": """\
        ---
        title: 東京の外交 — Tokyo's diplomacy
        author: Kenji Watanabe
        date: 2016-11-20
        ---
        Abe met Putin in Nagato on 20 November and proposed an eight-point economic plan.

        Café diplomacy, naïve hopes: «the islands will return», said one commentator in 東京.
        """,
    "fishing.txt": """\
        Fishing around the islands

        Japanese trawlers depend on quotas for crab and salmon agreed every year.
        """,
    # Hostile text: the title, the author and the passage hold markup and script.
    "planted.md": (
        "---\n"
        'title: "Planted <script>window.__xss_title = 1</script> garrison note"\n'
        "author: \"Eve <img src=x onerror='window.__xss_author = 1'>\"\n"
        "date: 2021-03-04\n"
        "---\n" + FILLER + "\n\n"
        "The garrison on Iturup received Bastion launchers <script>window.__xss = 1; alert('xss')</script> "
        'and radar vans <img src=x onerror="window.__xss = 2"> during the winter exercise.\n\n'
        "Garrison officers described the winter exercise to reporters from Sakhalin.\n"
    ),
}


def write_corpus(folder: Path, docs: dict[str, str] = WEB_DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


SAFE_TAGS = {
    "a", "article", "b", "blockquote", "caption", "details", "div", "li", "mark", "p", "q", "span",
    "summary", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip


def parse_html(fragment: str) -> TagCollector:
    parser = TagCollector()
    parser.feed(fragment)
    parser.close()
    return parser


def assert_inert(fragment: str) -> TagCollector:
    """Only harmless tags, no event handler attributes, links only to fragments or http(s)."""
    parsed = parse_html(fragment)
    for tag, attrs in parsed.tags:
        assert tag in SAFE_TAGS, f"unexpected <{tag}> in {fragment[:300]!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler {name} in <{tag}>"
            if name == "href":
                assert value and (value.startswith("#") or value.startswith(("http://", "https://"))), value
    return parsed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(corpus: Path, index: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_", "GRADIO_"))}
    env.update(
        QA_MODEL="hash",
        QA_CORPUS=str(corpus),
        QA_INDEX=str(index),
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@contextlib.contextmanager
def running_app(
    corpus: Path, index: Path, log: Path, args: tuple[str, ...] = (), timeout: float = 90.0, **env: str
) -> Iterator[str]:
    """`python app.py --port N` in a subprocess; yields its URL once it answers HTTP."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--port", str(port), *args],
            cwd=REPO,
            env=app_env(corpus, index, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"app.py exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"app.py did not answer within {timeout} s:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)  # polling the server until it is up
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
