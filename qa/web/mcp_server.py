"""The corpus as an MCP server (the official `mcp` SDK), for AI assistants that cite sources.

Three read-only tools, served over streamable HTTP at /mcp by `qa serve`:
`ask` (the short answer with citation markers and the cited passages, follow-ups through
`history`), `read_document` (a document or the exact span a passage cites) and
`list_documents`. They call the same `CorpusService` as the REST API.
"""

from __future__ import annotations

import logging
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.routing import Route

from qa import __version__
from qa.conversation import MAX_HISTORY
from qa.web import schemas
from qa.web.api import BearerGuard, DeclaredSizeLimit
from qa.web.service import CorpusService, ServiceError

log = logging.getLogger("qa.web.mcp_server")

PATH = "/mcp"
INSTRUCTIONS = """\
Answers questions from a fixed corpus of documents (here: a journal on Russia–Japan relations), \
with no language model: `ask` returns an extractive answer whose sentences end in citation \
markers [n], and passages[n-1] is the cited source (title, author, date, source file, and the \
exact character span start–end of the document's text). When you use an answer, cite its \
passages by title and source; `read_document` with a passage's doc_id, start and end returns \
exactly the cited text, and without start/end the whole document. For a follow-up question, \
pass the earlier questions of the conversation as `history`."""

_READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def create_mcp(service: CorpusService) -> MCPServer:
    """The MCP server with its three tools."""
    server = MCPServer(
        name="qa",
        title="qa: the corpus, with cited passages",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",  # the SDK configures the root logger when nothing else has
    )

    async def ask(
        question: Annotated[str, Field(description="The question, in plain words.")],
        k: Annotated[int, Field(ge=1, le=schemas.MAX_K, description="How many passages at most.")] = 5,
        mode: Annotated[
            schemas.Mode, Field(description="hybrid: meaning + words; dense: meaning; lexical: words (BM25).")
        ] = "hybrid",
        doc: Annotated[list[str] | None, Field(description="Only these document ids (from list_documents).")] = None,
        author: Annotated[str | None, Field(description="Only documents whose author contains this.")] = None,
        date_from: Annotated[str | None, Field(description=f"On or after ({schemas.DATE_HELP}).")] = None,
        date_to: Annotated[str | None, Field(description=f"On or before ({schemas.DATE_HELP}).")] = None,
        history: Annotated[
            list[str] | None,
            Field(max_length=MAX_HISTORY, description="The conversation's earlier questions, oldest first."),
        ] = None,
    ) -> schemas.Answer:
        """Ask the corpus a question. Returns a short extractive answer whose sentences end in citation
        markers [n], and the ranked passages they cite, each with its document (doc_id, title, author,
        date, source), exact character span (start, end), page (PDFs) and the url of its original file on
        this server. "No relevant passage found" (and no passages) when nothing in the corpus answers."""
        answer = await _call_async(
            service.ask_async,
            question,
            k,
            mode,
            doc=doc,
            author=author,
            date_from=date_from,
            date_to=date_to,
            history=history or (),
            channel="mcp",
        )
        return schemas.Answer.model_validate(answer)

    def read_document(
        doc_id: Annotated[str, Field(description="A document id (a passage's doc_id, or from list_documents).")],
        start: Annotated[int | None, Field(ge=0, description="Start of the span (a passage's start).")] = None,
        end: Annotated[int | None, Field(ge=0, description="End of the span (a passage's end).")] = None,
    ) -> schemas.Document:
        """A document's metadata and text; with start and end, exactly the span text[start:end]
        (a passage's start and end give back the cited text)."""
        return schemas.Document.model_validate(_call(service.document, doc_id, start, end))

    def list_documents() -> list[schemas.DocumentInfo]:
        """The documents in the corpus: id, title, author, date, source file, chunks and length."""
        return [schemas.DocumentInfo.model_validate(d) for d in _call(service.documents)]

    for tool, title in (
        (ask, "Ask the corpus"),
        (read_document, "Read a document or a cited span"),
        (list_documents, "List the documents"),
    ):
        description = " ".join((tool.__doc__ or "").split())
        server.add_tool(tool, name=tool.__name__, title=title, description=description, annotations=_READ_ONLY)
    return server


def mcp_routes(server: MCPServer, host: str, max_body_bytes: int, token: str | None = None) -> list[Route]:
    """The streamable HTTP endpoint at /mcp, to add to the web server (run `server.session_manager`
    in its lifespan). On a loopback host, requests naming another Host are refused (DNS rebinding);
    with a token, requests without `Authorization: Bearer <token>` get 401."""
    security = None
    if host not in ("127.0.0.1", "localhost", "::1"):
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=max_body_bytes,
        transport_security=security,
        host=host,
    )
    routes = [route for route in app.routes if isinstance(route, Route)]
    # A body over the limit is refused in JSON before it is read (the SDK's own 413 is plain text).
    routes = [Route(route.path, endpoint=DeclaredSizeLimit(route.endpoint, max_body_bytes)) for route in routes]
    if token:
        routes = [Route(route.path, endpoint=BearerGuard(route.endpoint, token)) for route in routes]
    return routes


CRASHED = "something went wrong while answering; the error was logged on the server"


async def _call_async(function, *args, **kwargs):
    try:
        return await function(*args, **kwargs)
    except ServiceError as exc:
        raise ToolError(str(exc)) from None
    except Exception:  # a bug: logged here, a plain message for the client (never the exception's text)
        log.exception("MCP tool call failed")
        raise ToolError(CRASHED) from None


def _call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except ServiceError as exc:
        raise ToolError(str(exc)) from None
    except Exception:
        log.exception("MCP tool call failed")
        raise ToolError(CRASHED) from None
