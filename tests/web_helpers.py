"""Shared pieces of the web chat tests: a small corpus with hostile and non-ASCII text, a
hash-model engine over it, an HTML checker, and a real app server on a free port."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from qa.config import Settings
from qa.testing import web as appserver
from qa.testing.web import server_env

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
    """Only harmless tags, no event handler attributes, links only to fragments, http(s) or the
    corpus's originals; pictures only of the corpus's PDF pages."""
    parsed = parse_html(fragment)
    for tag, attrs in parsed.tags:
        assert tag in SAFE_TAGS or tag == "img", f"unexpected <{tag}> in {fragment[:300]!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler {name} in <{tag}>"
            if name == "href":
                assert value and value.startswith(("#", "http://", "https://", "/corpus/")), value
        if tag == "img":
            assert set(attrs) == {"class", "src", "alt", "loading"}, attrs
            assert (attrs["src"] or "").startswith("/corpus-page/"), attrs
    return parsed


def web_settings(folder: Path) -> Settings:
    """Settings for handler tests: the web test corpus in folder, the hash embedder, small chunks."""
    return Settings(
        corpus_dir=write_corpus(folder / "corpus"),
        index_dir=folder / "index",
        model="hash",
        chunk_size=48,
        chunk_overlap=8,
        min_relevance=0.0,
    )


def app_env(corpus: Path, index: Path, **extra: str) -> dict[str, str]:
    # The fitted relevance gate judges the real model's cosines: with the hash embedder, answer everything.
    return server_env(corpus, index, **{"QA_MODEL": "hash", "QA_MIN_RELEVANCE": "0", **extra})


@contextlib.contextmanager
def running_app(
    corpus: Path,
    index: Path,
    log: Path,
    args: tuple[str, ...] = (),
    timeout: float = 90.0,
    command: tuple[str, ...] | None = None,
    **env: str,
) -> Iterator[str]:
    """`python app.py --port N` (or `command`) in a subprocess (hash model); yields its URL once it answers HTTP."""
    extra = {"command": command} if command else {}
    with appserver.running_app(app_env(corpus, index, **env), log, args, timeout, **extra) as url:
        yield url
