"""The labelled seed question set with the real bundled model on the real corpus."""

from __future__ import annotations

import shutil

import pytest

from qa import evaluation as ev
from qa.config import Settings
from qa.engine import open_index
from qa.evaluation.questions import load_questions
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SEED = REPO / "tests" / "data" / "seed_questions.jsonl"


@pytest.fixture(scope="module")
def seed_eval(tmp_path_factory):
    root = tmp_path_factory.mktemp("seed")
    shutil.copytree(REPO / "corpus", root / "corpus")
    engine = open_index(settings=Settings(corpus_dir=root / "corpus", index_dir=root / "index"))
    return ev.evaluate_questions(engine, load_questions(SEED), SEED.name)


def test_seed_set_is_large_enough_and_fully_judged(seed_eval):
    assert len(seed_eval.queries) >= 25
    assert seed_eval.skipped == []  # every answer string occurs in the corpus
    docs = {p.split(":")[0] for rel in seed_eval.qrels.values() for p in rel}
    assert docs == {"russia-japan-journal-01", "tangled-web-north-asian-strategic-relations"}


def test_hybrid_finds_every_answer_in_the_top_5(seed_eval):
    hits = seed_eval.per_query["hybrid"]["hit@5"]
    missed = {qid: seed_eval.queries[qid] for qid, hit in hits.items() if hit < 1}
    assert not missed, f"hybrid missed the answer in its top 5 for: {missed}"


def test_hybrid_is_at_least_as_good_as_each_retriever_alone(seed_eval):
    modes = seed_eval.modes
    for metric in ("hit@5", "recall@10"):
        assert modes["hybrid"][metric] >= max(modes["lexical"][metric], modes["dense"][metric]) - 0.05, metric
