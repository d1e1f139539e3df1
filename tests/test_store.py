"""The store interface (qa.storage.base), the same tests for every store: `store_settings` runs
each test on the local store and on PostgreSQL (tests/pg.py starts a server from the wheel)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embedding.models import HashEmbedder
from qa.engine import open_index
from qa.errors import IndexMismatchError, IndexMissingError
from qa.ingest.indexer import make_chunker, update_index
from qa.ingest.readers import parse_document
from qa.storage.base import ChunkEvidence, IndexedChunk
from qa.storage.manifest import base_manifest
from qa.storage.stores import open_store
from qa.types import Filters


def test_reader_answers_what_search_and_citations_need(store_settings):
    update_index(store_settings)
    embedder = HashEmbedder()
    reader = open_store(store_settings).open(embedder.cache_key, store_settings)
    try:
        docs = {d.doc_id: d for d in reader.documents()}
        assert set(docs) == {"kurils", "fishing", "tokyo"}
        assert docs["tokyo"].title.startswith("東京の外交") and docs["tokyo"].author == "Kenji Watanabe"
        assert reader.document("tokyo.md").doc_id == "tokyo"  # by path too
        assert reader.document("nowhere") is None
        assert {s: d for s, (d, _) in reader.sources().items()} == {
            "kurils.md": "kurils",
            "fishing.txt": "fishing",
            "tokyo.md": "tokyo",
        }
        spans = reader.chunk_spans()
        assert len(spans) == reader.count_chunks() == sum(d.chunks for d in docs.values())
        records = reader.chunk_records([i for i, *_ in spans])
        for chunk_id, doc_id, start, end in spans:
            record = records[chunk_id]
            text = reader.document(doc_id).text
            assert record.chunk.text == text[start:end] and record.chunk.doc_id == doc_id

        query = embedder.encode(["S-300V4 air defence Kuril islands"])[0]
        scores, ids = reader.search_dense(query, 3)
        assert len(ids) == 3 and list(scores) == sorted(scores, reverse=True)
        assert records[int(ids[0])].chunk.doc_id == "kurils"
        stored = reader.vectors_of([int(i) for i in ids])
        np.testing.assert_allclose(stored @ query, scores, atol=2e-3)  # halfvec stores float16

        scores, ids = reader.search_lexical("crab quotas", 5)
        assert len(ids) >= 1 and records[int(ids[0])].chunk.doc_id == "fishing" and min(scores) > 0
        assert len(reader.search_lexical("zzyzx unknownword", 5)[1]) == 0

        only_tokyo = Filters(doc_ids=("tokyo",))
        assert {records[int(i)].chunk.doc_id for i in reader.search_dense(query, 10, only_tokyo)[1]} == {"tokyo"}
        assert len(reader.search_lexical("crab", 5, only_tokyo)[1]) == 0
        by_author = Filters(author="petrova")
        assert {records[int(i)].chunk.doc_id for i in reader.search_dense(query, 10, by_author)[1]} == {"kurils"}
        dated = Filters(date_from="2017", date_to="2020")
        assert {records[int(i)].chunk.doc_id for i in reader.search_dense(query, 10, dated)[1]} == {"kurils"}
        assert len(reader.search_dense(query, 10, Filters(author="nobody at all"))[1]) == 0

        share = reader.coverage("crab quotas vessels")
        assert share("quotas for crab and vessels") == pytest.approx(1.0)
        assert 0 < share("crab only") < 1 and share("nothing relevant") == 0
    finally:
        reader.close()


def test_writer_stores_sentence_evidence_and_search_text(store_settings):
    """The slot for per-chunk sentence evidence, and a search text that differs from the chunk's."""
    embedder = HashEmbedder()
    store = open_store(store_settings)
    doc = parse_document(
        "notes.md", "# Notes\n\nThe ferry to Shikotan runs twice a week.\n\nВторое предложение.".encode()
    )
    chunks = make_chunker(store_settings, embedder).chunk(doc)
    prefix = "Notes — crab "  # e.g. a title and headings before the text
    vectors = embedder.encode([prefix + c.text for c in chunks])
    evidence = [
        ChunkEvidence(((c.start, c.start + 5), (c.start + 6, c.end)), np.ones((2, embedder.dim), np.float32) * 0.5)
        for c in chunks
    ]
    with store.writer(embedder, store_settings) as writer:
        assert writer.sources() == {}
        writer.put_document(
            doc, [IndexedChunk(c, v, prefix + c.text, e) for c, v, e in zip(chunks, vectors, evidence, strict=True)]
        )
        writer.finish(base_manifest(store_settings, embedder))
    reader = store.open(embedder.cache_key, store_settings)
    try:
        ids = [i for i, *_ in reader.chunk_spans()]
        found = reader.evidence(ids)
        assert set(found) == set(ids)
        first = found[ids[0]]
        assert first.spans == ((chunks[0].start, chunks[0].start + 5), (chunks[0].start + 6, chunks[0].end))
        assert first.vectors.shape == (2, embedder.dim) and first.vectors.dtype == np.float32
        np.testing.assert_allclose(first.vectors, 0.5)
        # The lexical side indexes the search text: "crab" is only in the prefix.
        assert len(reader.search_lexical("crab", 5)[1]) == len(chunks)
        assert reader.chunk_records(ids)[ids[0]].chunk.text == chunks[0].text
        assert reader.manifest.corpus["documents"] == 1
    finally:
        reader.close()


