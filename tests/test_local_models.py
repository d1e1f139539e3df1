"""`qa fit feedback`: the pulled refit on a corpus's labelled questions, and local-models.json beside
the index: used for that index only, through rebuilds, ignored with a warning when it does not fit."""

from __future__ import annotations

import dataclasses
import json
import logging
import math

import numpy as np
import pytest

from qa.answering.local import FILE_NAME, LocalModels, local_path, shipped_hash, write_local
from qa.answering.scorer import load_models, models_file
from qa.config import Settings
from qa.engine import open_index
from qa.errors import QAError
from qa.evaluation.questions import Targets
from qa.linear import LinearModel
from qa.training.feedback import MIN_QUESTIONS, choose_pull, fit_pulled, holds

QUESTION = "What did Russia deploy to the Kuril islands?"
NAMES = ("signal", "noise", "length")


def synthetic(n: int, seed: int, random_labels: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """Questions of 6 candidates each; the answer is the candidate with the largest first feature."""
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(n):
        rows = rng.normal(size=(6, 3))
        labels = np.zeros(6, dtype=bool)
        labels[rng.integers(6) if random_labels else int(np.argmax(rows[:, 0]))] = True
        groups.append((rows, labels))
    return groups


BASE = LinearModel(NAMES, np.zeros(3), np.ones(3), np.array([0.0, 0.5, 0.0]), 0.0)


def test_the_fit_moves_towards_the_labels_and_the_pull_keeps_few_examples_near_shipped():
    many = fit_pulled(synthetic(400, 1), BASE, strength=1.0)
    assert many.coef[0] > 2.0 and abs(many.coef[1]) < 0.2  # the signal learnt, the shipped noise weight unlearnt
    assert many.mean is BASE.mean and many.scale is BASE.scale  # in the shipped models' feature space
    three = synthetic(3, 2)
    pulled = np.abs(fit_pulled(three, BASE, strength=30.0).coef - BASE.coef).max()
    loose = np.abs(fit_pulled(three, BASE, strength=0.01).coef - BASE.coef).max()
    assert pulled < 0.15 and pulled < loose / 5
    assert fit_pulled(synthetic(400, 1), BASE, math.inf) is BASE
    assert fit_pulled([], BASE, 1.0) is BASE


def test_the_pull_is_chosen_by_cross_validation_and_noise_or_too_few_keep_the_shipped_weights():
    clear = choose_pull(synthetic(200, 3), BASE)
    assert clear.strength < math.inf and clear.model.coef[0] > 1.0
    assert clear.first_right[f"{clear.strength:g}"] > clear.first_right["shipped"] + 0.2
    # Labels that no feature predicts, over shipped weights that say as much: nothing to correct.
    right = dataclasses.replace(BASE, coef=np.zeros(3))
    noise = choose_pull(synthetic(200, 4, random_labels=True), right)
    assert noise.strength == math.inf and noise.model is right
    few = choose_pull(synthetic(MIN_QUESTIONS - 1, 5), BASE)
    assert few.strength == math.inf and few.to_dict()["pull"] is None


def test_a_chunk_holds_the_answer_when_half_of_it_lies_in_the_marked_passage():
    marked = Targets(contained={}, overlapped={"d": [(100, 300)]})
    assert holds(100, 200, "d", marked) and holds(150, 330, "d", marked)
    assert not holds(260, 400, "d", marked)  # a neighbour sharing the chunks' overlap
    assert not holds(100, 200, "other", marked)
    strings = Targets(contained={"d": [(120, 130)]}, overlapped={})
    assert holds(100, 200, "d", strings) and not holds(125, 200, "d", strings)
    assert holds(110, 150, "d", Targets({}, {"d": [(120, 130)]}))  # a short gold span: the sentence holding it


def reversed_passages(engine) -> LocalModels:
    """A correction that ranks passages the other way round: plainly visible in any answer."""
    shipped_file = models_file(engine.settings.sentence_vectors)
    passage = load_models(shipped_file).passage
    flipped = dataclasses.replace(passage, coef=-passage.coef)
    return LocalModels(None, flipped, shipped_hash(shipped_file), engine.embedder.cache_key, {"test": True})


def order(answer) -> list[tuple[str, int]]:
    return [(p.doc_id, p.start) for p in answer.passages]


def test_local_models_live_beside_the_index_are_used_for_it_only_and_survive_a_rebuild(settings, tmp_path):
    engine = open_index(settings=settings)
    shipped = order(engine.ask(QUESTION, k=5))
    assert len(shipped) > 1
    path = write_local(reversed_passages(engine), local_path(settings.index_dir))
    assert path == settings.index_dir / FILE_NAME and path.parent == settings.index_dir  # beside, not in a snapshot
    corrected = order(engine.ask(QUESTION, k=5))  # a running engine picks the file up
    assert corrected != shipped and sorted(corrected) == sorted(shipped)  # the same passages (the gate as before)
    assert engine.local_models() is not None

    other = open_index(settings=settings.with_(index_dir=tmp_path / "other-index"))
    assert order(other.ask(QUESTION, k=5)) == shipped and other.local_models() is None

    engine.update(rebuild=True)
    again = open_index(settings=settings)
    assert order(again.ask(QUESTION, k=5)) == corrected
    off = open_index(settings=settings.with_(local_models="off"))
    assert order(off.ask(QUESTION, k=5)) == shipped and off.local_models() is None
    with pytest.raises(QAError, match="QA_LOCAL_MODELS must be on or off"):
        Settings.from_env({"QA_LOCAL_MODELS": "maybe"})


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda data: "{ not json", "cannot read"),
        (lambda data: json.dumps({**data, "passage": {**data["passage"], "coef": [1.0]}}), "malformed"),
        (lambda data: json.dumps({**data, "format": 99}), "not a format-1 local models file"),
        (lambda data: json.dumps({**data, "shipped_models": "0" * 16}), "fitted over other answer models"),
        (lambda data: json.dumps({**data, "embedding_model": "another"}), "embedded with another"),
    ],
)
def test_a_local_models_file_that_does_not_fit_is_warned_of_once_and_the_shipped_models_answer(
    settings, caplog, spoil, message
):
    engine = open_index(settings=settings)
    shipped = order(engine.ask(QUESTION, k=5))
    path = write_local(reversed_passages(engine), local_path(settings.index_dir))
    path.write_text(spoil(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")
    fresh = open_index(settings=settings)
    with caplog.at_level(logging.WARNING, logger="qa"):
        assert order(fresh.ask(QUESTION, k=5)) == shipped
        assert order(fresh.ask(QUESTION, k=5)) == shipped
    warnings = [r.getMessage() for r in caplog.records if "own answer models are not used" in r.getMessage()]
    assert len(warnings) == 1 and message in warnings[0] and "qa fit feedback" in warnings[0]
    assert message in fresh._local_file.problem


def test_qa_fit_feedback_fits_on_the_index_feedback_and_writes_beside_it(settings, monkeypatch, capsys):
    from qa.cli import main
    from qa.conversation import Conversation
    from qa.feedback import record_verdict

    for name, value in {
        "QA_CORPUS": str(settings.corpus_dir),
        "QA_INDEX": str(settings.index_dir),
        "QA_MODEL": "hash",
        "QA_MIN_RELEVANCE": "0",
    }.items():
        monkeypatch.setenv(name, value)
    engine = open_index(settings=Settings.from_env())
    assert main(["fit", "feedback"]) == 1
    assert "no reader has marked a passage as the answer yet" in capsys.readouterr().err
    reader = Conversation()
    for question in (QUESTION, "How did Japan respond to the deployment?", "What do Japanese trawlers depend on?"):
        reader.ask(engine, question, k=3, use_context=False)
        record_verdict(engine, reader, len(reader.turns), "answered", rank=1, channel="web")
    assert main(["fit", "feedback", "--holdout", "0"]) == 0
    out = capsys.readouterr().out
    assert "3 labelled questions" in out and "kept as shipped" in out and f"wrote {settings.index_dir}" in out
    stored = json.loads((settings.index_dir / FILE_NAME).read_text(encoding="utf-8"))
    assert stored["passage"] is None and stored["fitted_on"]["questions"] >= 1  # too few to correct anything
    assert stored["fitted_on"]["index_version"] == engine.reader.name
    assert main(["fit", "feedback", "--holdout", "0.34", "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["held_out"] == 1 and set(outcome["differences"]) >= {"highlight", "hit@1"}
    assert outcome["differences"]["highlight"]["delta"] == 0.0  # nothing corrected: the same answers
    assert main(["fit", "feedback", "--holdout", "1.5"]) == 1
    assert "--holdout must be" in capsys.readouterr().err
