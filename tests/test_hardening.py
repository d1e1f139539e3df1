"""Hardening (issue 6): hostile questions, hostile corpus files, damaged indexes, full disks,
kill -9 at random moments, two writers at once. Hash embedder, temporary folders.

Each case ends with a clear message (CLI: one line on stderr, exit 1, no traceback) and
nothing lost. Cases that other test files already cover exactly are not repeated here; the
"What survives what" section of docs/indexing.md maps every case of the issue to its test.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest

import qa.ingest.indexer
import qa.ingest.readers
import qa.storage.local.snapshot
from qa.answering.answer import NOTHING_FOUND
from qa.cli import main
from qa.embedding.models import EmbeddingCache
from qa.engine import MAX_QUESTION_CHARS, open_index
from qa.errors import IndexMismatchError, QAError
from qa.ingest.indexer import update_index
from qa.ingest.readers import scan_corpus
from qa.storage.local.lexical import Bm25Index
from qa.storage.local.snapshot import KEEP_SNAPSHOTS, IndexLayout, Snapshot
from tests.conftest import REPO

RUSSIAN = "kurily-ru.md"
RUSSIAN_TEXT = (
    "---\ntitle: Курилы\nauthor: Иван Петров\n---\n"
    "Россия разместила ракетные комплексы «Бастион» на Курильских островах.\n\n"
    "Япония выразила протест по дипломатическим каналам.\n"
)


def qa_env(settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        QA_CORPUS=str(settings.corpus_dir),
        QA_INDEX=str(settings.index_dir),
        QA_MODEL="hash",
        QA_CHUNK_SIZE=str(settings.chunk_size),
        QA_CHUNK_OVERLAP=str(settings.chunk_overlap),
        QA_MIN_RELEVANCE=str(settings.min_relevance),
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


@pytest.fixture
def cli_env(settings, monkeypatch):
    for name, value in qa_env(settings).items():
        if name.startswith("QA_"):
            monkeypatch.setenv(name, value)
    return settings


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def run_qa(settings, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m qa ARGV` in its own process: the real exit code and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "qa", *argv],
        cwd=REPO,
        env=qa_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def temporaries(layout: IndexLayout) -> list[Path]:
    return [
        p
        for folder in (layout.root, layout.snapshots)
        if folder.is_dir()
        for p in folder.iterdir()
        if p.name.endswith(".tmp")
    ]


def snapshots(layout: IndexLayout) -> set[str]:
    return {p.name for p in layout.snapshots.iterdir() if not p.name.endswith(".tmp")}


# -- questions --------------------------------------------------------------------------------
# Empty, whitespace-only and NUL-only questions, and the 2000-character cut with its note,
# are in test_engine.py (test_empty_questions_are_refused, test_long_and_odd_questions).
HOSTILE_QUESTIONS = {
    "html-js": "Which quotas for crab and salmon are agreed every year? <script>alert(1)</script> <b>&amp;</b>",
    "control-and-nul": "crab\x00 quotas\x1b[31m and salmon\x07\x7f\x85",
    "emoji": "🦀 crab quotas 🐟🎣",
    "right-to-left": "\u202ecrab quotas\u202c حصص الصيد \u05de\u05db\u05e1\u05ea \u05d3\u05d2\u05d9\u05dd",
    "japanese": "ロシアは千島列島に何を配備しましたか",
    "russian": "Что Россия разместила на Курильских островах?",
    "only-stop-words": "the of and what is",
    "100-kb": "crab quotas " + "lorem ipsum dolor " * 6000,
    "one-100-kb-word": "x" * 100_000,
}


@pytest.fixture
def engine(settings, corpus):
    (corpus / RUSSIAN).write_text(RUSSIAN_TEXT, encoding="utf-8")
    return open_index(settings=settings)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("name", list(HOSTILE_QUESTIONS))
def test_hostile_questions_give_a_plain_answer(engine, name, mode):
    answer = engine.ask(HOSTILE_QUESTIONS[name], mode=mode)
    # The question stays text: no control characters, normalised, within the cut.
    assert len(answer.question) <= MAX_QUESTION_CHARS
    assert not any(unicodedata.category(ch) == "Cc" for ch in answer.question)
    assert answer.question == unicodedata.normalize("NFC", answer.question)
    # Either nothing found, said plainly, or passages that are exact spans of their documents.
    assert answer.passages or answer.answer == NOTHING_FOUND
    for p in answer.passages:
        assert engine.document(p.doc_id).text[p.start : p.end] == p.text
    json.dumps(answer.to_dict(), ensure_ascii=False)


def test_long_questions_are_cut_before_any_model_work(engine, monkeypatch):
    """A 100 KB question costs what a 2000-character one does: nothing longer reaches the model."""
    seen: list[int] = []
    count_tokens, encode = engine.embedder.count_tokens, engine.embedder.encode
    monkeypatch.setattr(engine.embedder, "count_tokens", lambda text: seen.append(len(text)) or count_tokens(text))
    monkeypatch.setattr(engine.embedder, "encode", lambda texts: seen.extend(map(len, texts)) or encode(texts))
    answer = engine.ask(HOSTILE_QUESTIONS["100-kb"])
    assert seen and max(seen) <= MAX_QUESTION_CHARS
    assert any("cut" in note for note in answer.notes)


def test_another_language_finds_text_in_that_language(engine):
    for mode in ("hybrid", "dense", "lexical"):
        answer = engine.ask(HOSTILE_QUESTIONS["russian"], mode=mode)
        assert answer.passages[0].doc_id == "kurily-ru", mode
        assert "«Бастион»" in answer.passages[0].text
    # Japanese has no spaces and nothing in the corpus matches it: the relevance gate says so plainly.
    gated = open_index(settings=replace(engine.settings, min_relevance=None))
    assert gated.ask(HOSTILE_QUESTIONS["japanese"]).answer == NOTHING_FOUND


def test_html_question_stays_plain_text_in_the_cli(cli_env, capsys):
    question = HOSTILE_QUESTIONS["html-js"]
    code, out, _ = run_cli(capsys, "ask", "--json", question)
    assert code == 0
    data = json.loads(out)
    assert data["question"] == question  # neither escaped nor stripped: JSON carries text
    assert data["passages"][0]["doc_id"] == "fishing"
    code, out, _ = run_cli(capsys, "ask", question)
    assert code == 0 and "&lt;" not in out and "&amp;" not in out


def test_only_stop_words_find_nothing_in_the_cli(cli_env, capsys):
    # Lexical: BM25 drops stop words. The hash embedder knows no stop words, so the dense
    # modes are checked with the real model (test_real_model_hostile_questions).
    code, out, _ = run_cli(capsys, "ask", "--mode", "lexical", HOSTILE_QUESTIONS["only-stop-words"])
    assert code == 0
    assert out.startswith("No relevant passage found")


def test_control_characters_and_long_questions_in_the_cli(cli_env, capsys):
    code, out, _ = run_cli(capsys, "ask", "--json", HOSTILE_QUESTIONS["control-and-nul"])
    assert code == 0 and json.loads(out)["question"] == "crab quotas [31m and salmon"
    code, out, _ = run_cli(capsys, "ask", "--json", HOSTILE_QUESTIONS["100-kb"])
    assert code == 0 and "cut to its first 2000 characters" in json.loads(out)["notes"][0]


# -- corpus files -------------------------------------------------------------------------------
def _pdfs(folder: Path) -> None:
    import io

    import pypdf

    from tests.pdfgen import make_pdf

    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n%%EOF garbage")
    locked = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["secret text"]))))
    locked.encrypt("password")
    buffer = io.BytesIO()
    locked.write(buffer)
    (folder / "encrypted.pdf").write_bytes(buffer.getvalue())


def test_hostile_corpus_files_are_reported_by_name_and_the_rest_indexed(cli_env, corpus, capsys, monkeypatch):
    assert run_cli(capsys, "index", "--quiet")[0] == 0  # the three good files, indexed before the hostile ones come
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "blank.txt").write_bytes(b" \n\t\n")
    (corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (corpus / "latin1.md").write_bytes("Café au lait, crème brûlée".encode("latin-1"))
    with open(corpus / "huge.txt", "wb") as fh:
        fh.truncate(50_000_000)  # 50 MB (sparse): over the default 20 MB limit
    _pdfs(corpus)
    (corpus / "only-scripts.html").write_text(
        "<html><head><script>alert(1)</script></head><body>"
        + "<script>document.write('x')</script>" * 200
        + "</body></html>"
    )
    (corpus / "article.html").write_text(
        "<html><head><title>Quotas</title><script>window.stolen = document.cookie</script></head><body>"
        "<script>alert('in body')</script><article><h1>Pollock quotas</h1><p>The pollock quota in the "
        "Sea of Okhotsk was raised again this year after long talks between the two fishing agencies.</p>"
        "<p>Inspectors will count every catch landed at the northern ports during the season.</p>"
        "</article><script>track()</script></body></html>"
    )
    (corpus / "self-loop.md").symlink_to("self-loop.md")
    (corpus / "ping.md").symlink_to("pong.md")
    (corpus / "pong.md").symlink_to("ping.md")
    (corpus / "folder").mkdir()
    (corpus / "folder" / "up").symlink_to("..")  # a folder loop: not followed
    (corpus / "copy-of-kurils.md").write_bytes((corpus / "kurils.md").read_bytes())
    (corpus / "vanishing.md").write_text("This file is deleted between the scan and the read.", encoding="utf-8")

    opened: list[str] = []
    real_open, real_scan = open, qa.ingest.indexer.scan_corpus

    def recording_open(file, *args, **kwargs):
        opened.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    def scan_then_delete(root):
        scan = real_scan(root)
        (corpus / "vanishing.md").unlink()
        return scan

    monkeypatch.setattr(qa.ingest.readers, "open", recording_open, raising=False)
    monkeypatch.setattr(qa.ingest.indexer, "scan_corpus", scan_then_delete)
    code, out, err = run_cli(capsys, "index")
    assert code == 0, err
    failed = {}
    for line in out.splitlines():
        if line.startswith("failed "):
            path, reason = line.split(None, 1)[1].split(": ", 1)
            failed[path] = reason
    expected = {
        "empty.md": "file is empty",
        "blank.txt": "file is empty",
        "image.txt": "binary content",
        "latin1.md": "not valid UTF-8",
        "huge.txt": "file is too large (50.0 MB; the limit is 20 MB, set QA_MAX_FILE_MB",
        "corrupt.pdf": "corrupt or unreadable PDF",
        "encrypted.pdf": "PDF is encrypted",
        "only-scripts.html": "no article text found",
        "self-loop.md": "symlink loop",
        "ping.md": "symlink loop",
        "pong.md": "symlink loop",
        "copy-of-kurils.md": "exact duplicate of kurils.md",
        "vanishing.md": "file disappeared while indexing",
    }
    assert set(failed) == set(expected), failed
    for path, reason in expected.items():
        assert reason in failed[path], (path, failed[path])
    assert "huge.txt" not in opened  # refused by its size on disk, never read into memory
    assert f"{len(expected)} failed" in out.splitlines()[-1]

    engine = open_index(settings=cli_env, build=False)
    assert {d.source for d in engine.documents()} == {"article.html", "fishing.txt", "kurils.md", "tokyo.md"}
    article = engine.document("article").text
    assert "pollock quota" in article and "alert" not in article and "cookie" not in article
    assert engine.ask("pollock quota Sea of Okhotsk").passages[0].doc_id == "article"


def test_a_file_that_vanishes_while_indexing_keeps_its_indexed_version(settings, corpus, monkeypatch):
    update_index(settings)
    real_scan = qa.ingest.indexer.scan_corpus

    def scan_then_delete(root):
        scan = real_scan(root)
        (corpus / "fishing.txt").unlink()
        return scan

    (corpus / "fishing.txt").write_text("Fishing\n\nCrab quotas were cut in 2021.", encoding="utf-8")
    monkeypatch.setattr(qa.ingest.indexer, "scan_corpus", scan_then_delete)
    report = update_index(settings)
    assert report.failed == [
        {"path": "fishing.txt", "reason": "file disappeared while indexing; the previously indexed version is kept"}
    ]
    assert open_index(settings=settings).ask("quotas for crab and salmon").passages[0].doc_id == "fishing"
    monkeypatch.undo()
    assert update_index(settings).removed == ["fishing.txt"]  # gone for good: the next update says so


def test_a_file_that_grows_past_the_limit_after_the_scan_is_not_read_whole(settings, corpus):
    path = corpus / "growing.txt"
    path.write_text("A short note about crab quotas.", encoding="utf-8")
    scan = scan_corpus(corpus)  # sees a small file...
    with open(path, "r+b") as fh:
        fh.truncate(50_000_000)  # ...that is 50 MB by the time it is read
    tracemalloc.start()
    try:
        report = update_index(settings.with_(max_file_mb=1.0), scan=scan)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.failed == [{"path": "growing.txt", "reason": "file is too large (over 1 MB)"}]
    assert peak < 15_000_000, f"{peak / 1e6:.0f} MB in memory"
    assert report.documents_total == 3


# -- a damaged index: one line, exit 1, and `qa index` repairs it ----------------------------
def _truncate_faiss(layout):
    path = layout.current() / "vectors.faiss"
    path.write_bytes(path.read_bytes()[:100])


def _delete_sqlite(layout):
    (layout.current() / "catalog.sqlite").unlink()


def _other_models_manifest(layout):
    path = layout.current() / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["model"].update(name="other-model", cache_key="st:other-model")
    path.write_text(json.dumps(data), encoding="utf-8")


def _garbled_manifest(layout):
    (layout.current() / "manifest.json").write_text('{"format": 1', encoding="utf-8")


def _garbled_lexical(layout):
    (layout.current() / "bm25" / "ids.npy").write_bytes(b"not numpy")


def _garbled_pointer(layout):
    layout.pointer.write_bytes(b"\xff\xfe\x00garbage\n")


def _pointer_outside(layout):
    layout.pointer.write_text("../../etc\n", encoding="utf-8")


DAMAGE = {
    "truncated FAISS file": (_truncate_faiss, "vectors.faiss (truncated or not a FAISS index)"),
    "deleted SQLite file": (_delete_sqlite, "catalog.sqlite is missing"),
    "another model's manifest": (_other_models_manifest, "built with the model 'other-model', not 'hash'"),
    "garbled manifest": (_garbled_manifest, "manifest.json is unreadable"),
    "garbled lexical index": (_garbled_lexical, "cannot read the lexical index"),
    "CURRENT not text": (_garbled_pointer, "cannot read"),
    "CURRENT pointing outside": (_pointer_outside, "names a snapshot that does not exist"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_one_line_then_repaired(cli_env, capsys, damage):
    harm, message = DAMAGE[damage]
    assert run_cli(capsys, "index", "--quiet")[0] == 0
    harm(IndexLayout(cli_env.index_dir))
    for argv in (["ask", "crab quotas"], ["docs"], ["show", "kurils"]):
        code, out, err = run_cli(capsys, *argv)
        assert_one_line_error(code, err, message, "qa index")
        assert out == ""
    if damage == "another model's manifest":
        # Not damage but a choice: the plain update refuses too, and says how to rebuild.
        assert_one_line_error(*run_cli(capsys, "index")[::2], message)
        code, out, err = run_cli(capsys, "index", "--rebuild")
    else:
        code, out, err = run_cli(capsys, "index")
        assert "note: the previous index could not be read" in out and "rebuilt from scratch" in out
    assert code == 0, err
    code, out, err = run_cli(capsys, "ask", "--json", "quotas for crab")
    assert code == 0 and json.loads(out)["passages"][0]["doc_id"] == "fishing"
    assert not temporaries(IndexLayout(cli_env.index_dir))


def test_damaged_index_in_a_real_process(settings):
    """The same through `python -m qa`: the exit status and stderr a shell sees."""
    update_index(settings)
    layout = IndexLayout(settings.index_dir)
    _truncate_faiss(layout)
    result = run_qa(settings, "ask", "crab quotas")
    assert_one_line_error(result.returncode, result.stderr, "truncated or not a FAISS index", "qa index --rebuild")
    result = run_qa(settings, "index", "--quiet")
    assert result.returncode == 0, result.stderr
    assert run_qa(settings, "ask", "crab quotas").returncode == 0


def test_missing_index_is_built_on_first_use(cli_env, capsys):
    # By design: ask, docs, show and serve build a missing index (open_index(build=False)
    # raises IndexMissingError instead: test_engine.py::test_open_builds_the_index_on_first_use).
    code, out, _ = run_cli(capsys, "docs")
    assert code == 0 and out.rstrip().endswith("3 documents")


def test_index_folder_that_cannot_be_used(settings, tmp_path, capsys, monkeypatch):
    not_a_folder = tmp_path / "index-file"
    not_a_folder.write_text("not a folder")
    for name, value in qa_env(settings, QA_INDEX=str(not_a_folder)).items():
        if name.startswith("QA_"):
            monkeypatch.setenv(name, value)
    assert_one_line_error(*run_cli(capsys, "index")[::2], "cannot write in the index folder", "QA_INDEX")
    for argv in (["ask", "crab"], ["docs"]):
        assert_one_line_error(*run_cli(capsys, *argv)[::2], "CURRENT: [Errno 20] Not a directory")
    monkeypatch.setenv("QA_INDEX", str(tmp_path / "index"))
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "snapshots").write_text("a file where the snapshots folder goes")
    code, _, err = run_cli(capsys, "index")
    assert_one_line_error(code, err, "could not write the new index", "previous index is untouched")


# -- full disk at more moments of the write -------------------------------------------------
# (vectors, catalog and manifest: test_indexer.py::test_full_disk_during_write_keeps_the_previous_index)
def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _sqlite_full(*args, **kwargs):
    raise sqlite3.OperationalError("database or disk is full")


@pytest.mark.parametrize("where", ["snapshot folder", "embedding cache", "lexical index", "CURRENT pointer"])
def test_full_disk_at_any_write_keeps_the_previous_index(settings, corpus, monkeypatch, where):
    update_index(settings)
    (corpus / "fishing.txt").write_text("Fishing\n\nCrab quotas were cut in 2021.", encoding="utf-8")
    update_index(settings)  # two snapshots now: the live one and the one before it
    layout = IndexLayout(settings.index_dir)
    before, names = layout.current_name(), snapshots(layout)
    (corpus / "new.md").write_text("Text about icebreakers in the Sea of Okhotsk.", encoding="utf-8")
    real_open = open

    def open_failing_for_the_pointer(file, *args, **kwargs):
        if Path(file).name.startswith("CURRENT."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, *args, **kwargs)

    if where == "snapshot folder":
        monkeypatch.setattr(IndexLayout, "new_temp", _full)
    elif where == "embedding cache":
        monkeypatch.setattr(EmbeddingCache, "put_many", _sqlite_full)
    elif where == "lexical index":
        monkeypatch.setattr(Bm25Index, "save", _full)
    else:  # the new snapshot is complete and renamed into place; only the pointer swap fails
        monkeypatch.setattr(qa.storage.local.snapshot, "open", open_failing_for_the_pointer, raising=False)
    with pytest.raises(QAError, match=r"disk is full.*previous index is untouched"):
        update_index(settings)
    monkeypatch.undo()
    assert layout.current_name() == before
    assert snapshots(layout) == names  # no half-published snapshot left behind
    assert not temporaries(layout)
    engine = open_index(settings=settings, build=False)
    assert "2021" in engine.ask("crab quotas", mode="lexical").passages[0].text
    assert update_index(settings).added == ["new.md"]


def test_snapshot_left_unpublished_by_a_kill_is_removed(settings, corpus):
    """kill -9 between renaming the new snapshot and swapping CURRENT leaves a snapshot nobody names."""
    update_index(settings)
    (corpus / "new.md").write_text("Text about icebreakers.", encoding="utf-8")
    update_index(settings)
    layout = IndexLayout(settings.index_dir)
    live, names = layout.current_name(), snapshots(layout)
    assert len(names) == KEEP_SNAPSHOTS
    orphan = layout.snapshots / "99991231T235959-deadbeef"
    shutil.copytree(layout.current(), orphan)
    assert update_index(settings).snapshot == live  # nothing changed: nothing new written...
    assert snapshots(layout) == names  # ...and the orphan is gone, the previous snapshot kept


# -- kill -9 at random moments, 20 times ---------------------------------------------------------
BULK = 100


def _bulk_text(i: int, version: int) -> str:
    return f"Entry {i}, revision {version}: islands, treaties and fishing quotas. " * 30


def _wait_or_timeout(proc: subprocess.Popen, seconds: float) -> None:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


def test_kill_9_at_random_moments_20_times(settings, corpus):
    """Kill `qa index` 20 times: at random moments from its start (start-up, lock, scan, read,
    embed, write, publish) and at random moments after its new snapshot folder appears. After
    every kill the last published index opens and answers, and temporaries never pile up."""
    rng = random.Random(20240606)
    for i in range(BULK):
        (corpus / f"bulk{i:03}.md").write_text(_bulk_text(i, 0), encoding="utf-8")
    update_index(settings)
    layout = IndexLayout(settings.index_dir)
    env = qa_env(settings)
    documents = BULK + 3
    kills = runs = 0
    while kills < 20:
        runs += 1
        assert runs <= 60, "too few runs were still going when killed"
        for i in rng.sample(range(BULK), 15):  # new text: every run embeds and writes
            (corpus / f"bulk{i:03}.md").write_text(_bulk_text(i, runs), encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--quiet"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if runs % 2:
            _wait_or_timeout(proc, rng.uniform(0.0, 1.2))
        else:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if any(p.name.endswith(".tmp") for p in layout.snapshots.iterdir()):
                    break
                time.sleep(0.002)  # polling for the new snapshot folder
            _wait_or_timeout(proc, rng.uniform(0.0, 0.25))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # The live index is whole: it opens, its parts agree (checked on open), it answers.
        engine = open_index(settings=settings, build=False)
        assert engine.stats()["documents"] == documents
        assert engine.ask("quotas for crab and salmon", mode="lexical").passages[0].doc_id == "fishing"
        engine.snapshot.close()
        # At most what the one killed run left: one temporary snapshot, one staged pointer,
        # one snapshot renamed but not yet published. The next run removes them.
        assert len([p for p in layout.snapshots.iterdir() if p.name.endswith(".tmp")]) <= 1
        assert len([p for p in layout.root.iterdir() if p.name.endswith(".tmp")]) <= 1
        assert len(snapshots(layout)) <= KEEP_SNAPSHOTS + 1
    report = update_index(settings)  # the next run cleans up and completes
    assert report.documents_total == documents
    assert not temporaries(layout)
    assert len(snapshots(layout)) <= KEEP_SNAPSHOTS
    engine = open_index(settings=settings, build=False)
    assert engine.stale_files() == []  # the index holds every file's latest text
    for i in range(BULK):
        assert engine.document(f"bulk{i:03}").text == (corpus / f"bulk{i:03}.md").read_text(encoding="utf-8")
    with sqlite3.connect(layout.cache_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- two writers at once ---------------------------------------------------------------------------
HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
import qa.ingest.indexer
from qa.cli import main
entered, release = Path(sys.argv[1]), Path(sys.argv[2])
embed = qa.ingest.indexer.embed_with_evidence
def held(*args, **kwargs):
    entered.touch()
    while not release.exists():
        time.sleep(0.01)
    return embed(*args, **kwargs)
qa.ingest.indexer.embed_with_evidence = held
sys.exit(main(["index", "--quiet"]))
"""


