"""The real bundled model on the real corpus (slower: loads the model once per module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from qa.config import Settings
from qa.engine import open_index
from qa.errors import IndexMismatchError
from qa.ingest.indexer import update_index
from tests.conftest import REPO

pytestmark = pytest.mark.integration

THIRD = """---
title: A test entry on coastal defences
author: Test Author
date: 2021-03-01
---

In February the Pacific Fleet moved Bastion coastal missile batteries to Matua, an uninhabited island
in the middle of the chain, and began rebuilding the old Japanese airfield there.
"""


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    shutil.copytree(REPO / "corpus", root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index")
    engine = open_index(settings=settings)
    return settings, engine


def test_kurils_question_names_both_deployments(real):
    _, engine = real
    answer = engine.ask("what did Russia deploy to the Kurils?")
    texts = " ".join(p.text for p in answer.passages)
    assert len(answer.passages) == 5
    assert "S-300V4" in texts
    assert "anti-ship missiles" in texts
    for p in answer.passages:
        doc = engine.document(p.doc_id)
        assert doc.text[p.start : p.end] == p.text
        assert doc.text[p.highlight.start : p.highlight.end] == p.highlight.text
    assert answer.answer.count("[") >= 1


def test_exact_spans_of_every_chunk(real):
    _, engine = real
    catalog = engine.snapshot.catalog
    ids, _ = catalog.all_chunks()
    max_tokens = engine.embedder.max_tokens
    paragraph_size = engine.settings.paragraph_size
    for record in catalog.chunk_records(ids).values():
        text = catalog.document(record.chunk.doc_id).text
        chunk = record.chunk
        assert text[chunk.start : chunk.end] == chunk.text
        tokens = engine.embedder.count_tokens(chunk.text)
        assert tokens <= min(max_tokens, paragraph_size)
        if tokens > 128:  # longer than a chunk: only a whole paragraph, kept whole
            assert "\n\n" not in chunk.text
            assert text[max(0, chunk.start - 2) : chunk.start] in ("\n\n", "")
            assert text[chunk.end : chunk.end + 2] in ("\n\n", "\n", "")


def test_seed_metadata(real):
    _, engine = real
    docs = {d.doc_id: d for d in engine.documents()}
    tangled = docs["tangled-web-north-asian-strategic-relations"]
    assert tangled.author == "William Baulch"
    assert tangled.publisher == "Young Australians in International Affairs"
    journal = docs["russia-japan-journal-01"]
    assert journal.title == "An ongoing journal on Russia-Japan relations #1"
    assert journal.date == "" and journal.author == ""  # not stated by the text: left empty
    text = engine.document(tangled.doc_id).text
    assert "top of page" not in text and "Image credit" not in text and "bottom of page" not in text


def test_unrelated_questions_say_nothing_found(real):
    _, engine = real
    for question in (
        "What is the recipe for chocolate cake?",
        "what did Russia eat for breakfast?",
        "How do transistors work?",
    ):
        assert engine.ask(question).passages == (), question


def test_add_then_delete_a_third_document(real):
    settings, engine = real
    path = settings.corpus_dir / "coastal-defences.md"
    path.write_text(THIRD, encoding="utf-8")
    try:
        report = update_index(settings)
        assert report.added == ["coastal-defences.md"]
        assert len(report.unchanged) == 2
        assert engine.refresh()  # the open engine switches to the new snapshot
        assert report.chunks_embedded == len(engine.snapshot.catalog.chunk_ids_of("coastal-defences")) >= 1
        answer = engine.ask("Which missile batteries were moved to Matua?")
        assert answer.passages[0].doc_id == "coastal-defences"
        assert "Bastion" in answer.passages[0].text
    finally:
        path.unlink()
    report = update_index(settings)
    assert report.removed == ["coastal-defences.md"]
    answer = engine.ask("Which missile batteries were moved to Matua?")
    assert all(p.doc_id != "coastal-defences" for p in answer.passages)


def test_index_of_the_real_model_refuses_another(real):
    settings, _ = real
    with pytest.raises(IndexMismatchError, match="all-MiniLM-L6-v2"):
        open_index(settings=settings.with_(model="hash"))


def test_console_script_ask_json(real):
    settings, _ = real
    exe = shutil.which("qa", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "qa"]
    env = {**os.environ, "QA_CORPUS": str(settings.corpus_dir), "QA_INDEX": str(settings.index_dir)}

    def run(*args: str) -> str:
        return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=300, check=True).stdout

    data = json.loads(run("ask", "what did Russia deploy to the Kurils?", "--json"))
    assert data["passages"] and data["passages"][0]["source"].endswith(".md")
    first = data["passages"][0]
    shown = run("show", first["doc_id"], "--span", f"{first['start']}:{first['end']}")
    assert shown.rstrip("\n") == first["text"].rstrip("\n")


def test_the_rest_api_and_a_follow_up_on_the_real_corpus(real):
    """The issue's acceptance question through the REST API (in process), then its follow-up."""
    testclient = pytest.importorskip("fastapi.testclient")
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from qa.web.api import MOUNT, create_api
    from qa.web.service import CorpusService

    _, engine = real
    app = Starlette(routes=[Mount(MOUNT, app=create_api(CorpusService(engine)))])
    with testclient.TestClient(app) as client:
        question = "what did Russia deploy to the Kurils?"
        answer = client.post("/api/v1/ask", json={"question": question}).json()
        assert answer["passages"] and "S-300V4" in " ".join(p["text"] for p in answer["passages"])
        for p in answer["passages"]:
            span = client.get(f"/api/v1/documents/{p['doc_id']}", params={"start": p["start"], "end": p["end"]})
            assert span.json()["text"] == p["text"]
        follow = client.post("/api/v1/ask", json={"question": "and how did Japan respond?", "history": [question]})
        searched = follow.json()["searched_query"]
        assert searched.startswith("how did Japan respond?") and "Kurils" in searched
        assert follow.json()["passages"]


