"""The hybrid re-ranker: its features, its model file, and how it reorders the fused head."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from qa.config import Settings
from qa.engine import open_index
from qa.errors import QAError
from qa.retrieval.rerank import FEATURES, MODEL_FILE, ChunkTerms, QueryTerms, Reranker, features, load_reranker
from qa.retrieval.search import Searcher

QUERY = "S-300V4 deployed to the Kuril islands"


@pytest.fixture
def engine(settings):
    return open_index(settings=settings)


def _searcher(engine, depth: int) -> Searcher:
    return Searcher(engine.reader, engine.embedder, engine.settings.with_(rerank_depth=depth))


def test_shipped_model_matches_the_features_and_says_what_it_was_fitted_on():
    reranker = load_reranker()
    assert reranker.model.features == FEATURES
    assert reranker.depth == Settings().rerank_depth
    assert set(reranker.meta["sets"]) == {"squad-dev-a"}  # fitted on; SciFact (CC BY-NC) only reports figures
    assert set(reranker.meta["reported_only"]) == {"scifact train", "scifact test"}
    assert "CC BY-SA 4.0" in reranker.meta["licence"]
    assert reranker.meta["script"] == "qa fit rerank"


def test_a_model_file_that_does_not_fit_is_refused_with_the_command_that_refits_it(tmp_path):
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    data["model"]["features"] = data["model"]["features"][:-1]
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(QAError, match="qa fit rerank"):
        load_reranker(bad)
    with pytest.raises(QAError, match="missing"):
        load_reranker(tmp_path / "none.json")
    (tmp_path / "torn.json").write_text("{", encoding="utf-8")
    with pytest.raises(QAError, match="cannot read"):
        load_reranker(tmp_path / "torn.json")


def test_features_of_the_head(engine):
    head = _searcher(engine, 0).candidates(QUERY, "hybrid", 10)
    vector = engine.embedder.encode([QUERY])[0]
    q = QueryTerms.of(QUERY, engine.reader)
    assert q.weights.sum() == pytest.approx(1.0)
    rows = features(q, vector, head, ChunkTerms(engine.reader.analyzer))
    assert rows.shape == (len(head), len(FEATURES))
    column = {name: rows[:, i] for i, name in enumerate(FEATURES)}
    for share in ("coverage", "coverage_title", "sentence_coverage", "pairs", "document_support"):
        assert ((column[share] >= 0) & (column[share] <= 1 + 1e-9)).all(), share
    for gap in ("cosine_gap", "sentence_cosine_gap", "coverage_gap", "sentence_coverage_gap"):
        assert column[gap].max() == pytest.approx(0.0) and (column[gap] <= 0).all(), gap
    assert column["rank"][0] == 0 and (np.diff(column["rank"]) > 0).all()
    # The chunk that holds the words, in order, covers the query best and holds its pairs.
    best = int(np.argmax(column["coverage"]))
    assert "S-300V4" in head[best].text
    assert column["pairs"][best] > 0
    assert column["sentence_coverage"][best] <= column["coverage"][best] + 1e-9
    # The best sentence is the best of the chunk's own sentence vectors.
    for i, cand in enumerate(head):
        if len(cand.sentence_vectors):
            best = float((cand.sentence_vectors @ vector).max())
            assert column["sentence_cosine"][i] == pytest.approx(best, abs=1e-5)
    assert features(q, vector, [], ChunkTerms(engine.reader.analyzer)).shape == (0, len(FEATURES))


def test_the_head_is_analysed_in_one_pass_as_each_chunk_would_be_alone(engine):
    head = _searcher(engine, 0).candidates(QUERY, "hybrid", 10)
    chunks = [(c.chunk_id, c.text, c.title, c.start, c.sentence_spans) for c in head]
    alone = [ChunkTerms(engine.reader.analyzer)(*chunk) for chunk in chunks]
    together = ChunkTerms(engine.reader.analyzer)
    calls = []
    real_terms = together.analyzer.terms

    class Counting:
        def __getattr__(self, name):
            return getattr(engine.reader.analyzer, name)

        def terms(self, texts):
            calls.append(len(texts))
            return real_terms(texts)

    together.analyzer = Counting()
    facts = together.many(chunks[:2])  # two of them memoised first
    assert facts == alone[:2] and len(calls) == 1
    assert together.many(chunks) == alone and len(calls) == 2  # the rest in one more pass
    assert together.many(chunks) == alone and len(calls) == 2  # all memoised now
    # A chunk whose title changed under the same id is analysed again.
    changed = (*chunks[0][:2], chunks[0][2] + " Kaliningrad", *chunks[0][3:])
    assert together.many([changed])[0].title == alone[0].title | {"kaliningrad"} and len(calls) == 3


def test_the_head_is_reordered_by_the_model_and_the_rest_keeps_fused_order(engine):
    fused = _searcher(engine, 0).rank(QUERY, "hybrid", depth=50)
    assert len(fused.ids) == 3  # the test corpus: one chunk per document
    searcher = _searcher(engine, 2)
    ranking = searcher.rank(QUERY, "hybrid", depth=50)
    assert sorted(ranking.ids) == sorted(fused.ids)
    assert all(a > b for a, b in itertools.pairwise(ranking.scores))
    head = ranking.head
    assert [c.chunk_id for c in head] == ranking.ids[:2] and len(head) == 2
    assert set(ranking.ids[:2]) == set(fused.ids[:2])
    assert ranking.ids[2:] == fused.ids[2:] and ranking.scores[2:] == fused.scores[2:]
    vector = engine.embedder.encode([QUERY])[0]
    fused_head = _searcher(engine, 0).candidates(QUERY, "hybrid", 2)
    logits = load_reranker().scores(
        QueryTerms.of(QUERY, engine.reader), vector, fused_head, ChunkTerms(engine.reader.analyzer)
    )
    assert [c.chunk_id for c in head] == [fused_head[i].chunk_id for i in np.argsort(-logits, kind="stable")]
    assert [c.rerank for c in head] == pytest.approx(sorted(logits, reverse=True))
    assert [c.rank for c in head] == [0, 1]
    # Candidates keep their fused score; more than the head come from the fused tail, ranked on.
    pool = searcher.candidates(QUERY, "hybrid", 3)
    assert [c.chunk_id for c in pool] == ranking.ids
    assert [c.rank for c in pool] == [0, 1, 2]
    by_id = dict(zip(fused.ids, fused.scores))
    assert all(c.fused == pytest.approx(by_id[c.chunk_id]) for c in pool)
    assert pool[2].rerank == 0.0
    assert [c.chunk_id for c in searcher.candidates(QUERY, "hybrid", 1)] == ranking.ids[:1]


def test_only_hybrid_is_reranked(engine):
    for mode in ("dense", "lexical"):
        on, off = _searcher(engine, 20).rank(QUERY, mode, 20), _searcher(engine, 0).rank(QUERY, mode, 20)
        assert (on.ids, on.scores, on.head) == (off.ids, off.scores, ())


def test_rerank_depth_setting(monkeypatch):
    assert Settings().rerank_depth == 20
    monkeypatch.setenv("QA_RERANK_DEPTH", "0")
    assert Settings.from_env().rerank_depth == 0
    monkeypatch.setenv("QA_RERANK_DEPTH", "-1")
    with pytest.raises(QAError, match="QA_RERANK_DEPTH must be between 0"):
        Settings.from_env()


def test_the_model_round_trips():
    reranker = load_reranker()
    again = Reranker.from_dict(json.loads(json.dumps(reranker.to_dict())))
    assert again.model.features == reranker.model.features
    assert np.allclose(again.model.coef, reranker.model.coef)


def test_every_store_reranks_the_same(store_settings, settings):
    from qa.ingest.indexer import update_index

    update_index(store_settings)
    rankings = []
    for each in (store_settings, settings):
        engine = open_index(settings=each.with_(rerank_depth=2))
        ranking = engine.searcher.rank(QUERY, "hybrid", depth=10)
        assert len(ranking.head) == 2 and all(c.rerank != 0.0 for c in ranking.head)
        rankings.append([(c.doc_id, c.start, round(c.rerank, 4)) for c in ranking.head])
    assert rankings[0] == rankings[1]  # chunk ids differ between stores; the chunks and scores do not


def test_answers_show_the_rerankers_score_beside_the_retrievers(engine, settings):
    passages = engine.ask(QUERY).passages
    assert passages and all("rerank" in p.scores and "fused" in p.scores for p in passages)
    fused_only = open_index(settings=settings.with_(rerank_depth=0)).ask(QUERY).passages
    assert all("rerank" not in p.scores for p in fused_only)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--depth", "1"], "--depth must be between 2 and 1000"),
        (["--depth", "30", "--check"], "which re-ranks 20; leave --depth out"),
    ],
)
def test_qa_fit_rerank_refuses_a_head_it_cannot_fit_or_check(capsys, argv, message):
    from qa.cli import main

    assert main(["fit", "rerank", *argv]) == 1
    assert message in capsys.readouterr().err
