from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from qa.engine import open_index
from qa.errors import (
    EncoderRevisedError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    QAError,
    SplitterRevisedError,
)
from qa.ingest.indexer import update_index
from qa.storage.local.lexical import Bm25Index
from qa.storage.local.snapshot import IndexLayout, Snapshot
from qa.versions import SPLITTER
from tests.conftest import REPO


def test_first_build_reports_every_file(settings):
    report = update_index(settings)
    assert sorted(report.added) == ["fishing.txt", "kurils.md", "tokyo.md"]
    assert report.chunks_embedded == report.chunks_total > 0
    assert report.documents_total == 3
    data = report.to_dict()
    for key in ("added", "changed", "removed", "unchanged", "failed", "chunks_embedded", "chunks_total", "seconds"):
        assert key in data
    snapshot = Snapshot.open_current(IndexLayout(settings.index_dir))
    manifest = snapshot.manifest.data
    assert manifest["model"]["name"] == "hash" and manifest["model"]["dim"] == 1024
    assert manifest["chunker"]["chunk_size"] == 48
    assert manifest["versions"]["qa"]
    assert len(manifest["corpus"]["fingerprint"]) == 64
    # Every stored chunk is an exact span of its document's text.
    ids, _texts = snapshot.catalog.all_chunks()
    records = snapshot.catalog.chunk_records(ids)
    for record in records.values():
        doc = snapshot.catalog.document(record.chunk.doc_id)
        assert doc.text[record.chunk.start : record.chunk.end] == record.chunk.text


def test_nothing_changed_writes_nothing(settings):
    first = update_index(settings)
    second = update_index(settings)
    assert second.unchanged == sorted(second.unchanged) and len(second.unchanged) == 3
    assert second.chunks_embedded == 0
    assert second.snapshot == first.snapshot


def test_add_change_delete_embed_only_new_text(settings, corpus):
    settings = settings.with_(chunk_size=20, chunk_overlap=4)  # several chunks per document
    update_index(settings)
    (corpus / "new.md").write_text("---\ntitle: New\n---\nA brand new entry about tanks on Iturup.\n", encoding="utf-8")
    report = update_index(settings)
    assert report.added == ["new.md"]
    assert report.unchanged == ["fishing.txt", "kurils.md", "tokyo.md"]
    engine = open_index(settings=settings)
    assert report.chunks_embedded == len(engine.snapshot.catalog.chunk_ids_of("new"))

    # Change one paragraph of a document: only the changed chunk's text is embedded.
    path = corpus / "fishing.txt"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("crab and salmon", "crab, salmon and pollock"), encoding="utf-8")
    report = update_index(settings)
    assert report.changed == ["fishing.txt"]
    assert 1 <= report.chunks_embedded < len(engine.snapshot.catalog.chunk_ids_of("fishing"))
    assert "pollock" in open_index(settings=settings).document("fishing").text

    (corpus / "new.md").unlink()
    report = update_index(settings)
    assert report.removed == ["new.md"]
    after = open_index(settings=settings)
    assert "new" not in {d.doc_id for d in after.documents()}
    answer = after.ask("tanks on Iturup", mode="lexical")
    assert all(p.doc_id != "new" for p in answer.passages)


def test_rebuild_starts_again_but_reuses_cached_embeddings(settings):
    first = update_index(settings)
    report = update_index(settings, rebuild=True)
    assert report.rebuilt and report.snapshot != first.snapshot
    assert report.chunks_embedded == 0  # every vector came from the cache
    assert len(report.added) == 3


