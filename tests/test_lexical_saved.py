"""Searching a saved BM25 index with numpy alone gives what bm25s itself gives."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from qa.errors import IndexCorruptError
from qa.storage.local.bm25_saved import SavedBm25, read_saved
from qa.storage.local.lexical import Bm25Index

WORDS = ["island", "treaty", "missile", "fishing", "quota", "tank", "border", "vessel", "salmon", "crab", "Курилы"]


def _texts(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))) for _ in range(n)]


def test_loaded_index_searches_like_the_built_one_without_bm25s(tmp_path):
    import bm25s

    texts = _texts(200)
    built = Bm25Index.build(list(range(500, 700)), texts)
    built.save(tmp_path)
    loaded = Bm25Index.load(tmp_path)
    assert isinstance(loaded._retriever, SavedBm25)
    assert len(loaded) == 200
    # The folder is still bm25s's own: bm25s reads it as before.
    again = bm25s.BM25.load(str(tmp_path / Bm25Index.DIR), show_progress=False, verbosity=0)
    assert again.vocab_dict == loaded._retriever.vocab_dict
    for query in ("missile treaty", "crab crab salmon", "Tokyo peace war border", "курилы", "nothing here"):
        for allowed in (None, np.arange(500, 600)):
            expected, got = built.search(query, 15, allowed), loaded.search(query, 15, allowed)
            np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
            assert got[1].tolist() == expected[1].tolist()
        assert loaded.idf(loaded.query_terms(query)) == pytest.approx(built.idf(built.query_terms(query)))
    assert loaded.terms(["The peace of the islands"]) == built.terms(["The peace of the islands"])


def test_loaded_index_can_be_updated_and_saved_again(tmp_path):
    Bm25Index.build([1, 2], ["tanks on the island", "crab quotas"]).save(tmp_path / "a")
    loaded = Bm25Index.load(tmp_path / "a")
    loaded.save(tmp_path / "b")  # untouched: written again by bm25s
    loaded.add([3], ["tanks in the strait"])
    loaded.remove([2])
    assert sorted(loaded.search("tanks", 5)[1].tolist()) == [1, 3]
    loaded.save(tmp_path / "c")
    assert sorted(Bm25Index.load(tmp_path / "c").search("tanks", 5)[1].tolist()) == [1, 3]
    assert Bm25Index.load(tmp_path / "b").search("crab", 5)[1].tolist() == [2]


def test_index_saved_before_the_stop_word_file_still_loads(tmp_path):
    Bm25Index.build([1, 2], ["the tanks on the island", "crab quotas"]).save(tmp_path)
    (tmp_path / Bm25Index.DIR / Bm25Index.STOPWORDS).unlink()
    loaded = Bm25Index.load(tmp_path)
    assert loaded.query_terms("the tanks") == ["tank"]
    assert loaded.search("the tanks", 5)[1].tolist() == [1]


def test_empty_index_round_trips(tmp_path):
    Bm25Index.build([], []).save(tmp_path)
    loaded = Bm25Index.load(tmp_path)
    assert len(loaded) == 0
    assert loaded.search("tanks", 5)[1].tolist() == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "indptr.csc.index.npy").unlink(),
        lambda folder: (folder / "params.index.json").write_text("not json"),
        lambda folder: (folder / "vocab.index.json").write_text(json.dumps({"tank": 10_000})),
        lambda folder: np.save(folder / "data.csc.index.npy", np.zeros(3, np.float32)),
    ],
)
def test_damaged_saved_index_is_one_clear_error(tmp_path, damage):
    Bm25Index.build([1, 2], ["tanks on the island", "crab quotas"]).save(tmp_path)
    damage(tmp_path / Bm25Index.DIR)
    with pytest.raises(IndexCorruptError, match="qa index --rebuild"):
        Bm25Index.load(tmp_path)


def test_read_saved_keeps_bm25s_parameters(tmp_path):
    Bm25Index.build([1], ["tanks"], k1=1.2, b=0.5).save(tmp_path)
    saved = read_saved(tmp_path / Bm25Index.DIR)
    assert (saved.params["k1"], saved.params["b"]) == (1.2, 0.5) and saved.scores["num_docs"] == 1
    assert saved.nonoccurrence_array is None  # the default method scores present terms only


def test_term_pairs_reward_the_question_words_in_order(tmp_path):
    from qa.terms import query_weights, term_pairs

    assert term_pairs(["russia", "deploy", "kuril"]) == ["russia deploy", "deploy kuril"]
    assert query_weights(["air", "defenc", "air"], 0.25) == {
        "air": 2.0,
        "defenc": 1.0,
        "air defenc": 0.25,
        "defenc air": 0.25,
    }
    assert query_weights(["air", "defenc"], 0.0) == {"air": 1.0, "defenc": 1.0}
    texts = ["The air defence system was deployed.", "Defence of the air base was deployed."]
    apart, together = Bm25Index.build([1, 2], texts[::-1], pairs=0.0), Bm25Index.build([1, 2], texts[::-1], pairs=0.25)
    plain_scores, _ = apart.search("air defence", 2)
    assert plain_scores[0] == plain_scores[1]  # the same words: a tie without pairs
    scores, ids = together.search("air defence", 2)
    assert ids.tolist() == [2, 1] and scores[0] > scores[1]
    together.save(tmp_path)  # saved and read back with numpy alone, the pairs still count
    loaded = Bm25Index.load(tmp_path)
    assert loaded.pairs == 0.25
    np.testing.assert_allclose(loaded.search("air defence", 2)[0], scores, rtol=1e-6)
