"""The REST API in process (FastAPI's TestClient, hash model): answers as `qa ask --json`,
follow-ups through `history`, documents and spans, every bad input's status and message, the
optional token, and the OpenAPI description (with nothing of the analysts' Index tab)."""

from __future__ import annotations

import json
import logging

import pytest

from qa.conversation import Conversation
from qa.engine import open_index
from qa.errors import IndexCorruptError
from qa.web import schemas
from qa.web.api import MAX_BODY_BYTES, MOUNT, create_api
from qa.web.service import CorpusService, with_links
from tests.web_helpers import web_settings

testclient = pytest.importorskip("fastapi.testclient")

QUESTION = "What did Russia deploy to the Kuril islands?"
TOKEN = "test-token-0123456789abcdef"
SUBFOLDER_DOC = "# Sakhalin gas\n\nSakhalin LNG exports to Japan grew in 2019.\n"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    settings = web_settings(folder)
    (settings.corpus_dir / "notes").mkdir()
    (settings.corpus_dir / "notes" / "sakhalin.md").write_text(SUBFOLDER_DOC, encoding="utf-8")
    return open_index(settings=settings)


def _client(service: CorpusService, token: str | None = None):
    """The API mounted at /api, as the server mounts it (beside the chat)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount(MOUNT, app=create_api(service, token))])
    return testclient.TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(engine):
    with _client(CorpusService(engine)) as client:
        yield client


# -- answers ----------------------------------------------------------------------------------
def test_ask_returns_the_cli_json_with_checkable_citations(client, engine):
    response = client.post("/api/v1/ask", json={"question": QUESTION, "k": 3})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    answer = response.json()
    # (with each passage's link to its original file)
    assert answer == with_links(engine.ask(QUESTION, k=3).to_dict())
    assert answer["passages"] and "[1]" in answer["answer"]
    # The documented schema is the real one, field for field.
    assert set(answer) == set(schemas.Answer.model_fields)
    for passage in answer["passages"]:
        assert set(passage) == set(schemas.Passage.model_fields)
        assert set(passage["highlight"]) == set(schemas.Highlight.model_fields)
        span = client.get(
            f"/api/v1/documents/{passage['doc_id']}", params={"start": passage["start"], "end": passage["end"]}
        )
        assert span.status_code == 200 and span.json()["text"] == passage["text"]
        highlight = passage["highlight"]
        assert (
            passage["text"][highlight["start"] - passage["start"] : highlight["end"] - passage["start"]]
            == (highlight["text"])
        )


def test_ask_json_is_what_qa_ask_json_prints(client, engine, capsys, monkeypatch):
    from qa.cli import main

    monkeypatch.setenv("QA_MODEL", "hash")
    settings = engine.settings
    argv = ["ask", "--json", "-k", "2", "--mode", "lexical", "--corpus", str(settings.corpus_dir)]
    monkeypatch.setenv("QA_CHUNK_SIZE", str(settings.chunk_size))
    monkeypatch.setenv("QA_CHUNK_OVERLAP", str(settings.chunk_overlap))
    monkeypatch.setenv("QA_MIN_RELEVANCE", str(settings.min_relevance))
    assert main([*argv, "--index", str(settings.index_dir), QUESTION]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert client.post("/api/v1/ask", json={"question": QUESTION, "k": 2, "mode": "lexical"}).json() == with_links(
        printed
    )


def test_history_makes_follow_ups_work_as_in_the_chat(client, engine):
    follow_up = "and how did Japan respond?"
    alone = client.post("/api/v1/ask", json={"question": follow_up}).json()
    assert alone["searched_query"] == follow_up
    answer = client.post("/api/v1/ask", json={"question": follow_up, "history": [QUESTION]}).json()
    chat = Conversation()
    chat.ask(engine, QUESTION)
    assert answer == with_links(chat.ask(engine, follow_up).to_dict())
    assert answer["searched_query"].startswith("how did Japan respond?") and "Kuril" in answer["searched_query"]


@pytest.mark.parametrize(
    ("question", "filters", "source"),
    [
        ("islands Kuril deployed Abe Nagato", {"doc": "tokyo"}, "tokyo.md"),
        ("islands Kuril deployed Abe Nagato", {"doc": ["tokyo", "kurils"], "author": "petrova"}, "kurils.md"),
        ("garrison winter exercise Iturup Kuril deployed", {"date_from": "2021"}, "planted.md"),
        ("islands Kuril deployed Abe Nagato", {"date_to": "2016-12"}, "tokyo.md"),
    ],
)
def test_filters(client, question, filters, source):
    answer = client.post("/api/v1/ask", json={"question": question, "k": 10, **filters})
    assert answer.status_code == 200
    assert {p["source"] for p in answer.json()["passages"]} == {source}


def test_nothing_found_is_an_answer_without_passages(client):
    # No content word: nothing to look for, whatever the relevance gate's setting.
    answer = client.post("/api/v1/ask", json={"question": "what is it?"}).json()
    assert answer["passages"] == [] and answer["answer"]


def test_small_talk_is_replied_to_and_history_skips_it(client, engine):
    from qa.answering.smalltalk import REPLIES

    thanks = client.post("/api/v1/ask", json={"question": "Thanks, that's all!"}).json()
    assert thanks["passages"] == [] and thanks["answer"] == REPLIES["thanks"]
    follow_up = "and how did Japan respond?"
    answer = client.post("/api/v1/ask", json={"question": follow_up, "history": [QUESTION, "thanks!"]}).json()
    assert "Kuril" in answer["searched_query"] and "thanks" not in answer["searched_query"]


# -- documents --------------------------------------------------------------------------------
def test_documents_list_as_qa_docs_json(client, engine):
    listed = client.get("/api/v1/documents").json()
    assert listed == [d.to_dict() for d in engine.documents()]
    assert {d["doc_id"] for d in listed} == {"fishing", "kurils", "planted", "tokyo", "notes/sakhalin"}
    assert all(set(d) == set(schemas.DocumentInfo.model_fields) for d in listed)


def test_a_document_whole_by_id_or_path_and_a_span(client, engine):
    doc = engine.document("tokyo")
    whole = client.get("/api/v1/documents/tokyo").json()
    assert set(whole) == set(schemas.Document.model_fields)
    assert (whole["text"], whole["start"], whole["end"], whole["length"]) == (doc.text, 0, len(doc.text), len(doc.text))
    assert (whole["title"], whole["author"], whole["date"]) == (
        "東京の外交 — Tokyo's diplomacy",
        "Kenji Watanabe",
        "2016-11-20",
    )
    assert client.get("/api/v1/documents/notes/sakhalin").json()["source"] == "notes/sakhalin.md"
    assert client.get("/api/v1/documents/notes/sakhalin.md").json()["doc_id"] == "notes/sakhalin"
    start = doc.text.index("Café")
    span = client.get("/api/v1/documents/tokyo", params={"start": start, "end": start + 15}).json()
    assert span["text"] == "Café diplomacy,"
    assert client.get("/api/v1/documents/tokyo", params={"start": start}).json()["text"] == doc.text[start:]
    assert client.get("/api/v1/documents/tokyo", params={"end": 3}).json()["text"] == doc.text[:3]


# -- bad input --------------------------------------------------------------------------------
BAD_ASKS = [
    ({"question": ""}, "the question is empty"),
    ({"question": " \x00\x07 "}, "the question is empty"),
    ({}, "question is required"),
    ({"quesiton": QUESTION}, "unknown field 'quesiton'"),
    ({"question": 42}, "question: Input should be a valid string"),
    ({"question": QUESTION, "mode": "bogus"}, "mode: Input should be 'hybrid', 'dense' or 'lexical'"),
    ({"question": QUESTION, "k": 0}, "k: Input should be greater than or equal to 1 (got 0)"),
    ({"question": QUESTION, "k": 51}, "k: Input should be less than or equal to 50 (got 51)"),
    ({"question": QUESTION, "k": "5"}, "k: Input should be a valid integer"),
    ({"question": QUESTION, "k": 2.5}, "k: Input should be a valid integer"),
    ({"question": QUESTION, "k": True}, "k: Input should be a valid integer"),
    ({"question": QUESTION, "date_from": "2020-13"}, "date_from must look like 2020, 2020-12 or 2020-12-08"),
    ({"question": QUESTION, "date_to": "last year"}, "date_to must look like 2020"),
    ({"question": QUESTION, "doc": 7}, "doc"),
    ({"question": QUESTION, "history": "what did Russia deploy?"}, "history: Input should be a valid list"),
    ({"question": QUESTION, "history": [QUESTION, 3]}, "history.1: Input should be a valid string"),
    ({"question": QUESTION, "history": [QUESTION, "  "]}, "history[1]: the question is empty"),
    ({"question": QUESTION, "history": ["q"] * 101}, "history: List should have at most 100 items"),
]


@pytest.mark.parametrize(("body", "message"), BAD_ASKS)
def test_bad_asks_are_400_with_a_message(client, body, message):
    response = client.post("/api/v1/ask", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"], response.json()
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "the request body is not valid JSON"), ("[1, 2]", "the request body must be a JSON object")],
)
def test_a_body_that_is_not_an_object(client, content, message):
    response = client.post("/api/v1/ask", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/v1/documents/no-such-doc", {}, 404, "no document 'no-such-doc' in the index"),
        ("/api/v1/documents/tokyo", {"start": 5, "end": 10**6}, 400, "span 5:1000000 is outside the document 'tokyo'"),
        ("/api/v1/documents/tokyo", {"start": 9, "end": 3}, 400, "span 9:3 is outside"),
        ("/api/v1/documents/tokyo", {"start": -1}, 400, "span -1:"),
        ("/api/v1/documents/tokyo", {"start": "abc"}, 400, "start: Input should be a valid integer"),
        ("/api/v1/nothing-here", {}, 404, "no endpoint /api/v1/nothing-here; the API is described at /api/v1/docs"),
        ("/api/v2/ask", {}, 404, "no endpoint /api/v2/ask"),
        ("/api/v1/ask", {}, 405, "GET is not allowed on /api/v1/ask"),
    ],
)
def test_bad_reads(client, path, params, status, message):
    response = client.get(path, params=params)
    assert response.status_code == status and message in response.json()["error"], response.text


def test_bodies_over_the_limit_are_413_whether_their_length_is_declared_or_not(client):
    big = json.dumps({"question": "crab " * (MAX_BODY_BYTES // 5)}).encode()
    declared = client.post("/api/v1/ask", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json() == {"error": f"the request body is larger than {MAX_BODY_BYTES} bytes"}

    def chunks():
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    streamed = client.post("/api/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "larger than" in streamed.json()["error"]
    # A long question within the limit is cut, with a note, as `qa ask` does.
    long = client.post("/api/v1/ask", json={"question": "crab quotas " * 1000}).json()
    assert long["notes"] == ["the question was cut to its first 2000 characters"]


# -- the index's health -----------------------------------------------------------------------
def test_health_reports_the_index(client, engine):
    health = client.get("/api/v1/health")
    assert health.status_code == 200
    stats = engine.stats()
    assert health.json() == {"status": "ok", **stats}
    assert set(health.json()) == set(schemas.Health.model_fields)
    assert stats["documents"] == 5 and stats["chunks"] > 0 and stats["model"] == "hash"


def test_503_while_no_index_can_answer(tmp_path):
    engine = open_index(settings=web_settings(tmp_path))
    service = CorpusService(engine)
    with _client(service) as client:
        assert client.get("/api/v1/health").status_code == 200
        engine.snapshot.close()  # the catalog can no longer be read
        health = client.get("/api/v1/health")
        assert health.status_code == 503 and health.json()["error"].startswith("the index cannot answer")

    def corrupt(*args, **kwargs):
        raise IndexCorruptError("the index in index/ cannot be read (catalog.sqlite); rebuild it: qa index --rebuild")

    engine.ask = corrupt
    with _client(service) as client:
        response = client.post("/api/v1/ask", json={"question": QUESTION})
    assert response.status_code == 503 and "qa index --rebuild" in response.json()["error"]


def test_an_empty_index_is_not_ready(tmp_path):
    from qa.config import Settings

    (tmp_path / "corpus").mkdir()
    engine = open_index(settings=Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", model="hash"))
    with _client(CorpusService(engine)) as client:
        health = client.get("/api/v1/health")
    assert health.status_code == 503 and "the index is empty" in health.json()["error"]


def test_an_unexpected_error_is_500_and_logged_not_shown(engine, caplog, monkeypatch):
    service = CorpusService(engine)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "documents", broken)
    with caplog.at_level(logging.ERROR, logger="qa.web.api"), _client(service) as client:
        response = client.get("/api/v1/documents")
    assert response.status_code == 500
    assert "disk on fire" not in response.text and "logged on the server" in response.json()["error"]
    assert "disk on fire" in caplog.text


# -- the token --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "this server needs a token: send the header 'Authorization: Bearer <token>'"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, "the token is not this server's QA_API_TOKEN"),
        ({"Authorization": f"Basic {TOKEN}"}, "must be 'Bearer <token>'"),
        ({"Authorization": "Bearer"}, "the token is not"),
    ],
)
def test_with_a_token_every_endpoint_needs_it(engine, headers, message):
    with _client(CorpusService(engine), TOKEN) as client:
        for method, path in (
            ("POST", "/api/v1/ask"),
            ("GET", "/api/v1/documents"),
            ("GET", "/api/v1/documents/tokyo"),
            ("GET", "/api/v1/health"),
            ("POST", "/api/v1/feedback"),
        ):
            body = {"question": QUESTION, "verdict": "good"} if method == "POST" else None
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert message in response.json()["error"] and response.headers["www-authenticate"] == "Bearer"


def test_the_right_token_answers_and_the_docs_stay_readable(engine):
    with _client(CorpusService(engine), TOKEN) as client:
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/api/v1/ask", json={"question": QUESTION}, headers=good).json()["passages"]
        assert client.get("/api/v1/health", headers={"authorization": f"bearer  {TOKEN} "}).status_code == 200
        assert client.get("/api/v1/docs").status_code == 200
        schema = client.get("/api/v1/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "QA_API_TOKEN" in schema["info"]["description"]


# -- the description --------------------------------------------------------------------------
def test_openapi_lists_the_read_only_endpoints_and_feedback_and_nothing_else(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["servers"] == [{"url": "/api"}]
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == {
        ("/v1/ask", "post"),
        ("/v1/feedback", "post"),
        ("/v1/documents", "get"),
        ("/v1/documents/{doc_id}", "get"),
        ("/v1/health", "get"),
    }
    ask = schema["paths"]["/v1/ask"]["post"]
    assert {"200", "400", "413", "503"} <= set(ask["responses"])
    assert "history" in schema["components"]["schemas"]["AskRequest"]["properties"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text
    # Nothing that writes: no upload, no index update, whatever the method.
    for path in ("/api/v1/index", "/api/v1/upload", "/api/v1/documents"):
        for method in ("POST", "PUT", "DELETE"):
            assert client.request(method, path).status_code in (404, 405)


def test_questions_wait_for_a_slot_without_holding_threads(engine):
    """With concurrency 2, six questions at once: never more than 2 answered, and the waiting
    ones take no worker thread (the chat's handlers share the pool)."""
    import threading
    import time

    import anyio
    import anyio.to_thread

    service = CorpusService(engine, concurrency=2)
    running, most, threads_used = 0, 0, []
    lock = threading.Lock()
    real_ask = service.ask

    def slow_ask(*args, **kwargs):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.15)
        with lock:
            running -= 1
        return real_ask(*args, **kwargs)

    service.ask = slow_ask

    async def main():
        async def watch():
            for _ in range(20):
                threads_used.append(anyio.to_thread.current_default_thread_limiter().borrowed_tokens)
                await anyio.sleep(0.02)

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            for _ in range(6):
                group.start_soon(service.ask_async, QUESTION)

    anyio.run(main)
    assert most == 2
    assert max(threads_used) <= 2