def test_embedding_cache_round_trips(store_settings):
    cache = open_store(store_settings).embedding_cache()
    try:
        vector = np.arange(8, dtype=np.float32) / 10
        cache.put_many("model-a", [("h1", vector)])
        cache.put_many("model-a", [("h1", vector)])  # twice: no duplicate
        found = cache.get_many("model-a", ["h1", "h2"])
        assert list(found) == ["h1"]
        np.testing.assert_array_equal(found["h1"], vector)
        assert cache.get_many("model-b", ["h1"]) == {}
    finally:
        cache.close()


def test_missing_index_then_engine_on_top(store_settings, corpus):
    store = open_store(store_settings)
    assert store.current_name() == ""
    with pytest.raises(IndexMissingError):
        store.open(HashEmbedder().cache_key, store_settings)
    engine = open_index(settings=store_settings)
    answer = engine.ask("What did Russia deploy to the Kuril islands?", k=2)
    assert answer.passages[0].doc_id == "kurils"
    assert engine.stats()["store"] == store_settings.store and engine.stats()["documents"] == 3
    assert engine.stale_files() == []
    (corpus / "fishing.txt").unlink()
    assert engine.stale_files() == ["fishing.txt"]
    before = engine.reader.name
    engine.update()
    assert engine.reader.name != before and engine.stats()["documents"] == 2


# -- the local store: a damaged live snapshot ---------------------------------------------------
def test_damaged_live_snapshot_falls_back_to_the_newest_intact_one(settings, corpus, caplog):
    from qa.storage.local.snapshot import IndexLayout

    update_index(settings)
    (corpus / "extra.md").write_text("# Extra\n\nSakhalin ferries carry timber and crab.\n", encoding="utf-8")
    update_index(settings)
    layout = IndexLayout(settings.index_dir)
    live = layout.current()
    older = sorted(p.name for p in layout.snapshots.iterdir() if p.name != live.name)
    assert len(older) == 1
    (live / "vectors.faiss").write_bytes(b"truncated")

    engine = open_index(settings=settings, build=False)
    assert engine.reader.name == older[0]
    assert "damaged" in engine.reader.warning and "qa index" in engine.reader.warning
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert engine.ask("crab quotas", k=1).passages[0].doc_id == "fishing"
    assert "extra" not in {d.doc_id for d in engine.documents()}  # the previous snapshot: without the update
    caplog.clear()
    assert engine.refresh() is False and not caplog.records  # not reopened (and warned about) at every question

    # `qa index` repairs from the intact snapshot (only the missing document is embedded again)
    # and removes the damaged one.
    report = update_index(settings)
    assert report.added == ["extra.md"] and report.chunks_embedded == 0  # its vectors come from the cache
    assert any("damaged" in note for note in report.notes)
    assert not live.exists()
    repaired = open_index(settings=settings, build=False)
    assert repaired.reader.warning == "" and "extra" in {d.doc_id for d in repaired.documents()}


def test_damaged_only_snapshot_is_still_one_clear_error(settings):
    from qa.errors import IndexCorruptError
    from qa.storage.local.snapshot import IndexLayout

    update_index(settings)
    (IndexLayout(settings.index_dir).current() / "catalog.sqlite").unlink()
    with pytest.raises(IndexCorruptError, match="qa index --rebuild"):
        open_index(settings=settings, build=False)


def test_a_corpus_without_a_single_lexical_term_indexes(store_settings, corpus):
    """Found by the property tests: bm25s failed on texts made only of stop words and one-letter words."""
    for path in list(corpus.iterdir()):
        path.unlink()
    (corpus / "letters.txt").write_text("a b c. I\n\nи в о — x y\n", encoding="utf-8")
    report = update_index(store_settings)
    assert report.added == ["letters.txt"] and report.chunks_total >= 1
    engine = open_index(settings=store_settings, build=False)
    assert engine.ask("what about the numbers", mode="lexical").passages == ()  # not its title (letters)
    assert engine.documents()[0].doc_id == "letters"