def test_two_qa_index_at_once(settings, corpus, tmp_path):
    """The first `qa index` holds the lock (paused mid-update); the second stops at once with
    one line naming it; the first then completes."""
    update_index(settings)
    (corpus / "new.md").write_text("Text about icebreakers in the Sea of Okhotsk.", encoding="utf-8")
    entered, release = tmp_path / "entered", tmp_path / "release"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(entered), str(release)],
        cwd=REPO,
        env=qa_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not entered.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first qa index never reached the embedding step"
            time.sleep(0.01)  # polling for the first writer to be mid-update
        second = run_qa(settings, "index", "--quiet")
        assert_one_line_error(
            second.returncode, second.stderr, f"another process (pid {first.pid})", "run the command again"
        )
        assert "1 added" not in second.stdout
    finally:
        release.touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "1 added" in out
    assert open_index(settings=settings, build=False).stats()["documents"] == 4
    assert run_qa(settings, "index", "--quiet").returncode == 0  # and the lock is free again


# -- readers while updates swap in ----------------------------------------------------------------
# (readers asking during updates: test_engine.py::test_readers_see_new_index_after_update_and_keep_answering_during_it,
#  web handlers and fresh engines during twelve swaps: test_hardening_web.py)
@pytest.mark.parametrize("reader", ["open_index", "refresh"])
def test_a_snapshot_removed_while_being_opened_is_skipped_for_the_newest(settings, corpus, monkeypatch, reader):
    """Between reading CURRENT and opening that snapshot, two updates publish: writers keep two
    snapshots, so the one named a moment ago is deleted. The reader opens the newest instead."""
    update_index(settings)
    engine = open_index(settings=settings) if reader == "refresh" else None
    (corpus / "late0.md").write_text("A late entry about icebreakers.", encoding="utf-8")
    update_index(settings)
    opened: list[str] = []
    real_init = Snapshot.__init__

    def init(self, folder):
        opened.append(folder.name)
        if len(opened) == 1:
            for i in (1, 2):
                (corpus / f"late{i}.md").write_text(f"Late entry {i} about icebreakers.", encoding="utf-8")
                update_index(settings)
            assert not folder.exists()
        real_init(self, folder)

    monkeypatch.setattr(Snapshot, "__init__", init)
    if reader == "refresh":
        assert engine.refresh()
    else:
        engine = open_index(settings=settings, build=False)
    assert engine.snapshot.name == IndexLayout(settings.index_dir).current_name() != opened[0]
    assert engine.stats()["documents"] == 6
    assert engine.ask("late entry icebreakers", mode="lexical").passages