def test_bad_files_are_reported_and_the_rest_indexed(settings, corpus):
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 100)
    (corpus / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    (corpus / "empty.md").write_text("")
    (corpus / "copy.md").write_bytes((corpus / "kurils.md").read_bytes())
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")
    (corpus / "notes.pages").write_bytes(b"PK\x03\x04 a Pages document")
    report = update_index(settings)
    reasons = {f["path"]: f["reason"] for f in report.failed}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.md"]
    assert "duplicate of" in reasons["kurils.md"] or "duplicate of" in reasons["copy.md"]
    assert "DOCX file is corrupt" in reasons["notes.docx"]
    assert "unsupported" in reasons["notes.pages"]
    assert report.documents_total == 3


def test_a_file_that_turns_unreadable_keeps_its_indexed_version(settings, corpus):
    update_index(settings)
    (corpus / "fishing.txt").write_bytes(b"\xff\xfe broken")
    report = update_index(settings)
    assert report.failed[0]["path"] == "fishing.txt"
    assert "previously indexed version is kept" in report.failed[0]["reason"]
    assert "fishing" in {d.doc_id for d in open_index(settings=settings).documents()}


def test_interrupted_update_leaves_previous_index_usable(settings, corpus, monkeypatch):
    update_index(settings)
    (corpus / "new.md").write_text("Fresh text about submarines.", encoding="utf-8")

    def boom(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(Bm25Index, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        update_index(settings)
    monkeypatch.undo()
    layout = IndexLayout(settings.index_dir)
    assert not [p for p in layout.snapshots.iterdir() if p.name.endswith(".tmp")]
    engine = open_index(settings=settings, build=False)
    assert {d.doc_id for d in engine.documents()} == {"fishing", "kurils", "tokyo"}
    assert engine.ask("S-300V4 Kuril", mode="lexical").passages
    assert update_index(settings).added == ["new.md"]


def test_kill_9_during_update_leaves_previous_index_whole(settings, corpus):
    update_index(settings)
    for i in range(300):
        (corpus / f"bulk{i:03}.md").write_text(f"Entry {i} about islands, treaties and fishing quotas. " * 40)
    env = {
        **os.environ,
        "QA_CORPUS": str(corpus),
        "QA_INDEX": str(settings.index_dir),
        "QA_MODEL": "hash",
        "QA_CHUNK_SIZE": "48",
        "QA_CHUNK_OVERLAP": "8",
        "PYTHONPATH": str(REPO),
    }
    layout = IndexLayout(settings.index_dir)
    before = layout.current_name()
    killed_mid_write = 0
    for pause in (0.0, 0.02, 0.1):
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(p.name.endswith(".tmp") for p in layout.snapshots.iterdir()):
                break
            time.sleep(0.002)
        time.sleep(pause)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_write += 1
        proc.wait()
        if layout.current_name() == before:
            engine = open_index(settings=settings, build=False)
            assert len(engine.documents()) == 3
            assert engine.ask("quotas for crab", mode="lexical").passages
    assert killed_mid_write >= 1
    report = update_index(settings)  # the next run cleans up and completes
    assert not [p for p in layout.snapshots.iterdir() if p.name.endswith(".tmp")]
    assert not [p for p in layout.root.iterdir() if p.name.endswith(".tmp")]
    assert report.documents_total == 303
    assert open_index(settings=settings).stats()["documents"] == 303


def test_concurrent_writers_are_refused(settings):
    layout = IndexLayout(settings.index_dir)
    with layout.writer_lock(), pytest.raises(IndexLockedError, match="another process"):
        update_index(settings)


def test_other_model_or_chunker_is_refused_with_the_fix(settings):
    update_index(settings)
    with pytest.raises(IndexMismatchError, match=r"qa index --rebuild"):
        open_index(settings=settings.with_(model="hash:128"))
    with pytest.raises(IndexMismatchError, match="chunks of 48"):
        open_index(settings=settings.with_(chunk_size=64))
    with pytest.raises(IndexMismatchError, match=r"paragraphs of up to 224 tokens whole, not 64.*_SIZE=224"):
        open_index(settings=settings.with_(paragraph_size=64))
    with pytest.raises(IndexMismatchError, match=r"not 48"):  # 0: no paragraph longer than a chunk stays whole
        open_index(settings=settings.with_(paragraph_size=0))
    with pytest.raises(IndexMismatchError):
        update_index(settings.with_(model="hash:128"))
    report = update_index(settings.with_(model="hash:128"), rebuild=True)
    assert report.rebuilt and report.chunks_embedded > 0


def _edit_manifest(settings, edit) -> None:
    """Rewrite the live snapshot's manifest as `edit(data)` leaves it (as an earlier qa wrote it)."""
    path = Snapshot.open_current(IndexLayout(settings.index_dir)).folder / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_vectors_from_an_earlier_encoder_version_are_embedded_again_by_qa_index(settings):
    first = update_index(settings)

    def made_by_an_earlier_encoder():  # same model and backend, another version of its encoder
        _edit_manifest(settings, lambda data: data["model"].update(cache_key=data["model"]["cache_key"] + "|batched"))

    made_by_an_earlier_encoder()
    with pytest.raises(EncoderRevisedError, match=r"earlier version of qa's hash encoder.*run `qa index`"):
        open_index(settings=settings, build=False)
    # A setting the user chose that differs is still refused with its own fix, never rebuilt silently.
    with pytest.raises(IndexMismatchError, match="chunks of 48"):
        update_index(settings.with_(chunk_size=64))
    report = update_index(settings)
    # (The embedding cache is keyed by the encoder's own key, so the real change embeds them all.)
    assert report.rebuilt and report.chunks_total == first.chunks_total
    assert any(n.endswith("now embedded alone): every chunk is embedded again") for n in report.notes)
    assert open_index(settings=settings, build=False).stats()["documents"] == 3

    made_by_an_earlier_encoder()  # the web chat's first use builds it again, as it builds a missing one
    assert open_index(settings=settings).stats()["documents"] == 3
    assert update_index(settings).chunks_embedded == 0


def test_sentences_split_by_an_earlier_splitter_are_split_and_embedded_again(settings):
    first = update_index(settings)
    assert open_index(settings=settings, build=False).snapshot.manifest.data["sentences"]["splitter"] == SPLITTER
    _edit_manifest(settings, lambda data: data["sentences"].update(splitter="qa.ingest.sentences v1"))
    with pytest.raises(SplitterRevisedError, match=r"split by an earlier version of qa \(qa.ingest.sentences v1, this"):
        open_index(settings=settings, build=False)
    report = update_index(settings)
    assert report.rebuilt and report.chunks_total == first.chunks_total
    assert any(n.endswith("every chunk is embedded again") for n in report.notes)
    assert open_index(settings=settings, build=False).stats()["documents"] == 3


def test_another_chunk_context_is_refused_with_the_fix_and_old_indexes_carried_none(settings):
    update_index(settings)
    layout = IndexLayout(settings.index_dir)
    assert Snapshot.open_current(layout).manifest.data["chunker"]["context"] == "title+headings"
    with pytest.raises(IndexMismatchError) as caught:
        open_index(settings=settings.with_(chunk_context="none"))
    message = str(caught.value)
    assert "chunk context 'title+headings', not 'none'" in message
    assert "qa index --rebuild" in message and "QA_CHUNK_CONTEXT=title+headings" in message
    with pytest.raises(IndexMismatchError):
        update_index(settings.with_(chunk_context="title"))
    with pytest.raises(IndexMismatchError, match=r"at most 16 tokens of context per chunk, not 32.*TOKENS=16"):
        open_index(settings=settings.with_(context_tokens=32))
    # An index from before the setting (no "context" in its manifest) carried nothing.
    _edit_manifest(settings, lambda data: data["chunker"].pop("context"))
    assert open_index(settings=settings.with_(chunk_context="none")).snapshot.manifest.chunk_context == "none"
    with pytest.raises(IndexMismatchError, match="QA_CHUNK_CONTEXT=none"):
        open_index(settings=settings)


def test_embedding_cache_is_keyed_by_the_embedded_text(settings, corpus):
    update_index(settings.with_(chunk_context="none"))
    # The title prefix changes what is embedded for every chunk that does not open with the title...
    titled = update_index(settings.with_(chunk_context="title"), rebuild=True)
    engine = open_index(settings=settings.with_(chunk_context="title"))
    ids, texts = engine.snapshot.catalog.all_chunks()
    records = engine.snapshot.catalog.chunk_records(ids.tolist())
    lexical = engine.snapshot.lexical
    prefixed = [i for i, r in records.items() if lexical._texts[i] != r.chunk.text]
    assert 0 < titled.chunks_embedded == len(prefixed)  # fishing.txt and kurils.md open with their titles
    assert lexical._texts[prefixed[0]].startswith(records[prefixed[0]].title + "\n\n")
    # ...and a change of settings back and forth embeds nothing: both are in the cache.
    assert update_index(settings.with_(chunk_context="none"), rebuild=True).chunks_embedded == 0
    assert update_index(settings.with_(chunk_context="title"), rebuild=True).chunks_embedded == 0
    # The stored chunk stays the document's own text; the lexical index holds the represented text.
    for chunk_id, record in records.items():
        assert record.chunk.text == texts[list(ids).index(chunk_id)]
        assert lexical._texts[chunk_id].endswith(record.chunk.text)


def test_other_bm25_parameters_rebuild_only_the_lexical_index(settings):
    first = update_index(settings)
    layout = IndexLayout(settings.index_dir)
    assert Snapshot.open_current(layout).lexical.params["k1"] == 0.9
    report = update_index(settings.with_(bm25_k1=1.2, bm25_b=0.75))
    assert report.snapshot != first.snapshot and report.chunks_embedded == 0 and not report.modified
    assert "BM25 k1=1.2, b=0.75" in " ".join(report.notes)
    params = Snapshot.open_current(layout).lexical.params
    assert (params["k1"], params["b"]) == (1.2, 0.75)
    assert update_index(settings.with_(bm25_k1=1.2, bm25_b=0.75)).snapshot == report.snapshot
    with pytest.raises(QAError, match="QA_BM25_B must be between 0 and 1"):
        settings.with_(bm25_b=1.5).validate()


def test_the_title_finds_chunks_that_do_not_say_it(settings, corpus):
    (corpus / "warsaw.md").write_text(
        "---\ntitle: Warsaw\n---\nThe city has 1.7 million inhabitants.\n\n" + "Its river is the Vistula. " * 12,
        encoding="utf-8",
    )
    for context, found in (("none", False), ("title", True)):
        engine = open_index(settings=settings.with_(chunk_context=context, index_dir=settings.index_dir / context))
        hits = engine.snapshot.lexical.search("Warsaw", 5)[1].tolist()
        records = engine.snapshot.catalog.chunk_records(hits)
        assert any(records[i].chunk.doc_id == "warsaw" and "Warsaw" not in records[i].chunk.text for i in hits) is found


def test_corrupt_index_is_reported_and_rebuilt(settings):
    update_index(settings)
    layout = IndexLayout(settings.index_dir)
    vectors = layout.current() / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match="qa index --rebuild"):
        open_index(settings=settings)
    report = update_index(settings)
    assert report.rebuilt and any("rebuilt" in n for n in report.notes)
    assert open_index(settings=settings).ask("crab quotas").passages


def test_missing_catalog_and_pointer_errors(settings):
    update_index(settings)
    layout = IndexLayout(settings.index_dir)
    (layout.current() / "catalog.sqlite").unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        open_index(settings=settings)
    layout.pointer.write_text("nonexistent\n")
    with pytest.raises(IndexCorruptError, match="does not exist"):
        open_index(settings=settings)


def test_missing_corpus_is_a_clear_error(settings, tmp_path):
    with pytest.raises(QAError, match=r"corpus folder .* not found"):
        update_index(settings.with_(corpus_dir=tmp_path / "nope"))


def test_json_report_is_one_object(settings, capsys):
    from qa.cli import main

    env_args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", "hash"]
    os.environ["QA_CHUNK_SIZE"], os.environ["QA_CHUNK_OVERLAP"] = "48", "8"
    try:
        assert main(["index", "--json", *env_args]) == 0
    finally:
        del os.environ["QA_CHUNK_SIZE"], os.environ["QA_CHUNK_OVERLAP"]
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["added"]) == ["fishing.txt", "kurils.md", "tokyo.md"]
    assert isinstance(data["failed"], list) and isinstance(data["seconds"], float)


@pytest.mark.parametrize("where", ["vectors", "catalog", "manifest"])
def test_full_disk_during_write_keeps_the_previous_index(settings, corpus, monkeypatch, where):
    import errno

    from qa.storage.local.catalog import Catalog
    from qa.storage.local.snapshot import Manifest
    from qa.storage.local.vectors import FaissFlatStore

    update_index(settings)
    before = IndexLayout(settings.index_dir).current_name()
    (corpus / "new.md").write_text("Text about icebreakers in the Sea of Okhotsk.", encoding="utf-8")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = {
        "vectors": (FaissFlatStore, "save"),
        "catalog": (Catalog, "add_document"),
        "manifest": (Manifest, "write"),
    }[where]
    monkeypatch.setattr(*target, full)
    with pytest.raises(QAError, match=r"disk is full.*previous index is untouched"):
        update_index(settings)
    monkeypatch.undo()
    layout = IndexLayout(settings.index_dir)
    assert layout.current_name() == before
    assert not [p for p in layout.snapshots.iterdir() if p.name.endswith(".tmp")]
    assert open_index(settings=settings).ask("crab quotas", mode="lexical").passages
    assert update_index(settings).added == ["new.md"]


def test_file_over_the_size_limit_is_reported(settings, corpus):
    (corpus / "huge.txt").write_bytes(b"word " * 300_000)  # 1.5 MB
    report = update_index(settings.with_(max_file_mb=1.0))
    assert report.failed == [{"path": "huge.txt", "reason": report.failed[0]["reason"]}]
    assert "too large" in report.failed[0]["reason"] and "QA_MAX_FILE_MB" in report.failed[0]["reason"]
