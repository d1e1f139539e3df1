"""The MCP server through the official MCP Python client, in process (hash model): the tools and
their schemas, ask with citations that check against read_document, follow-ups, and errors
returned as tool errors. Over streamable HTTP from a real `qa serve`: tests/test_server_e2e.py."""

from __future__ import annotations

import asyncio

import pytest

from qa.engine import open_index
from qa.web.service import CorpusService, with_links
from tests.web_helpers import web_settings

mcp = pytest.importorskip("mcp")

from qa.web.mcp_server import create_mcp  # noqa: E402

QUESTION = "What did Russia deploy to the Kuril islands?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    engine = open_index(settings=web_settings(tmp_path_factory.mktemp("mcp")))
    return create_mcp(CorpusService(engine)), engine


def session(server, calls):
    """Run `calls(client)` against the server in process; returns its result."""

    async def run():
        async with mcp.Client(server) as client:
            return await calls(client)

    return asyncio.run(run())


def test_three_read_only_tools_with_schemas(server):
    tools = session(server[0], lambda client: client.list_tools())
    by_name = {tool.name: tool for tool in tools.tools}
    assert set(by_name) == {"ask", "read_document", "list_documents"}
    ask = by_name["ask"]
    assert ask.input_schema["required"] == ["question"]
    assert set(ask.input_schema["properties"]) == {
        "question", "k", "mode", "doc", "author", "date_from", "date_to", "history",
    }  # fmt: skip
    assert {"answer", "passages", "searched_query"} <= set(ask.output_schema["properties"])
    assert "citation markers" in ask.description
    for tool in by_name.values():
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False


def test_ask_returns_cited_passages_that_read_document_gives_back(server):
    server_, engine = server

    async def calls(client):
        result = await client.call_tool("ask", {"question": QUESTION, "k": 3})
        spans = []
        for passage in result.structured_content["passages"]:
            args = {"doc_id": passage["doc_id"], "start": passage["start"], "end": passage["end"]}
            spans.append(await client.call_tool("read_document", args))
        return result, spans

    result, spans = session(server_, calls)
    assert not result.is_error
    answer = result.structured_content
    assert answer == with_links(engine.ask(QUESTION, k=3).to_dict())
    assert answer["passages"] and "[1]" in answer["answer"]
    assert result.content[0].type == "text" and "S-300V4" in result.content[0].text  # what a model reads
    for passage, span in zip(answer["passages"], spans):
        assert span.structured_content["text"] == passage["text"]
        assert span.structured_content["title"] == passage["title"]


def test_history_makes_a_follow_up(server):
    result = session(
        server[0],
        lambda client: client.call_tool("ask", {"question": "and how did Japan respond?", "history": [QUESTION]}),
    )
    searched = result.structured_content["searched_query"]
    assert searched.startswith("how did Japan respond?") and "Kuril" in searched
    # Recorded as asked (QA_FEEDBACK), with its conversation, for `qa report`.
    asked = server[1].feedback.records()[-1]
    assert (asked.kind, asked.channel, asked.history, asked.searched) == ("asked", "mcp", (QUESTION,), searched)


def test_list_documents(server):
    server_, engine = server
    result = session(server_, lambda client: client.call_tool("list_documents", {}))
    assert result.structured_content == {"result": [d.to_dict() for d in engine.documents()]}


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("ask", {"question": "  "}, "the question is empty"),
        ("ask", {"question": QUESTION, "k": 0}, "greater than or equal to 1"),
        ("ask", {"question": QUESTION, "mode": "bogus"}, "'hybrid', 'dense' or 'lexical'"),
        ("ask", {"question": QUESTION, "date_from": "soon"}, "date_from must look like 2020"),
        ("ask", {"question": QUESTION, "history": [QUESTION, ""]}, "history[1]: the question is empty"),
        ("read_document", {"doc_id": "no-such-doc"}, "no document 'no-such-doc' in the index"),
        ("read_document", {"doc_id": "tokyo", "start": 10, "end": 10**7}, "span 10:10000000 is outside"),
        ("ask", {}, "question"),
    ],
)
def test_errors_are_tool_errors_with_the_message(server, tool, arguments, message):
    result = session(server[0], lambda client: client.call_tool(tool, arguments))
    assert result.is_error
    assert message in result.content[0].text and "Traceback" not in result.content[0].text
