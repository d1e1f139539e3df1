"""`qa index --watch` and `qa serve --watch`: added, changed, removed and renamed files, on both stores."""

from __future__ import annotations

import shutil
import sys
import threading
import time

import pytest

from qa.engine import open_index
from qa.ingest.indexer import IndexReport, update_index
from qa.ingest.watch import CorpusWatcher
from tests import officegen

QUESTION = "how many pallets of copper wire in the Rotterdam warehouse"
LIMIT = 10.0  # seconds from a file settling in the corpus to the index answering from it


class Watching:
    """A CorpusWatcher in a thread, with the reports it made."""

    def __init__(self, settings) -> None:
        self.reports: list[IndexReport] = []
        self.errors: list[Exception] = []
        self.watcher = CorpusWatcher(settings, self.reports.append, self.errors.append, settle=0.5)

    def __enter__(self) -> Watching:
        self.watcher.start(initial=False)
        time.sleep(0.5)  # the watch is set up
        return self

    def __exit__(self, *exc) -> None:
        self.watcher.stop()


def sources_of(engine, question: str) -> set[str]:
    engine.refresh()
    return {p.source for p in engine.ask(question, k=3).passages}


def wait_for(condition, limit: float = LIMIT) -> float:
    """Seconds until condition() holds; fails after `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not within {limit:g} s")


def test_added_removed_and_renamed_files_on_both_stores(store_settings, tmp_path):
    store_settings = store_settings.with_(reader="off")
    update_index(store_settings)
    engine = open_index(settings=store_settings, build=False)
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(officegen.pptx_bytes())
    with Watching(store_settings) as watching:
        shutil.copy(deck, store_settings.corpus_dir / "review.pptx")
        wait_for(lambda: "review.pptx" in sources_of(engine, QUESTION))
        assert watching.reports[-1].added == ["review.pptx"]

        (store_settings.corpus_dir / "review.pptx").rename(store_settings.corpus_dir / "renamed.pptx")
        wait_for(lambda: "renamed.pptx" in sources_of(engine, QUESTION))
        renamed = watching.reports[-1]
        assert (renamed.added, renamed.removed, renamed.chunks_embedded) == (["renamed.pptx"], ["review.pptx"], 0)

        (store_settings.corpus_dir / "renamed.pptx").unlink()
        wait_for(lambda: not {"review.pptx", "renamed.pptx"} & sources_of(engine, QUESTION))
        assert watching.reports[-1].removed == ["renamed.pptx"]
        assert not watching.errors
    assert [d.source for d in engine.documents()] == ["fishing.txt", "kurils.md", "tokyo.md"]


def test_a_file_still_being_written_is_read_once_it_settles(settings):
    update_index(settings)
    target = settings.corpus_dir / "slow.md"
    with Watching(settings) as watching:
        with open(target, "w", encoding="utf-8") as fh:
            for i in range(8):  # a slow copy: a piece every 0.3 s, less than the settling time apart
                fh.write(f"Paragraph {i} of a slowly copied report about glaciers.\n\n")
                fh.flush()
                time.sleep(0.3)
            fh.write("The last line names the Jostedal glacier.\n")
        wait_for(lambda: any("slow.md" in r.added for r in watching.reports))
        added = [r for r in watching.reports if "slow.md" in r.added + r.changed]
    # Read once, whole: no update saw it half-written.
    assert len(added) == 1
    doc = open_index(settings=settings, build=False).document("slow")
    assert doc.text.rstrip().endswith("Jostedal glacier.")


def test_hidden_and_index_files_do_not_trigger_updates(settings):
    settings = settings.with_(index_dir=settings.corpus_dir / "index")
    update_index(settings)
    with Watching(settings) as watching:
        (settings.corpus_dir / ".partial.md.tmp").write_text("half a file")
        (settings.corpus_dir / "draft.md~").write_text("an editor's backup")
        update_index(settings, rebuild=True)  # writes under the corpus folder: not a change
        time.sleep(2.0)
    assert watching.reports == []


@pytest.mark.parametrize("store", ["local", "postgres"])
def test_qa_serve_watch_answers_a_copied_file_and_forgets_a_removed_one(tmp_path, request, store):
    httpx = pytest.importorskip("httpx")
    from tests.web_helpers import running_app, write_corpus

    env = {"QA_READER": "off"}
    if store == "postgres":
        env.update(
            QA_STORE="postgres",
            QA_PG_DSN=request.getfixturevalue("pg_dsn"),
            QA_PG_SCHEMA=request.getfixturevalue("pg_schema"),
        )
    corpus, index = write_corpus(tmp_path / "corpus"), tmp_path / "index"
    deck = tmp_path / "deck.pptx"
    deck.write_bytes(officegen.pptx_bytes())
    command = (sys.executable, "-m", "qa", "serve", "--watch")
    with running_app(corpus, index, tmp_path / "serve.log", command=command, **env) as url:

        def cited() -> set[str]:
            answer = httpx.post(f"{url.rstrip('/')}/api/v1/ask", json={"question": QUESTION, "k": 3}, timeout=30)
            return {(p["source"], p["locator"]) for p in answer.json()["passages"]}

        time.sleep(1.0)  # the watch is set up
        shutil.copy(deck, corpus / "review.pptx")
        wait_for(lambda: ("review.pptx", "slide 7") in cited())
        (corpus / "review.pptx").unlink()
        wait_for(lambda: not any(source == "review.pptx" for source, _ in cited()))
    assert "qa: index updated: added review.pptx" in (tmp_path / "serve.log").read_text()


def test_qa_index_watch_prints_each_update(settings, monkeypatch, capsys):
    from qa.cli import main

    for key, value in {
        "QA_CORPUS": settings.corpus_dir,
        "QA_INDEX": settings.index_dir,
        "QA_MODEL": "hash",
        "QA_MIN_RELEVANCE": 0,
        "QA_READER": "off",
    }.items():
        monkeypatch.setenv(key, str(value))
    stop = threading.Event()
    real = CorpusWatcher.run

    def run(self, initial=True):
        self.settle = 0.5
        self.stop_event = stop
        return real(self, initial)

    monkeypatch.setattr(CorpusWatcher, "run", run)
    thread = threading.Thread(target=main, args=(["index", "--watch"],), daemon=True)
    thread.start()
    try:
        time.sleep(2.0)
        (settings.corpus_dir / "late.md").write_text("# Late\n\nA late entry about ferries.\n", encoding="utf-8")
        seen: list[str] = []

        def printed() -> bool:
            seen.append(capsys.readouterr().out)
            return "added      late.md" in "".join(seen)

        wait_for(printed)
    finally:
        stop.set()
        thread.join(timeout=10)
