"""End to end: `qa serve` on a free local port with QA_API_TOKEN, its REST API asked with plain
HTTP and its MCP server with the official MCP Python client over streamable HTTP, beside the chat."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest

from tests.web_helpers import running_app, write_corpus

httpx = pytest.importorskip("httpx")
mcp = pytest.importorskip("mcp")

QUESTION = "What did Russia deploy to the Kuril islands?"
TOKEN = "e2e-token-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server-e2e")
    corpus, log = write_corpus(folder / "corpus"), folder / "serve.log"
    command = (sys.executable, "-m", "qa", "serve")
    with running_app(corpus, folder / "index", log, command=command, QA_API_TOKEN=TOKEN) as url:
        yield url.rstrip("/"), log


def test_serve_prints_where_everything_is(server):
    url, log = server
    printed = log.read_text()
    assert f"qa: chat      {url}/" in printed
    assert f"qa: REST API  {url}/api/v1  (docs: {url}/api/v1/docs;" in printed
    assert f"qa: MCP       {url}/mcp  (streamable HTTP; the same token)" in printed


def test_rest_api_answers_with_cited_passages_behind_the_token(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=60) as client:
        refused = client.post("/api/v1/ask", json={"question": QUESTION})
        assert refused.status_code == 401 and "needs a token" in refused.json()["error"]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        answer = client.post("/api/v1/ask", json={"question": QUESTION, "k": 3}, headers=auth).json()
        assert answer["passages"] and re.search(r"\[1\]", answer["answer"])
        for passage in answer["passages"]:
            params = {"start": passage["start"], "end": passage["end"]}
            span = client.get(f"/api/v1/documents/{passage['doc_id']}", params=params, headers=auth).json()
            assert span["text"] == passage["text"]
        assert client.get("/api/v1/health", headers=auth).json()["status"] == "ok"
        assert client.get("/api/v1/docs").status_code == 200
        # The chat is still there, without an Index tab.
        assert client.get("/").status_code == 200
        tabs = [c["props"].get("label") for c in client.get("/config").json()["components"] if c["type"] == "tabitem"]
        assert tabs == ["Chat"]


def test_mcp_client_lists_tools_asks_and_checks_citations(server):
    url, _ = server
    httpx2 = pytest.importorskip("httpx2")
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        async with http, mcp.Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            tools = await client.list_tools()
            result = await client.call_tool("ask", {"question": QUESTION, "k": 3})
            spans = [
                await client.call_tool("read_document", {"doc_id": p["doc_id"], "start": p["start"], "end": p["end"]})
                for p in result.structured_content["passages"]
            ]
            follow_up = await client.call_tool("ask", {"question": "and how did Japan respond?", "history": [QUESTION]})
            return tools, result, spans, follow_up

    tools, result, spans, follow_up = asyncio.run(run())
    assert {tool.name for tool in tools.tools} == {"ask", "read_document", "list_documents"}
    assert not result.is_error
    answer = result.structured_content
    assert answer["question"] == QUESTION and answer["passages"] and "[1]" in answer["answer"]
    assert {p["source"] for p in answer["passages"]} & {"kurils.md", "planted.md"}
    for passage, span in zip(answer["passages"], spans):
        assert span.structured_content["text"] == passage["text"]
    assert "Kuril" in follow_up.structured_content["searched_query"]


def test_mcp_needs_the_token_too(server):
    url, _ = server
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{url}/mcp", json=body, headers=headers)
        assert response.status_code == 401 and "needs a token" in response.json()["error"]
        wrong = client.post(f"{url}/mcp", json=body, headers={**headers, "Authorization": "Bearer nope-nope-nope-nope"})
        assert wrong.status_code == 401
