"""The answer models' fitting script runs end to end, and the shipped models load and score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa.answering.features import PASSAGE_FEATURES, QUESTION_FEATURES, SENTENCE_FEATURES
from qa.answering.scorer import MODELS_FILE, AnswerModels, LinearModel, load_models, softmax
from qa.errors import QAError


def test_shipped_models_match_the_features_this_version_computes():
    models = load_models()
    assert models.sentence.features == SENTENCE_FEATURES
    assert models.passage.features == PASSAGE_FEATURES
    assert models.gate.features == QUESTION_FEATURES
    fitted = models.meta
    assert fitted["script"] == "python -m bench.fit_answers"
    assert fitted["sets"]["squad-dev-a"]["questions"] == 4566 and fitted["sets"]["seed"]["questions"] >= 39
    assert 0 < models.answer_share < 1 and models.answer_max_sentences >= 1


def test_models_refuse_other_features_with_the_command_that_fixes_it(tmp_path):
    data = json.loads(MODELS_FILE.read_text(encoding="utf-8"))
    data["sentence"]["features"] = ["cosine"]
    with pytest.raises(QAError, match=r"bench\.fit_answers"):
        AnswerModels.from_dict(data)
    broken = tmp_path / "models.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(QAError, match=r"bench\.fit_answers"):
        load_models(broken)


def test_linear_model_standardises_and_softmax_sums_to_one():
    model = LinearModel(("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([1.0, -1.0]), 0.5)
    assert model.logits(np.array([[3.0, 1.0]])) == pytest.approx([0.5])  # (3-1)/2 - 1 + 0.5
    assert model.logits(np.zeros((0, 2))).shape == (0,)
    shares = softmax(np.array([1000.0, 1000.0, 0.0]))
    assert shares.sum() == pytest.approx(1.0) and shares[0] == pytest.approx(0.5)


@pytest.mark.integration
def test_the_fitting_script_runs_on_a_few_questions(tmp_path):
    pytest.importorskip("sklearn")
    from bench import fit_answers

    out = tmp_path / "models.json"
    assert fit_answers.main(["--limit", "40", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    models = load_models(out)
    figures = models.meta["cross_validated"]
    assert set(figures) == {"squad-dev-a", "seed"}
    assert figures["squad-dev-a"]["answerable"] == 40 and 0.0 <= figures["squad-dev-a"]["hit@1"] <= 1.0


def test_a_check_that_fails_says_how_far_and_where():
    from bench.fit_answers import largest_difference

    shipped = {"model": {"weights": [1.0, 2.0], "bias": 0.5}, "figures": {"hit@1": 0.9}}
    assert largest_difference(shipped, json.loads(json.dumps(shipped))) == (0.0, "/model/weights[0]")
    refit = {"model": {"weights": [1.0, 2.003], "bias": 0.5}, "figures": {"hit@1": 0.9001}}
    size, where = largest_difference(shipped, refit)
    assert where == "/model/weights[1]" and size == pytest.approx(0.003)
    assert largest_difference(shipped, {**refit, "figures": {}})[1] == "/figures"  # keys differ
    assert largest_difference({"a": "x"}, {"a": "y"}) == (float("inf"), "/a")


def test_the_gate_tradeoff_says_what_each_looser_threshold_costs_and_buys():
    from bench.fit_answers import gate_tradeoff

    # 100 answerable questions scoring 0..99 and 10 off-topic ones scoring -5..4, in one collection.
    scores = np.concatenate([np.arange(100.0), np.arange(-5.0, 5.0)])
    answerable = np.arange(110) < 100
    rows = gate_tradeoff(scores, answerable, np.array(["a"] * 110), quantiles=(0.0, 0.05))
    assert [r["quantile"] for r in rows] == [0.0, 0.05]
    assert rows[0]["min_relevance"] == 0.5  # the threshold is logit 0: the lowest answerable score
    assert rows[0]["collections"]["a"] == {"false_nothing_found": 0.0, "offtopic_refused": 0.5}
    # The 5 % quantile of 0..99 is 4.95: five answerable questions refused, and every off-topic one.
    assert rows[1]["collections"]["a"] == {"false_nothing_found": 0.05, "offtopic_refused": 1.0}
    assert rows[1]["min_relevance"] > rows[0]["min_relevance"]
