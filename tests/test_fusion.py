from __future__ import annotations

import itertools

import numpy as np
import pytest

from qa.retrieval.fusion import (
    convex_combination,
    fuse_rankings,
    merge_overlapping,
    min_max,
    reciprocal_rank_fusion,
    strictly_decreasing,
)


def test_rrf_scores_and_order():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60)
    scores = dict(fused)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61)
    assert [item for item, _ in fused][:2] == ["b", "a"]


def test_rrf_breaks_ties_by_best_rank_and_strictly_decreases():
    # a and x both score 1/61 + ... symmetric: a first in run 1, x first in run 2
    fused = reciprocal_rank_fusion([["a", "y"], ["x", "z"]], k=10)
    items = [i for i, _ in fused]
    assert items[:2] == ["a", "x"]  # equal score, equal best rank: first seen wins
    scores = [s for _, s in fused]
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_rrf_weights_must_match():
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0])


def test_min_max_and_convex():
    assert min_max([]) == []
    assert min_max([2.0, 2.0]) == [1.0, 1.0]
    assert min_max([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]
    fused = dict(convex_combination([{"a": 10.0, "b": 0.0}, {"b": 5.0, "c": 1.0}], [0.5, 0.5]))
    assert fused["a"] == pytest.approx(0.5)
    assert fused["b"] == pytest.approx(0.5 - 1e-9)  # tie with a, nudged below it
    assert fused["c"] == pytest.approx(0.0, abs=1e-8)


def test_fused_head_is_the_same_at_any_depth():
    rng = np.random.default_rng(7)
    dense = dict(sorted(((f"c{i}", float(s)) for i, s in enumerate(rng.random(50))), key=lambda x: -x[1]))
    lexical = dict(sorted(((f"c{i}", float(s)) for i, s in enumerate(rng.random(60) * 9)), key=lambda x: -x[1]))
    shallow = fuse_rankings(dict(list(dense.items())[:10]), dict(list(lexical.items())[:10]), candidates=10)
    deep = fuse_rankings(dense, lexical, candidates=10)
    # The head fuses the top 10 of each list, whatever the depth; deeper entries follow below it.
    assert deep[: len(shallow)] == shallow
    assert len(deep) == len({*dense, *lexical})
    assert all(a > b for a, b in itertools.pairwise(s for _, s in deep))
    top_d, top_l = list(dense)[:10], list(lexical)[:10]
    d, lx = dict(zip(top_d, min_max([dense[i] for i in top_d]))), dict(zip(top_l, min_max([lexical[i] for i in top_l])))
    for item, score in shallow:
        assert score == pytest.approx(0.5 * d.get(item, 0) + 0.5 * lx.get(item, 0), abs=1e-6)
    rrf = fuse_rankings(dense, lexical, method="rrf", rrf_k=5, candidates=100)
    assert rrf == reciprocal_rank_fusion([list(dense), list(lexical)], k=5)
    assert fuse_rankings({}, {}) == []
    assert [i for i, _ in fuse_rankings({"a": 0.9}, {}, candidates=1)] == ["a"]


def test_strictly_decreasing_keeps_order():
    out = strictly_decreasing([("a", 1.0), ("b", 1.0), ("c", 1.0), ("d", 0.5)])
    assert [i for i, _ in out] == ["a", "b", "c", "d"]
    assert out[0][1] > out[1][1] > out[2][1] > out[3][1]


def test_merge_overlapping_spans():
    spans = [(1, "d1", 0, 100), (2, "d1", 80, 180), (3, "d2", 0, 50), (4, "d1", 150, 250), (5, "d1", 300, 400)]
    merged = merge_overlapping(spans)
    assert merged == [([1, 2], "d1", 0, 180), ([3], "d2", 0, 50), ([5], "d1", 300, 400)]


def test_stores_build_search_remove_save_load(tmp_path):
    import numpy as np

    from qa.storage.local.lexical import Bm25Index
    from qa.storage.local.vectors import FaissFlatStore

    vectors = np.eye(4, dtype=np.float32)
    store = FaissFlatStore.build(np.array([10, 20, 30, 40]), vectors, 4)
    scores, ids = store.search(vectors[1], 2)
    assert ids[0][0] == 20 and scores[0][0] == pytest.approx(1.0)
    _, ids = store.search(vectors[1], 2, allowed=np.array([30, 40]))
    assert 20 not in ids[0]
    store.remove(np.array([20]))
    store.save(tmp_path)
    loaded = FaissFlatStore.load(tmp_path, 4)
    assert len(loaded) == 3 and 20 not in loaded.search(vectors[1], 3)[1][0]
    assert loaded.vectors(np.array([40]))[0].tolist() == [0, 0, 0, 1]

    lexical = Bm25Index.build([1, 2, 3], ["Russian tanks deployed", "Japanese fishing boats", "tanks and boats"])
    scores, ids = lexical.search("tank deployment", 3)
    assert ids.tolist()[0] == 1 and all(s > 0 for s in scores)
    assert lexical.search("the of", 3)[1].size == 0  # stop words only: nothing, not zero-score padding
    lexical.remove([1])
    lexical.add([4], ["tanks again"])
    lexical.save(tmp_path)
    loaded = Bm25Index.load(tmp_path)
    assert sorted(loaded.search("tanks", 5)[1].tolist()) == [3, 4]
    assert loaded.search("tanks", 5, allowed=np.array([4]))[1].tolist() == [4]


def test_batched_terms_match_bm25s_tokenization():
    import bm25s

    from qa.storage.local.lexical import Bm25Index

    index = Bm25Index()
    texts = ["What did Russia deploy to the Kurils?", "Café naïve «hopes», über-fast S-300V4 deployments!", "the of"]
    expected = bm25s.tokenize(
        texts, stopwords=index.stopwords, stemmer=index.analyzer.stemmer(), return_ids=False, show_progress=False
    )
    assert index.terms(texts) == [list(t) for t in expected]


def test_lexical_scores_match_bm25s_retrieve():
    import random

    import numpy as np

    from qa.storage.local.lexical import Bm25Index

    rng = random.Random(3)
    words = [
        "island",
        "treaty",
        "missile",
        "fishing",
        "quota",
        "tank",
        "border",
        "vessel",
        "salmon",
        "crab",
        "Tokyo",
        "Moscow",
        "peace",
        "war",
    ]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 30))) for _ in range(300)]
    index = Bm25Index.build(list(range(1000, 1300)), texts)
    for query in ("missile treaty", "crab crab salmon", "Tokyo peace war border", "island"):
        scores, ids = index.search(query, 20)
        terms = [t for t in index.query_terms(query) if t in index._retriever.vocab_dict]
        rows, expected = index._retriever.retrieve([terms], k=20, show_progress=False)
        np.testing.assert_allclose(scores, expected[0][expected[0] > 0], rtol=1e-5)
        assert set(ids[:5].tolist()) <= {1000 + r for r in rows[0][: max(5, int((expected[0] > 0).sum()))]}
    assert list(scores) == sorted(scores, reverse=True)


def test_convex_combination_is_the_weighted_sum_of_min_max_scores():
    rng = np.random.default_rng(3)
    runs = [
        {f"c{i}": float(s) for i, s in enumerate(rng.random(40) * 5)},
        {f"c{i}": float(s) for i, s in zip(range(20, 70), rng.random(50) * 12, strict=True)},
        {"c1": 2.0, "c99": 2.0},  # all equal: each scores 1 there
    ]
    alphas = [0.3, 0.5, 0.2]
    expected: dict[str, float] = {}
    for run, alpha in zip(runs, alphas, strict=True):
        for item, norm in zip(run, min_max(list(run.values())), strict=True):
            expected[item] = expected.get(item, 0.0) + alpha * norm
    fused = convex_combination(runs, alphas)
    assert [item for item, _ in fused] == sorted(expected, key=lambda item: -expected[item])
    assert dict(fused) == pytest.approx(expected, abs=1e-6)
    assert convex_combination([{}, {"a": 1.0}], [0.5, 0.5]) == [("a", 0.5)]