def test_postgres_gives_the_same_cited_passages_as_the_local_store(real, pg_dsn, pg_schema, tmp_path):
    """The issue's test of done: `QA_STORE=postgres qa index`, then `qa ask … --json`, cites what local does."""
    settings, _ = real
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(QA_CORPUS=str(settings.corpus_dir), QA_INDEX=str(settings.index_dir), PYTHONPATH=str(REPO))
    question = ["ask", "what did Russia deploy to the Kurils?", "--json"]

    def qa(*argv: str, **extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "qa", *argv],
            cwd=REPO,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    pg = {"QA_STORE": "postgres", "QA_PG_DSN": pg_dsn, "QA_PG_SCHEMA": pg_schema}
    qa("index", "--quiet", **pg)
    local, postgres = json.loads(qa(*question)), json.loads(qa(*question, **pg))
    cited = [[(p["doc_id"], p["start"], p["end"], p["highlight"]) for p in a["passages"]] for a in (local, postgres)]
    assert cited[0] == cited[1] and len(cited[0]) == 5
    assert local["answer"] == postgres["answer"]
    assert [p["score"] for p in local["passages"]] == pytest.approx(
        [p["score"] for p in postgres["passages"]], abs=1e-4
    )


def test_the_headline_answer_names_both_deployments_with_the_phrase_marked(real):
    from qa.answering.answer import phrase_ranges

    _, engine = real
    answer = engine.ask("What did Russia deploy to the Kurils?")
    assert "S-300V4" in answer.answer and "anti-ship missiles" in answer.answer
    marked = [answer.answer[s:e] for s, e in phrase_ranges(answer)]
    assert marked and all(m in answer.answer for m in marked)
    top = answer.passages[0].highlight
    assert (
        top.answer is not None
        and top.text[top.answer.start - top.start : top.answer.end - top.start] == top.answer.text
    )


def test_on_natural_questions_the_fitted_scorer_is_not_below_the_cosine_alone(real):
    """Issue 33's check: on questions typed the way people type them, the fitted sentence scorer
    picks passage [1]'s highlight at least as well as the bi-encoder cosine alone does."""
    from qa.evaluation.questions import parse_questions
    from qa.training.combination import COSINE_ALONE, ask_all, figures, judged

    _, engine = real
    lines = (REPO / "tests" / "data" / "natural_seed_questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions, targets = judged(engine, parse_questions(lines, "natural seed"))
    asked = ask_all(engine, questions, targets)
    assert len(asked) >= 50
    assert figures(asked, None, None)["highlight"] >= figures(asked, None, COSINE_ALONE)["highlight"]
