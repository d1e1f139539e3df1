"""One web server for everything: the chat (Gradio) at /, the REST API at /api/v1 and the MCP
server at /mcp, on one FastAPI app run by uvicorn.

Gradio is mounted last, at /, so the API and MCP paths are matched first; the API answers
every path under /api itself (JSON 404s), and neither has a route to the analysts' actions.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from qa.errors import QAError
from qa.web import api
from qa.web.mcp_server import PATH as MCP_PATH
from qa.web.mcp_server import create_mcp, mcp_routes
from qa.web.service import CorpusService

if TYPE_CHECKING:
    from fastapi import FastAPI

    from qa.web.app import ChatHandlers


def create_server(handlers: ChatHandlers, options: dict[str, Any]) -> FastAPI:
    """The ASGI app: chat, API and MCP over `handlers.engine`, with the serve `options`."""
    import gradio as gr
    from fastapi import FastAPI

    from qa.web.app import CSS, PAGE_HEAD, build_app, theme

    service = CorpusService(handlers.engine, options["concurrency"])
    mcp = create_mcp(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    # No docs of its own: /docs and /openapi.json would only describe the mounts.
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.mount(api.MOUNT, api.create_api(service, options["api_token"]))
    app.router.routes.extend(mcp_routes(mcp, options["host"], api.MAX_BODY_BYTES, options["api_token"]))
    demo = build_app(handlers)
    demo.queue(default_concurrency_limit=options["concurrency"])
    gr.mount_gradio_app(
        app,
        demo,
        path="/",
        server_name=options["host"],
        server_port=options["port"],
        max_file_size=int(options["max_upload_mb"] * 1_000_000),
        theme=theme(),
        css=CSS,
        head=PAGE_HEAD,
        footer_links=["api"],
        ssr_mode=False,
        show_error=False,
    )
    return app


def urls(host: str, port: int) -> dict[str, str]:
    """Where the chat, the API, its docs and the MCP endpoint are, as a client on this machine writes them."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    base = f"http://{shown}:{port}"
    return {
        "chat": base + "/",
        "api": base + api.PREFIX,
        "docs": base + api.PREFIX + "/docs",
        "mcp": base + MCP_PATH,
    }


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; QAError naming the fix when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise QAError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another port with --port or GRADIO_SERVER_PORT"
        ) from None
    return sock


def run(app: FastAPI, sock: socket.socket) -> None:
    """Serve `app` on `sock` until interrupted (Ctrl-C stops it gracefully)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
