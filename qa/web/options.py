"""The web server's options: its flags (`qa.arguments.add_serve_arguments`) over its environment
variables over its defaults (`qa.config`), checked."""

from __future__ import annotations

import argparse
import os

from qa.arguments import add_serve_arguments  # noqa: F401  (re-exported for app.py and the tests)
from qa.config import (
    ADMIN_PASSWORD_ENV,
    ALLOWED_HOSTS_ENV,
    API_TOKEN_ENV,
    CORS_ORIGINS_ENV,
    DEFAULT_HOST,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PORT,
    HOST_ENV,
    MAX_UPLOAD_ENV,
    PORT_ENV,
)
from qa.errors import QAError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def resolve_port(flag: int | None, env: dict[str, str] | os._Environ) -> int:
    """--port, else GRADIO_SERVER_PORT, else 7860."""
    if flag is not None:
        port, origin = flag, "--port"
    else:
        raw = (env.get(PORT_ENV) or "").strip()
        if not raw:
            return DEFAULT_PORT
        try:
            port, origin = int(raw), PORT_ENV
        except ValueError:
            raise QAError(f"{PORT_ENV}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise QAError(f"{origin} must be a port number between 1 and 65535 (got {port})")
    return port


def resolve_options(args: argparse.Namespace, env: dict[str, str] | os._Environ | None = None) -> dict:
    """Flags over environment over defaults; QAError for a value that cannot work."""
    env = os.environ if env is None else env
    host = args.host or (env.get(HOST_ENV) or "").strip() or DEFAULT_HOST
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
    hosts = _listed(getattr(args, "allowed_hosts", None), env.get(ALLOWED_HOSTS_ENV))
    origins = _listed(getattr(args, "cors_origins", None), env.get(CORS_ORIGINS_ENV))
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise QAError(f"a CORS origin must look like https://example.org (got {origin!r})")
    return {
        "host": host,
        "allowed_hosts": hosts,
        "cors_origins": origins,
        "port": resolve_port(args.port, env),
        "admin_password": password or None,
        "max_upload_mb": max_mb,
        "api_token": token or None,
        "concurrency": args.concurrency,
    }


def _listed(flag: str | None, variable: str | None) -> tuple[str, ...]:
    """A comma-separated flag over its variable, as a tuple without blanks."""
    raw = flag if flag is not None else (variable or "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())