# -- feedback ---------------------------------------------------------------------------------
def test_feedback_keeps_what_was_shown_and_asked_questions_are_recorded(client, engine):
    before = len(engine.feedback.records())
    answer = client.post("/api/v1/ask", json={"question": QUESTION, "k": 3}).json()
    body = {
        "question": answer["question"],
        "searched_query": answer["searched_query"],
        "answer": answer["answer"],
        "passages": answer["passages"],  # whole passages: only doc_id, start, end and rank are kept
        "verdict": "answered",
        "rank": 2,
    }
    response = client.post("/api/v1/feedback", json=body)
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["kind"] == "answered" and record["rank"] == 2 and record["channel"] == "api"
    assert record["index_version"] == engine.reader.name
    assert record["passages"] == [{k: p[k] for k in ("doc_id", "start", "end", "rank")} for p in answer["passages"]]
    kept = engine.feedback.records()[before:]
    assert [r.kind for r in kept] == ["asked", "answered"] and kept[0].passages == kept[1].passages
    assert kept[1].id == record["id"]
    assert client.post("/api/v1/feedback", json={"question": QUESTION, "verdict": "bad"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"question": QUESTION}, "verdict is required"),
        ({"question": QUESTION, "verdict": "meh"}, "verdict: Input should be 'good', 'bad' or 'answered'"),
        ({"question": " ", "verdict": "bad"}, "feedback needs the question"),
        ({"question": QUESTION, "verdict": "answered"}, "'answered' needs the rank of a shown passage"),
        ({"question": QUESTION, "verdict": "good", "rank": 1}, "a rank goes only with the verdict 'answered'"),
        (
            {"question": QUESTION, "verdict": "bad", "passages": [{"doc_id": "nope", "start": 0, "end": 5, "rank": 1}]},
            "passages[0]: there is no document 'nope' in the index",
        ),
        (
            {
                "question": QUESTION,
                "verdict": "bad",
                "passages": [{"doc_id": "tokyo", "start": 0, "end": 10**6, "rank": 1}],
            },
            "passages[0]: span 0:1000000 is outside the document 'tokyo'",
        ),
        (
            {
                "question": QUESTION,
                "verdict": "bad",
                "passages": [{"doc_id": "tokyo", "start": 5, "end": 1, "rank": 1}],
            },
            "passages[0]: span 5:1 is outside",
        ),
        ('{"question": "\\ud800 x", "verdict": "bad"}', "lone UTF-16 surrogate"),
        ({"question": QUESTION, "verdict": "bad", "who": "me"}, "unknown field 'who'"),
    ],
)
def test_bad_feedback_is_400_with_a_message(client, engine, body, message):
    before = len(engine.feedback.records())
    if isinstance(body, str):  # a lone surrogate, escaped in the JSON as a hostile client sends it
        response = client.post("/api/v1/feedback", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/api/v1/feedback", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert len(engine.feedback.records()) == before


def test_feedback_off_is_404_and_records_nothing(tmp_path):
    engine = open_index(settings=web_settings(tmp_path).with_(feedback="off"))
    with _client(CorpusService(engine)) as client:
        assert client.post("/api/v1/ask", json={"question": QUESTION}).status_code == 200
        response = client.post("/api/v1/feedback", json={"question": QUESTION, "verdict": "good"})
    assert response.status_code == 404 and "QA_FEEDBACK=off" in response.json()["error"]
    assert not (tmp_path / "index" / "feedback.sqlite").exists()
