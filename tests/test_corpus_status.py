"""Files that could not be read are reported as failed, with the reason, never as changed."""

from __future__ import annotations

import builtins
import json

import pytest

from qa.cli import main
from qa.engine import open_index
from qa.ingest.indexer import update_index
from qa.storage.local.snapshot import IndexLayout, Snapshot
from qa.web.render import render_summary
from tests.pdfgen import make_pdf

KENYA = b"""<html><head><title>Kenya</title></head><body><article><h1>Kenya</h1>
<p>Kenya is a country in East Africa with a coastline on the Indian Ocean. Its capital is Nairobi,
and the savannah of the Maasai Mara is known for its wildlife, from lions to wildebeest.</p>
<p>Tea and coffee grown in the highlands are among the country's main exports.</p></article></body></html>"""


@pytest.fixture
def env(settings, monkeypatch):
    for name, value in {
        "QA_CORPUS": settings.corpus_dir,
        "QA_INDEX": settings.index_dir,
        "QA_MODEL": "hash",
        "QA_CHUNK_SIZE": 48,
        "QA_CHUNK_OVERLAP": 8,
        "QA_MIN_RELEVANCE": 0.0,
    }.items():
        monkeypatch.setenv(name, str(value))
    return settings


@pytest.fixture
def no_html_reader():
    """The environment of the bug report: trafilatura cannot be imported (lxml_html_clean missing).

    Its own MonkeyPatch, so that `.undo()` (installing the package) leaves the settings alone.
    """
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == "trafilatura":
            raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")
        return real_import(name, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(builtins, "__import__", refuse)
    yield patch
    patch.undo()


def _manifest(settings) -> dict:
    snapshot = Snapshot.open_current(IndexLayout(settings.index_dir))
    try:
        return snapshot.manifest.data
    finally:
        snapshot.close()


def _ask(capsys, *question: str) -> str:
    capsys.readouterr()
    assert main(["ask", *question]) == 0
    return capsys.readouterr().err


def test_failed_file_is_reported_as_failed_not_changed_until_the_cause_is_fixed(env, corpus, no_html_reader, capsys):
    (corpus / "kenya.html").write_bytes(KENYA)
    report = update_index(env)
    assert [f["path"] for f in report.failed] == ["kenya.html"]
    recorded = _manifest(env)["corpus"]["failed"]
    assert [f["path"] for f in recorded] == ["kenya.html"] and len(recorded[0]["hash"]) == 64
    assert "lxml_html_clean" in recorded[0]["reason"]

    err = _ask(capsys, "crab quotas")
    assert "new, changed or removed" not in err
    assert err.count("qa: warning") == 1, err  # once per run
    assert "1 corpus file(s) could not be read" in err and "qa:   kenya.html: the HTML reader is missing" in err
    assert "run `qa index`" not in err
    # Nothing to do for `qa index`: same files, same failure, no new snapshot.
    assert update_index(env).snapshot == report.snapshot

    # The package is installed: the file is still the same, still failed at the last update...
    no_html_reader.undo()
    assert "could not be read" in _ask(capsys, "crab quotas")
    # ...and the next update reads it.
    again = update_index(env)
    assert again.added == ["kenya.html"] and again.failed == []
    assert _manifest(env)["corpus"]["failed"] == []
    assert _ask(capsys, "Nairobi savannah wildlife") == ""


def test_a_new_failure_is_recorded_even_when_nothing_else_changed(env, corpus, capsys):
    first = update_index(env)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    # Before any update it is new: `qa index` is the thing to run.
    assert "new, changed or removed since the index was built (broken.pdf)" in _ask(capsys, "crab quotas")
    report = update_index(env)
    assert report.added == [] and [f["path"] for f in report.failed] == ["broken.pdf"]
    assert report.snapshot != first.snapshot  # the same index, republished with the failure recorded
    layout = IndexLayout(env.index_dir)
    new, old = layout.snapshots / report.snapshot, layout.snapshots / first.snapshot
    assert (new / "catalog.sqlite").stat().st_ino == (old / "catalog.sqlite").stat().st_ino  # shared, not copied
    err = _ask(capsys, "crab quotas")
    assert "corrupt or unreadable PDF" in err and "new, changed or removed" not in err

    # Replaced by a good PDF: changed since, so `qa index` takes it in.
    (corpus / "broken.pdf").write_bytes(make_pdf(["Icebreakers clear the strait in winter."]))
    assert "new, changed or removed since the index was built (broken.pdf)" in _ask(capsys, "crab quotas")
    assert update_index(env).added == ["broken.pdf"]
    # Removed after failing: neither changed nor failed.
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 broken again")
    update_index(env)
    (corpus / "broken.pdf").unlink()
    err = _ask(capsys, "crab quotas")
    assert "broken.pdf" in err and "new, changed or removed" in err  # its kept version is still indexed
    update_index(env)
    assert _ask(capsys, "crab quotas") == ""


def test_a_broken_change_keeps_the_old_version_and_says_so(env, corpus, capsys):
    update_index(env)
    (corpus / "fishing.txt").write_bytes(b"caf\xe9 latin-1 text")
    report = update_index(env)
    assert (
        report.failed[0]["path"] == "fishing.txt" and "previously indexed version is kept" in report.failed[0]["reason"]
    )
    err = _ask(capsys, "crab quotas")
    assert "fishing.txt: not valid UTF-8 text" in err and "previously indexed version is kept" in err
    assert "new, changed or removed" not in err
    # Put back as it was: matches the index again, nothing to report.
    (corpus / "fishing.txt").write_text(
        "Fishing around the islands\n\nJapanese trawlers depend on quotas for crab and salmon agreed every year.\n\n"
        "The border guards inspect every vessel that enters the waters.\n",
        encoding="utf-8",
    )
    assert _ask(capsys, "crab quotas") == ""


def test_unreadable_now_is_failed_at_once(env, corpus, capsys, monkeypatch):
    update_index(env)
    (corpus / "notes.pages").write_bytes(b"PK\x03\x04 a Pages document")
    (corpus / "huge.md").write_text("x" * 2_000_001, encoding="utf-8")
    monkeypatch.setenv("QA_MAX_FILE_MB", "2")
    err = _ask(capsys, "crab quotas")
    assert "2 corpus file(s) could not be read" in err
    assert "huge.md: file is too large" in err and "notes.pages: unsupported file type '.pages'" in err
    assert "new, changed or removed" not in err


def test_docs_and_the_chat_summary_list_failed_files(env, corpus, capsys):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 <script>alert(1)</script>")
    update_index(env)
    capsys.readouterr()
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    assert "3 documents" in out and "1 corpus file(s) could not be read" in out and "broken.pdf: corrupt" in out
    assert main(["docs", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert len(listing["documents"]) == 3
    assert listing["failed"][0]["path"] == "broken.pdf" and "corrupt" in listing["failed"][0]["reason"]

    engine = open_index(settings=env)
    failed = engine.failed_at_last_update()
    assert [f["path"] for f in failed] == ["broken.pdf"]
    html = render_summary(engine.stats(), engine.documents(), [*failed, {"path": "<b>x</b>.md", "reason": "<i>"}])
    assert "2 files could not be read at the last update" in html and "broken.pdf" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;.md" in html
    assert "could not be read" not in render_summary(engine.stats(), engine.documents())


def test_sidecar_change_counts_as_a_change_of_its_document(env, corpus, capsys):
    update_index(env)
    sidecar = corpus / "fishing.txt.yaml"
    sidecar.write_text("title: Crab and salmon quotas\nauthor: Кенджи Ватанабэ\ndate: 2019-03\n", encoding="utf-8")
    assert "new, changed or removed since the index was built (fishing.txt)" in _ask(capsys, "crab")
    report = update_index(env)
    # The title is part of what each chunk embeds (chunk context): the same text under a new title
    # is embedded again; without context, its cached embeddings serve.
    chunks = next(d.chunks for d in open_index(settings=env).documents() if d.doc_id == "fishing")
    assert report.changed == ["fishing.txt"]
    assert report.chunks_embedded == (0 if env.chunk_context == "none" else chunks)
    doc = open_index(settings=env).document("fishing")
    assert (doc.title, doc.author, doc.date) == ("Crab and salmon quotas", "Кенджи Ватанабэ", "2019-03")
    assert update_index(env).unchanged == ["fishing.txt", "kurils.md", "tokyo.md"]

    sidecar.write_text("titel: typo\n", encoding="utf-8")
    report = update_index(env)
    assert "unknown keys (titel)" in report.failed[0]["reason"] and report.failed[0]["path"] == "fishing.txt"
    assert open_index(settings=env).document("fishing").title == "Crab and salmon quotas"  # kept
    sidecar.unlink()
    assert update_index(env).changed == ["fishing.txt"]
    assert open_index(settings=env).document("fishing").title == "fishing"  # a .txt without a heading: its name
