"""The web server: the chat (Gradio: handlers and layout, escaped HTML, safe uploads), the REST
API and the MCP server over one read-only service, the corpus's original files and pictures of
their PDF pages, and their assembly. (The runner that starts
the app for tests and benchmarks is qa.testing.web.)"""

from qa._lazy import lazy_exports

_EXPORTS = {
    "main": "qa.web.app",
    "ChatHandlers": "qa.web.app",
    "build_app": "qa.web.app",
    "add_serve_arguments": "qa.arguments",
    "CorpusService": "qa.web.service",
    "create_api": "qa.web.api",
    "create_mcp": "qa.web.mcp_server",
    "create_server": "qa.web.asgi",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
