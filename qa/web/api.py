"""The REST API, `/api/v1`: ask (with a conversation's history), the documents, a document
or a span of it, and the index's health. JSON in and out; errors are `{"error": "..."}` with
their status (400 bad input, 401 missing token, 404 unknown document or endpoint, 413 body
too large, 503 no index can answer). OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs.

The app is mounted at /api beside the web chat (see `qa.web.asgi`), so every path under /api
is answered here, in JSON. It has no route that changes the corpus or the index.

(No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time,
and the token dependency's refers to a local.)
"""

import json
import logging
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from qa import __version__
from qa.web import schemas
from qa.web.security import token_problem
from qa.web.service import CorpusService, ServiceError

log = logging.getLogger("qa.web.api")

MOUNT = "/api"
VERSION = "/v1"
PREFIX = MOUNT + VERSION
# A request body larger than this is refused with 413 before it is read: a question is cut
# to 2000 characters anyway, and a history of 100 of them fits.
MAX_BODY_BYTES = 1_000_000


class Unauthorized(ServiceError):
    status = 401


class BearerGuard:
    """An ASGI app that lets through only requests with `Authorization: Bearer <token>` (else 401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.lower(): v for k, v in scope.get("headers") or ()}
            problem = token_problem(headers.get(b"authorization", b"").decode("latin-1"), self.token)
            if problem:
                await error_response(401, problem, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_api(service: CorpusService, token: str | None = None) -> ASGIApp:
    """The API as an ASGI app to mount at /api."""
    # The docs page's scripts and styles come from the package, not a CDN: it works offline.
    api = FastAPIOffline(
        title="qa: questions over the corpus, with cited passages",
        version=__version__,
        description=(
            "Ask the corpus questions and get an extractive answer whose citation markers [n] point "
            "to ranked passages, each with its document and exact character span. "
            + (
                "Every endpoint needs `Authorization: Bearer <QA_API_TOKEN>`."
                if token
                else "No token is needed (start the server with QA_API_TOKEN to require one)."
            )
        ),
        openapi_url=VERSION + "/openapi.json",
        docs_url=VERSION + "/docs",
        redoc_url=None,
        static_url=VERSION + "/static",
        favicon_url=None,
        servers=[{"url": MOUNT}],
        max_body_size=MAX_BODY_BYTES,
    )
    bearer = HTTPBearer(auto_error=False, description="The server's QA_API_TOKEN")

    def authorised(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> None:
        # (credentials only declares the scheme in OpenAPI; the header itself is checked.)
        problem = token_problem(request.headers.get("authorization"), token) if token else None
        if problem:
            raise Unauthorized(problem)

    errors = {
        400: {"model": schemas.Error, "description": "Bad input"},
        401: {"model": schemas.Error, "description": "Missing or wrong token (only with QA_API_TOKEN)"},
        503: {"model": schemas.Error, "description": "No index can answer"},
    }
    guarded = [Depends(authorised)] if token else []

    @api.post(
        VERSION + "/ask",
        response_model=schemas.Answer,
        responses={**errors, 413: {"model": schemas.Error, "description": "Request body too large"}},
        dependencies=guarded,
        summary="Ask a question",
    )
    async def ask(request: schemas.AskRequest) -> JSONResponse:
        """The same JSON as `qa ask --json`: the short answer with citation markers [n] and the ranked
        passages, each with the `url` of its original file on this server (a PDF at its `page`).
        `history` (the earlier questions) makes follow-ups work: the answer's `searched_query` says
        what was searched."""
        answer = await service.ask_async(
            request.question,
            request.k,
            request.mode,
            doc=request.doc,
            author=request.author,
            date_from=request.date_from,
            date_to=request.date_to,
            history=request.history,
        )
        return JSONResponse(answer)

    @api.post(
        VERSION + "/feedback",
        response_model=schemas.FeedbackRecord,
        status_code=201,
        responses={
            **errors,
            404: {"model": schemas.Error, "description": "Feedback is switched off (QA_FEEDBACK=off)"},
            413: {"model": schemas.Error, "description": "Request body too large"},
        },
        dependencies=guarded,
        summary="Say whether an answer helped",
    )
    def feedback(request: schemas.FeedbackRequest) -> JSONResponse:
        """Keep a reader's verdict on an answer of /ask, for the corpus's analysts (`qa report`) and
        as labelled questions (`qa feedback export`): `good` or `bad` for the whole answer, or
        `answered` with the `rank` of the passage that answered it. Send back the question, the
        history, the answer and its passages as /ask gave them; each passage's document and span
        must be in the index (400 otherwise). Nothing about the caller is kept."""
        record = service.feedback(
            request.question,
            request.verdict,
            answer=request.answer,
            searched_query=request.searched_query,
            history=request.history,
            passages=[p.model_dump() for p in request.passages],
            rank=request.rank,
        )
        return JSONResponse(record, status_code=201)

    @api.get(
        VERSION + "/documents",
        response_model=list[schemas.DocumentInfo],
        responses=errors,
        dependencies=guarded,
        summary="List the documents",
    )
    def documents() -> JSONResponse:
        """The indexed documents, as `qa docs --json` lists them."""
        return JSONResponse(service.documents())

    @api.get(
        VERSION + "/documents/{doc_id:path}",
        response_model=schemas.Document,
        responses={**errors, 404: {"model": schemas.Error, "description": "No such document"}},
        dependencies=guarded,
        summary="Read a document or a span of it",
    )
    def document(
        doc_id: Annotated[str, Path(description="A document id (see /documents) or its corpus-relative path.")],
        start: Annotated[int | None, Query(description="Start of the span (character offset).")] = None,
        end: Annotated[int | None, Query(description="End of the span; a passage's start/end give it back.")] = None,
    ) -> JSONResponse:
        """The document's metadata and text, or text[start:end] when a span is given (400 if it is
        outside the text). A passage's `start` and `end` return exactly its text."""
        return JSONResponse(service.document(doc_id, start, end))

    @api.get(
        VERSION + "/health",
        response_model=schemas.Health,
        responses={401: errors[401], 503: errors[503]},
        dependencies=guarded,
        summary="Check that the index answers",
    )
    def health() -> JSONResponse:
        """The index snapshot that answers, with its documents, chunks and model; 503 while none can."""
        return JSONResponse(service.health())

    @api.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, str(exc), headers)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, validation_message(exc.errors()))

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no endpoint {request.url.path}; the API is described at {PREFIX}/docs"
        elif exc.status_code == 413:
            message = f"the request body is larger than {MAX_BODY_BYTES} bytes"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see {PREFIX}/docs"
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @api.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "something went wrong while answering; the error was logged on the server")

    # Outside FastAPI's own limit, whose 413 for a declared length is plain text.
    return DeclaredSizeLimit(api, MAX_BODY_BYTES)


