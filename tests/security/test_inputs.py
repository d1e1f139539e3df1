"""Issue 38, finding 6 (and 8): odd input is a 400 in JSON (REST), a tool error with its message
(MCP), a message in the chat; never a 500. Secrets never appear in errors."""

from __future__ import annotations

import asyncio
import json

import pytest

from qa.engine import open_index
from qa.errors import QAError
from qa.web.api import MOUNT, create_api
from qa.web.service import CorpusService
from tests.web_helpers import web_settings

testclient = pytest.importorskip("fastapi.testclient")
mcp = pytest.importorskip("mcp")

SURROGATE = "\ud800 russia"
QUESTION = "What did Russia deploy to the Kuril islands?"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return open_index(settings=web_settings(tmp_path_factory.mktemp("inputs")))


@pytest.fixture(scope="module")
def client(engine):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount(MOUNT, app=create_api(CorpusService(engine)))])
    with testclient.TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _raw(body: dict) -> bytes:
    """JSON with lone surrogates written as \\ud800 escapes, as a hostile client sends them."""
    return json.dumps(body).encode("ascii")


BAD_ASKS = {
    "question": {"question": SURROGATE},
    "history": {"question": QUESTION, "history": [SURROGATE]},
    "author": {"question": QUESTION, "author": SURROGATE},
    "doc": {"question": QUESTION, "doc": [SURROGATE]},
    "date": {"question": QUESTION, "date_from": "\ud800"},
    "long author": {"question": QUESTION, "author": "a" * 50_001},
    "long doc": {"question": QUESTION, "doc": "d" * 50_001},
    "k as text": {"question": QUESTION, "k": "\ud800"},
}


@pytest.mark.parametrize("name", list(BAD_ASKS))
def test_rest_odd_input_is_a_400_in_json(client, name):
    response = client.post("/api/v1/ask", content=_raw(BAD_ASKS[name]), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error and "went wrong" not in error


@pytest.mark.parametrize("doc_id", ["%ED%A0%80", "\ud800".encode("utf-8", "surrogatepass").hex(), "x" * 5000])
def test_rest_odd_document_ids(client, doc_id):
    response = client.get(f"/api/v1/documents/{doc_id}")
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]


def test_the_connection_keeps_working_after_bad_requests(client):
    for body in BAD_ASKS.values():
        client.post("/api/v1/ask", content=_raw(body), headers={"content-type": "application/json"})
    assert client.post("/api/v1/ask", json={"question": QUESTION}).status_code == 200


def _mcp_call(engine, tool: str, arguments: dict):
    from qa.web.mcp_server import create_mcp

    async def run():
        async with mcp.Client(create_mcp(CorpusService(engine))) as session:
            return await session.call_tool(tool, arguments)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("ask", {"question": SURROGATE}, "the question is not valid text"),
        ("ask", {"question": QUESTION, "author": SURROGATE}, "the author filter is not valid text"),
        ("ask", {"question": QUESTION, "history": [SURROGATE]}, "history[0]"),
        ("ask", {"question": QUESTION, "author": "a" * 50_001}, "the author filter is too long"),
        ("read_document", {"doc_id": SURROGATE}, "the document id is not valid text"),
    ],
)
def test_mcp_odd_input_is_a_tool_error_with_its_message(engine, tool, arguments, message):
    result = _mcp_call(engine, tool, arguments)
    assert result.is_error
    text = result.content[0].text
    assert message in text, text
    assert text.strip() != f"Error executing tool {tool}"


def test_mcp_a_crash_is_a_tool_error_that_says_so(engine, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(CorpusService, "documents", broken)
    result = _mcp_call(engine, "list_documents", {})
    assert result.is_error and "logged on the server" in result.content[0].text
    assert "disk on fire" not in result.content[0].text


def test_chat_odd_input_is_a_message(engine):
    from qa.web.app import ChatHandlers

    handlers = ChatHandlers(engine)
    for question, author in ((SURROGATE, ""), (QUESTION, SURROGATE), (QUESTION, "a" * 50_001)):
        history, *_ = handlers.respond(question, [], None, 5, "hybrid", [], author)
        assert "qa-error" in history[-1]["content"] and "went wrong" not in history[-1]["content"]


# -- finding 8: a DSN's password is never printed ------------------------------------------------
@pytest.mark.parametrize(
    "dsn",
    [
        "hunter2secret host=127.0.0.1 dbname=qa",
        "host=127.0.0.1 port=notaport password=hunter2secret",
        "postgresql://qa:hunter2secret@[bad/qa",
        "postgresql://qa:hunter2secret@127.0.0.1:1/qa?sslmode=disable",
        "host=127.0.0.1 port=1 password='hunter2secret with spaces' connect_timeout=1",
    ],
)
def test_a_malformed_or_unreachable_dsn_never_shows_its_password(dsn):
    pytest.importorskip("psycopg")
    from qa.storage.postgres.store import PostgresStore

    with pytest.raises(QAError) as caught:
        PostgresStore(dsn, "qa").connect()
    assert "hunter2secret" not in str(caught.value)
    assert "PostgreSQL" in str(caught.value)
