"""One web server for everything: the chat (Gradio) at /, the REST API at /api/v1 and the MCP
server at /mcp, on one FastAPI app run by uvicorn; the corpus's original files at /corpus/ and
pictures of PDF pages at /corpus-page/ (`qa.web.originals`).

Gradio is mounted last, at /, so the API and MCP paths are matched first; the API answers
every path under /api itself (JSON 404s), and neither has a route to the analysts' actions.
`qa.web.security.AccessGuard` wraps the whole app: hosts, the token and the response headers
are checked in one place for every route.
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
from qa.web.security import AccessGuard, allowed_hosts
from qa.web.service import CorpusService

if TYPE_CHECKING:
    from fastapi import FastAPI

    from qa.web.app import ChatHandlers


def create_server(handlers: ChatHandlers, options: dict[str, Any]) -> AccessGuard:
    """The ASGI app: chat, API and MCP over `handlers.engine`, with the serve `options`."""
    import gradio as gr
    from fastapi import FastAPI
    from starlette.middleware.cors import CORSMiddleware

    from qa.web.app import CSS, PAGE_HEAD, build_app, theme

    service = CorpusService(handlers.engine, options["concurrency"])
    mcp = create_mcp(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield
        handlers.files.close()

    # No docs of its own: /docs and /openapi.json would only describe the mounts.
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    # Cross-origin calls only from the configured origins (none by default). Gradio stands its
    # own CORS handling down when the parent app has this middleware.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(options.get("cors_origins", ())),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,
    )
    app.mount(api.MOUNT, api.create_api(service, options["api_token"]))
    app.router.routes.extend(mcp_routes(mcp, options["host"], api.MAX_BODY_BYTES, options["api_token"]))
    # The original files and pictures of PDF pages (behind the guard, like the chat).
    app.router.routes.extend(handlers.files.routes())
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
        run_history=False,
        # Nothing outside Gradio's own cache is ever served or copied into it.
        allowed_paths=[],
        blocked_paths=blocked_paths(handlers),
    )
    # Mounting (unlike launch()) leaves the Blocks marked as not launched, and Gradio skips its
    # file path checks for such Blocks: switch them on.
    demo.has_launched = True
    hosts = allowed_hosts(options["host"], options.get("allowed_hosts", ()))
    return AccessGuard(app, token=options["api_token"], hosts=hosts)


def blocked_paths(handlers: ChatHandlers) -> list[str]:
    """Folders Gradio must never serve a file from: the index, the corpus, the code, the system's."""
    import os
    import tempfile
    from pathlib import Path

    settings = handlers.engine.settings
    places = [Path(settings.index_dir), Path(settings.corpus_dir), Path(__file__).parents[2], Path.cwd()]
    places += [Path(p) for p in ("/proc", "/sys", "/etc", "/root", "/home", "/var", "/usr", "/dev")]
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()
    # (a place holding Gradio's cache cannot be blocked, or nothing could be served)
    return sorted({str(p.resolve()) for p in places if not cache.is_relative_to(p.resolve())})


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


def run(app: Any, sock: socket.socket) -> None:
    """Serve `app` on `sock` until interrupted (Ctrl-C stops it gracefully)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
