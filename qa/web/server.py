"""Starting the server (`qa serve`, `python app.py`): open the index, building it on first start,
then serve the chat (qa.web.app), the REST API and the MCP server on one port (qa.web.asgi)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qa.errors import QAError
from qa.web.app import ChatHandlers
from qa.web.options import ADMIN_PASSWORD_ENV, LOCAL_HOSTS, add_serve_arguments, resolve_options


def serve(args: argparse.Namespace) -> int:
    """Open (building on first start) the index, then serve the chat, the REST API and the MCP
    server on one port until interrupted."""
    from qa.arguments import settings_from_args
    from qa.engine import open_index
    from qa.storage.stores import open_store
    from qa.web import asgi

    options = resolve_options(args)
    settings = settings_from_args(args)
    store = open_store(settings)
    if store.current_name() == "":
        print(f"qa: no index in {store.location} yet: building it from {settings.corpus_dir}…", file=sys.stderr)
    engine = open_index(settings=settings, build=True, progress=sys.stderr.isatty())
    from qa.formatting import corpus_warnings

    hint = f"run `qa index`{' or use the Index tab' if options['admin_password'] else ''} to include them"
    for line in corpus_warnings(engine.corpus_status(), hint):
        print(f"qa: {line}", file=sys.stderr)
    handlers = ChatHandlers(engine, options["admin_password"], options["max_upload_mb"])
    remote = options["host"] not in LOCAL_HOSTS
    if remote and (handlers.admin_enabled or options["api_token"]):
        print(
            f"qa: warning: listening on {options['host']} without HTTPS: the analyst password and the API token "
            "cross the network in clear text; put the app behind an HTTPS proxy",
            file=sys.stderr,
        )
    watcher = None
    if getattr(args, "watch", False):
        from qa.ingest.watch import CorpusWatcher

        watcher = CorpusWatcher(settings, _watch_report, embedder=engine.embedder).start(initial=True)
        print(f"qa: watching {settings.corpus_dir}: added, changed and removed files are indexed", file=sys.stderr)
    app = asgi.create_server(handlers, options)
    sock = asgi.listen(options["host"], options["port"])
    where = asgi.urls(options["host"], options["port"])
    token = "needs 'Authorization: Bearer <QA_API_TOKEN>'" if options["api_token"] else "no token needed"
    print(
        f"qa: serving {engine.stats()['documents']} documents; analyst Index tab "
        f"{'enabled' if handlers.admin_enabled else f'disabled (set {ADMIN_PASSWORD_ENV} to enable it)'}\n"
        f"qa: chat      {where['chat']}\n"
        f"qa: REST API  {where['api']}  (docs: {where['docs']}; {token})\n"
        f"qa: MCP       {where['mcp']}  (streamable HTTP{'; the same token' if options['api_token'] else ''})\n"
        "qa: press Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    try:
        asgi.run(app, sock)
    finally:
        sock.close()
        if watcher is not None:
            watcher.stop()
    return 0


def _watch_report(report) -> None:
    """One line on stderr per update the watcher made."""
    parts = [
        f"{label} {', '.join(items)}"
        for label, items in (("added", report.added), ("changed", report.changed), ("removed", report.removed))
        if items
    ]
    parts += [f"failed {item['path']}: {item['reason']}" for item in report.failed]
    print(f"qa: index updated: {'; '.join(parts)} ({report.chunks_embedded} chunks embedded)", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """`python app.py`: the web chat."""
    parser = argparse.ArgumentParser(
        prog="app.py", description="The web chat: ask the corpus questions, with cited passages."
    )
    add_serve_arguments(parser, paths=True)
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