# -- a published index this process cannot use ------------------------------------------------
def test_a_newer_index_of_another_model_does_not_stop_an_open_engine(settings, caplog):
    engine = open_index(settings=settings)
    before = engine.snapshot.name
    update_index(settings.with_(model="hash:128"), rebuild=True)  # e.g. someone rebuilt with another model
    with caplog.at_level("WARNING", logger="qa"):
        for _ in range(3):
            assert engine.ask("crab quotas").passages  # still answers, from the index it has open
    assert engine.snapshot.name == before
    assert len([r for r in caplog.records if "cannot be used" in r.getMessage()]) == 1  # said once
    with pytest.raises(IndexMismatchError, match="hash:128"):
        open_index(settings=settings)  # a new process is told plainly


# -- the real model -------------------------------------------------------------------------------
@pytest.mark.integration
def test_real_model_hostile_questions(tmp_path):
    from qa.config import Settings

    shutil.copytree(REPO / "corpus", tmp_path / "corpus")
    engine = open_index(settings=Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"))
    engine.ask("warm-up question about the islands")
    for mode in ("hybrid", "dense", "lexical"):
        for question in ("the of and what is", "and the", "what is it"):
            assert engine.ask(question, mode=mode).answer == NOTHING_FOUND, (mode, question)
    for name, question in HOSTILE_QUESTIONS.items():
        started = time.perf_counter()
        answer = engine.ask(question)
        elapsed = time.perf_counter() - started
        assert elapsed < 3.0, f"{name}: {elapsed:.2f} s"  # ~50 ms here; generous for a busy machine
        for p in answer.passages:
            assert engine.document(p.doc_id).text[p.start : p.end] == p.text
    long = engine.ask("What did Russia deploy to the Kurils? " + "lorem ipsum " * 10_000)
    assert "the question was cut to the model's window of 256 tokens" in long.notes
    html = engine.ask("What did Russia deploy to the Kurils? <script>alert(1)</script>")
    assert html.passages and html.question.endswith("<script>alert(1)</script>")
