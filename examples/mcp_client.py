"""Ask qa through MCP with the official Python client: `qa serve`, then `python examples/mcp_client.py`."""

import asyncio

from mcp import Client


async def main():
    async with Client("http://127.0.0.1:7860/mcp") as client:
        tools = await client.list_tools()
        print([tool.name for tool in tools.tools])
        result = await client.call_tool("ask", {"question": "what did Russia deploy to the Kurils?", "k": 2})
        answer = result.structured_content
        print(answer["answer"])
        for p in answer["passages"]:
            cited = {"doc_id": p["doc_id"], "start": p["start"], "end": p["end"]}
            span = await client.call_tool("read_document", cited)
            print(
                f"[{p['rank']}] {p['title']} ({p['source']}, characters {p['start']}-{p['end']})",
                span.structured_content["text"] == p["text"],
            )


asyncio.run(main())
