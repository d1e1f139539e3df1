"""The web chat's command-line flags, apart from the app so that `qa ask` never imports it."""

from __future__ import annotations

import argparse

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
ADMIN_PASSWORD_ENV = "QA_ADMIN_PASSWORD"
MAX_UPLOAD_ENV = "QA_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 20.0


def add_serve_arguments(parser: argparse.ArgumentParser, paths: bool = False) -> None:
    """The web chat's flags (shared by `python app.py` and `qa serve`)."""
    if paths:
        from qa.cli import add_path_arguments

        add_path_arguments(parser)
    group = parser.add_argument_group("web server")
    group.add_argument(
        "--host", metavar="ADDRESS", help=f"address to listen on (GRADIO_SERVER_NAME; default {DEFAULT_HOST})"
    )
    group.add_argument("--port", type=int, metavar="N", help=f"port (GRADIO_SERVER_PORT; default {DEFAULT_PORT})")
    group.add_argument(
        "--admin-password",
        metavar="PASSWORD",
        help=f"enable the analysts' Index tab behind this password ({ADMIN_PASSWORD_ENV}; "
        "prefer the variable: command lines are visible to other users)",
    )
    group.add_argument(
        "--max-upload-mb",
        type=float,
        metavar="MB",
        help=f"largest file analysts may upload ({MAX_UPLOAD_ENV}; default {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    group.add_argument("--concurrency", type=int, default=4, metavar="N", help="questions answered at once (default 4)")
