"""The answer models' fit (`qa fit answers`) runs end to end, and the shipped models load and score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa.answering.features import PASSAGE_FEATURES, QUESTION_FEATURES, SENTENCE_FEATURES
from qa.answering.scorer import MODELS_FILE, AnswerModels, LinearModel, load_models, softmax
from qa.errors import QAError
from qa.linear import AdditiveModel, model_from_dict


def test_shipped_models_match_the_features_this_version_computes():
    models = load_models()
    assert models.sentence.features == SENTENCE_FEATURES
    assert models.passage.features == PASSAGE_FEATURES
    assert models.gate.features == QUESTION_FEATURES
    fitted = models.meta
    assert fitted["script"] == "qa fit answers"
    assert fitted["sets"]["squad-dev-a"]["questions"] == 4566 and fitted["sets"]["seed"]["questions"] >= 39
    assert 0 < models.answer_share < 1 and models.answer_max_sentences >= 1


def test_models_refuse_other_features_with_the_command_that_fixes_it(tmp_path):
    data = json.loads(MODELS_FILE.read_text(encoding="utf-8"))
    data["sentence"]["features"] = ["cosine"]
    with pytest.raises(QAError, match="qa fit answers"):
        AnswerModels.from_dict(data)
    broken = tmp_path / "models.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(QAError, match="qa fit answers"):
        load_models(broken)


def test_linear_model_standardises_and_softmax_sums_to_one():
    model = LinearModel(("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([1.0, -1.0]), 0.5)
    assert model.logits(np.array([[3.0, 1.0]])) == pytest.approx([0.5])  # (3-1)/2 - 1 + 0.5
    assert model.logits(np.zeros((0, 2))).shape == (0,)
    shares = softmax(np.array([1000.0, 1000.0, 0.0]))
    assert shares.sum() == pytest.approx(1.0) and shares[0] == pytest.approx(0.5)


def test_additive_model_interpolates_each_curve_and_holds_it_beyond_its_ends():
    model = AdditiveModel(
        ("a", "b"),
        np.array([0.0, 10.0]),
        np.array([1.0, 2.0]),
        np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0]]),
        np.array([[-1.0, 0.0, 3.0], [0.5, 0.0, 0.5]]),
        0.25,
    )
    # a: z=0.5 halfway from 0 to 3; b: z=(12-10)/2=1, halfway from 0 to 0.5
    assert model.logits(np.array([[0.5, 12.0]])) == pytest.approx([0.25 + 1.5 + 0.25])
    # far outside the grid, each curve keeps its end value
    assert model.logits(np.array([[100.0, -1000.0]])) == pytest.approx([0.25 + 3.0 + 0.5])
    assert model.logits(np.zeros((0, 2))).shape == (0,)
    again = model_from_dict(model.to_dict(), ("a", "b"), "gate", "m.json", "refit")
    assert isinstance(again, AdditiveModel) and again.logits(np.array([[0.5, 12.0]])) == pytest.approx([2.0])
    broken = model.to_dict() | {"grid": [[0.0, 0.0, 1.0], [-2.0, 0.0, 2.0]]}  # not increasing
    with pytest.raises(QAError, match="malformed; refit it with `refit`"):
        model_from_dict(broken, ("a", "b"), "gate", "m.json", "refit")
    with pytest.raises(QAError, match="other features"):
        model_from_dict(model.to_dict(), ("a", "c"), "gate", "m.json", "refit")


def test_the_fitted_gate_scores_as_its_spline_model_does(monkeypatch):
    """fit_gate tabulates each fitted curve; the tables must score like the spline model they came
    from, and a feature constant in the data must count for nothing."""
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    from qa.training import answers

    fitted = {}
    real = LogisticRegression.fit

    def keep(self, x, y, **kw):
        fitted["model"], fitted["x"] = self, x
        return real(self, x, y, **kw)

    monkeypatch.setattr(LogisticRegression, "fit", keep)
    rng = np.random.default_rng(0)
    rows = np.c_[rng.normal(size=400), rng.exponential(size=400), np.full(400, 3.0)]
    labels = rows[:, 0] ** 2 + rng.normal(scale=0.3, size=400) < 1.0  # a curve, not a line
    gate = answers.fit_gate(rows, labels, np.ones(400), ("a", "b", "c"))
    assert isinstance(gate, AdditiveModel) and isinstance(load_models().gate, AdditiveModel)
    expected = fitted["model"].decision_function(fitted["x"])
    assert np.max(np.abs(gate.logits(rows) - expected)) < 0.02
    assert np.all(gate.values[2] == 0.0)
    assert gate.logits(rows[:1] * [1, 1, 100]) == pytest.approx(gate.logits(rows[:1]))


@pytest.mark.integration
def test_the_fit_runs_on_a_few_questions(tmp_path):
    pytest.importorskip("sklearn")
    from qa.cli import main

    out = tmp_path / "models.json"
    assert main(["fit", "answers", "--limit", "40", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    models = load_models(out)
    figures = models.meta["cross_validated"]
    assert set(figures) == {"squad-dev-a", "seed", "squad-dev-a (document withheld)"}
    assert set(figures["squad-dev-a (document withheld)"]) == {"offtopic", "offtopic_refused"}
    assert figures["squad-dev-a"]["answerable"] == 40 and 0.0 <= figures["squad-dev-a"]["hit@1"] <= 1.0


def test_a_check_that_fails_says_how_far_and_where():
    from qa.training.answers import largest_difference

    shipped = {"model": {"weights": [1.0, 2.0], "bias": 0.5}, "figures": {"hit@1": 0.9}}
    assert largest_difference(shipped, json.loads(json.dumps(shipped))) == (0.0, "/model/weights[0]")
    refit = {"model": {"weights": [1.0, 2.003], "bias": 0.5}, "figures": {"hit@1": 0.9001}}
    size, where = largest_difference(shipped, refit)
    assert where == "/model/weights[1]" and size == pytest.approx(0.003)
    assert largest_difference(shipped, {**refit, "figures": {}})[1] == "/figures"  # keys differ
    assert largest_difference({"a": "x"}, {"a": "y"}) == (float("inf"), "/a")


def test_the_gate_tradeoff_says_what_each_looser_threshold_costs_and_buys():
    from qa.training.answers import gate_tradeoff

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
    # A collection of off-topic questions only (its documents withheld) has no false "nothing found".
    both = gate_tradeoff(
        np.concatenate([scores, [-1.0, 10.0]]),
        np.concatenate([answerable, [False, False]]),
        np.array(["a"] * 110 + ["b"] * 2),
        quantiles=(0.0,),
    )
    assert both[0]["collections"]["b"] == {"offtopic_refused": 0.5}


TOWNS = ("Arden", "Brill", "Corvo", "Dunmore", "Elstow", "Farrow", "Gisla", "Hexam", "Ilford", "Jarrow")
BUILDINGS = ("tower", "bridge", "mill", "chapel", "lighthouse", "granary", "aqueduct", "belfry", "gatehouse", "kiln")


def test_each_question_is_asked_again_of_an_index_without_the_document_that_answers_it(tmp_path):
    from qa.config import Settings
    from qa.embedding.models import load_embedder
    from qa.training import answers

    corpus = tmp_path / "towns" / "corpus"
    corpus.mkdir(parents=True)
    questions = []
    for i, (town, building) in enumerate(zip(TOWNS, BUILDINGS, strict=True)):
        text = f"# {town}\n\nThe {building} of {town} stands {101 + 7 * i} metres tall above the market square.\n"
        (corpus / f"town-{i}.md").write_text(text, encoding="utf-8")
        questions.append({"question": f"How tall is the {building} of {town}?", "answers": [f"{101 + 7 * i} metres"]})
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "unused", model="hash", chunk_size=48, chunk_overlap=8)
    embedder = load_embedder(settings.model, settings.backend)
    cache = tmp_path / "cache"
    engine = answers.open_collection(corpus, cache, settings, embedder)
    asked = answers.gather(engine, "towns", questions, True, 1.0)
    assert all(item.passage_labels.any() for item in asked)

    near = answers.withheld("towns", corpus, cache, settings, embedder, questions, asked)
    assert [item.question for item in near] == [q["question"] for q in questions]
    for i, item in enumerate(near):
        assert (item.collection, item.answerable, item.weight) == (
            "towns (document withheld)",
            False,
            answers.WITHHELD_WEIGHT,
        )
        assert {c.doc_id for c in item.candidates} == {f"town-{j}" for j in range(len(TOWNS)) if j != i}
        assert not item.passage_labels.any()
    again = answers.open_collection(corpus, cache, settings, embedder)  # the cached index is untouched
    assert len(again.documents()) == len(TOWNS)

    (corpus / "town-9.md").unlink()  # too few documents to withhold one
    small = answers.open_collection(corpus, cache, settings, embedder)
    assert answers.withheld("towns", corpus, cache, settings, embedder, questions[:9], asked[:9]) == []
    assert len(small.documents()) == len(TOWNS) - 1