def validation_message(errors: list[Any]) -> str:
    """Pydantic's errors as one readable sentence: 'k: Input should be less than or equal to 50 (got 80)'."""
    parts = []
    for error in errors[:5]:
        where = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(where) or "the request body"
        kind, message = error.get("type", ""), error.get("msg", "invalid")
        if kind == "json_invalid":
            parts.append(f"the request body is not valid JSON ({error.get('ctx', {}).get('error', message)})")
            continue
        if kind == "extra_forbidden":
            parts.append(f"unknown field '{field}'; the fields are described at {PREFIX}/docs")
            continue
        if kind == "missing":
            parts.append(f"{field} is required")
            continue
        if kind == "model_attributes_type":
            parts.append('the request body must be a JSON object such as {"question": "..."}')
            continue
        got = error.get("input")
        shown = json.dumps(got, ensure_ascii=False)[:80] if got is not None and "input" in error else ""
        # (a lone surrogate in the input must not break the error's own encoding)
        shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
        parts.append(f"{field}: {message}" + (f" (got {shown})" if shown else ""))
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


class DeclaredSizeLimit:
    """413 in JSON for a body whose Content-Length is over the limit, before any of it is read.

    (FastAPI's own `max_body_size` stops bodies sent without a length as they arrive.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or ()).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = error_response(413, f"the request body is larger than {self.max_bytes} bytes")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