def test_postgres_bm25_ranks_exactly_as_the_local_store(settings, pg_settings, corpus):
    """BM25 in SQL (with MaxScore's first pass over the rarer terms) against bm25s, on text where
    some words are in nearly every chunk and others in a few."""
    import random

    rng = random.Random(5)
    vocab = [f"word{i}" for i in range(300)]
    weights = [1 / (i + 1) ** 1.1 for i in range(len(vocab))]
    for d in range(60):
        paragraphs = [" ".join(rng.choices(vocab, weights, k=30)) for _ in range(4)]
        (corpus / f"zipf{d:02}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    update_index(settings)
    update_index(pg_settings)
    embedder = HashEmbedder()
    local = open_store(settings).open(embedder.cache_key, settings)
    pg = open_store(pg_settings).open(embedder.cache_key, pg_settings)
    spans_local = {i: (d, s, e) for i, d, s, e in local.chunk_spans()}
    spans_pg = {i: (d, s, e) for i, d, s, e in pg.chunk_spans()}
    queries = ["word0 word1", "word0 word250", "word2 word40 word41 word299", "word0 word0 word7 crab", "word120"]
    for query in queries:
        for k in (1, 5, 40, 300):
            a_scores, a_ids = local.search_lexical(query, k)
            b_scores, b_ids = pg.search_lexical(query, k)
            np.testing.assert_allclose(a_scores, b_scores, rtol=1e-5)
            a = _tie_groups(a_scores, [spans_local[int(i)] for i in a_ids], k)
            assert a == _tie_groups(b_scores, [spans_pg[int(i)] for i in b_ids], k), (query, k)
    only = Filters(doc_ids=("zipf03", "zipf17"))
    (a_scores, a_ids), (b_scores, b_ids) = (
        local.search_lexical("word0 word9", 50, only),
        pg.search_lexical("word0 word9", 50, only),
    )
    assert _tie_groups(a_scores, [spans_local[int(i)] for i in a_ids], 50) == _tie_groups(
        b_scores, [spans_pg[int(i)] for i in b_ids], 50
    )
    # Other BM25 parameters (QA_BM25_K1/B): the local store rebuilds its lexical index at the next
    # update, postgres applies them as it scores; both still rank alike.
    other = {"bm25_k1": 1.6, "bm25_b": 0.8}
    report = update_index(settings.with_(**other))
    assert report.chunks_embedded == 0 and any("k1=1.6, b=0.8" in note for note in report.notes)
    local = open_store(settings).open(embedder.cache_key, settings.with_(**other))
    pg = open_store(pg_settings.with_(**other)).open(embedder.cache_key, pg_settings.with_(**other))
    assert local.lexical_params["k1"] == pg.lexical_params["k1"] == 1.6
    _same_lexical_scores(local, pg, queries[:3])
    # Without term pairs (QA_BM25_PAIRS=0): the local store re-indexes its terms at the next update;
    # postgres, whose lexemes hold the pairs, names the rebuild that fixes it; then both rank alike.
    plain = {**other, "bm25_pairs": 0.0}
    report = update_index(settings.with_(**plain))
    assert report.chunks_embedded == 0 and any("term pairs 0" in note for note in report.notes)
    with pytest.raises(IndexMismatchError, match=r"term pairs 0.25, not 0.*qa index --rebuild.*QA_BM25_PAIRS=0.25"):
        update_index(pg_settings.with_(**plain))
    assert update_index(pg_settings.with_(**plain), rebuild=True).chunks_embedded == 0  # all cached
    local = open_store(settings).open(embedder.cache_key, settings.with_(**plain))
    pg = open_store(pg_settings.with_(**plain)).open(embedder.cache_key, pg_settings.with_(**plain))
    assert local.lexical_params["pairs"] == pg.lexical_params["pairs"] == 0.0
    _same_lexical_scores(local, pg, queries[:3])


def _same_lexical_scores(local, pg, queries, k: int = 40) -> None:
    for query in queries:
        np.testing.assert_allclose(local.search_lexical(query, k)[0], pg.search_lexical(query, k)[0], rtol=1e-5)


def _tie_groups(scores, items, k: int) -> list[tuple[float, frozenset]]:
    """Items grouped by equal score (float32 vs float64 sums order ties differently); a group cut
    off at k is left out, since which of its members made the cut is arbitrary."""
    groups: list[tuple[float, set]] = []
    for score, item in zip(scores, items, strict=True):
        if groups and abs(groups[-1][0] - score) <= 1e-5 * max(1.0, abs(score)):
            groups[-1][1].add(item)
        else:
            groups.append((float(score), {item}))
    if len(items) == k and groups:
        groups.pop()
    return [(round(s, 4), frozenset(g)) for s, g in groups]


def test_failed_files_are_recorded_in_the_manifest_on_every_store(store_settings, corpus):
    first = update_index(store_settings)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    engine = open_index(settings=store_settings, build=False)
    assert engine.corpus_status().changed == ("broken.pdf",)  # new: `qa index` is what to run
    report = update_index(store_settings)
    assert report.added == [] and [f["path"] for f in report.failed] == ["broken.pdf"]
    assert report.snapshot != first.snapshot  # the same index, with the failure recorded
    engine.refresh()
    status = engine.corpus_status()
    assert status.changed == () and [f["path"] for f in status.failed] == ["broken.pdf"]
    assert [f["path"] for f in engine.failed_at_last_update()] == ["broken.pdf"]
    assert update_index(store_settings).snapshot == report.snapshot  # recorded once: nothing new
    (corpus / "broken.pdf").unlink()
    update_index(store_settings)
    engine.refresh()
    assert engine.failed_at_last_update() == [] and engine.corpus_status().changed == ()
