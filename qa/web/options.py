"""The web server's flags and environment (shared by `python app.py` and `qa serve`).

Kept apart from the app so that `qa`'s argument parser can describe `qa serve` without
importing the web chat (`qa ask` and `qa chat` never load it).
"""

from __future__ import annotations

import argparse
import os

from qa.errors import QAError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 20.0
ADMIN_PASSWORD_ENV = "QA_ADMIN_PASSWORD"
MAX_UPLOAD_ENV = "QA_MAX_UPLOAD_MB"
API_TOKEN_ENV = "QA_API_TOKEN"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_serve_arguments(parser: argparse.ArgumentParser, paths: bool = False) -> None:
    """The web server's flags; with paths, also --corpus, --index, --model and --backend."""
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
    group.add_argument(
        "--api-token",
        metavar="TOKEN",
        help=f"require 'Authorization: Bearer TOKEN' on /api and /mcp ({API_TOKEN_ENV}; "
        "prefer the variable: command lines are visible to other users)",
    )
    group.add_argument("--concurrency", type=int, default=4, metavar="N", help="questions answered at once (default 4)")


def resolve_port(flag: int | None, env: dict[str, str] | os._Environ) -> int:
    """--port, else GRADIO_SERVER_PORT, else 7860."""
    if flag is not None:
        port, origin = flag, "--port"
    else:
        raw = (env.get("GRADIO_SERVER_PORT") or "").strip()
        if not raw:
            return DEFAULT_PORT
        try:
            port, origin = int(raw), "GRADIO_SERVER_PORT"
        except ValueError:
            raise QAError(f"GRADIO_SERVER_PORT={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise QAError(f"{origin} must be a port number between 1 and 65535 (got {port})")
    return port


def resolve_options(args: argparse.Namespace, env: dict[str, str] | os._Environ | None = None) -> dict:
    """Flags over environment over defaults; QAError for a value that cannot work."""
    env = os.environ if env is None else env
    host = args.host or (env.get("GRADIO_SERVER_NAME") or "").strip() or DEFAULT_HOST
    password = args.admin_password if args.admin_password is not None else env.get(ADMIN_PASSWORD_ENV, "")
    raw_mb = args.max_upload_mb if args.max_upload_mb is not None else (env.get(MAX_UPLOAD_ENV) or "").strip()
    try:
        max_mb = float(raw_mb) if raw_mb not in ("", None) else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        raise QAError(f"{MAX_UPLOAD_ENV}={raw_mb!r} is not a number") from None
    if not 0 < max_mb <= 1000:
        raise QAError(f"the upload limit must be between 0 and 1000 MB (got {max_mb:g})")
    if args.concurrency < 1:
        raise QAError("--concurrency must be at least 1")
    token = args.api_token if args.api_token is not None else env.get(API_TOKEN_ENV, "")
    token = token.strip()
    if token and (len(token) < 16 or not all(c.isascii() and c.isprintable() and not c.isspace() for c in token)):
        origin = "--api-token" if args.api_token is not None else API_TOKEN_ENV
        raise QAError(f"{origin} must be at least 16 printable ASCII characters without spaces")
    return {
        "host": host,
        "port": resolve_port(args.port, env),
        "admin_password": password or None,
        "max_upload_mb": max_mb,
        "api_token": token or None,
        "concurrency": args.concurrency,
    }
