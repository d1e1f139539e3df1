"""The web server: the chat (Gradio: handlers and layout, escaped HTML, safe uploads), the REST
API and the MCP server over one read-only service, the corpus's original files and pictures of
their PDF pages, and their assembly. (The runner that starts the app for tests and benchmarks is
qa.testing.web.)

The package exports nothing: callers import the module they need (`qa.web.asgi.create_server`,
`qa.web.app.build_app`, `qa.web.api.create_api`, `qa.web.mcp_server.create_mcp`), so that the REST
API does not import Gradio.
"""
