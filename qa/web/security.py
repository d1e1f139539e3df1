"""One security model for every route of the web server (chat, Gradio API, REST, MCP).

`AccessGuard` wraps the whole ASGI app:
- **Hosts.** A request whose `Host` header is not one of the allowed hosts gets 400 (DNS rebinding):
  on a loopback address only 127.0.0.1, localhost and [::1]; elsewhere whatever QA_ALLOWED_HOSTS
  lists (any host when it is unset).
- **The token.** With QA_API_TOKEN set, nothing that answers a question or returns a document is
  served without it: the REST API and MCP check `Authorization: Bearer <token>` themselves; every
  other route (the chat, all of Gradio's API, the corpus's original files and pictures of PDF
  pages) takes the same header or the session cookie the sign-in page sets. Only the page's
  shell, its layout (/config) and static assets stay public; the chat's URL shows the sign-in form
  until the browser has signed in.
- **Headers.** Every response carries frame, content-type and content-security headers.

`Lockout` counts wrong passwords per client, so one client guessing cannot lock out the others.
"""

from __future__ import annotations

import hmac
import html
import logging
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("qa.web.security")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SESSION_COOKIE = "qa_session"
SESSION_SECONDS = 12 * 3600
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
# Served without the token: the page's shell and layout (no answers, no documents) and static files.
PUBLIC_PATHS = frozenset({"/", "/config", "/config/", "/theme.css", "/favicon.ico", "/manifest.json"})
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/gradio_api/theme.css")
# Paths that check the token themselves (qa.web.api, qa.web.mcp_server): passed through as they are.
SELF_GUARDED_PREFIXES = ("/api/", "/api", "/mcp")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        # Gradio's page runs inline scripts and compiles the custom components' code at run time.
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> tuple[str, ...] | None:
    """The Host header values (without port) a server bound to `bind_host` answers; None for any."""
    extra = tuple(h.strip().lower() for h in extra if h.strip())
    if bind_host in LOOPBACK_HOSTS:
        return (*LOOPBACK_HOSTS, *extra)
    if not extra or "*" in extra:
        return None
    return extra


def host_of(header: str) -> str:
    """'example.org' from 'example.org:7860', '::1' from '[::1]:7860'; lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Lockout:
    """Wrong-password counting per client: after `max_failures` within `window` seconds, that
    client (and only that one) is refused for `lockout` seconds."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300.0,
        lockout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures, self.window, self.lockout = max_failures, window, lockout
        self._clock = clock
        self._max_clients = max_clients
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds this client must still wait (0 when it may try)."""
        with self._lock:
            return max(0.0, self._locked_until.get(client, 0.0) - self._clock())

    def failed(self, client: str) -> bool:
        """Count a wrong password; True when this one locks the client out."""
        with self._lock:
            now = self._clock()
            if len(self._failures) >= self._max_clients:  # forget the oldest clients, not the memory
                self._prune(now)
            recent = [t for t in self._failures.get(client, []) if now - t < self.window] + [now]
            if len(recent) >= self.max_failures:
                self._failures.pop(client, None)
                self._locked_until[client] = now + self.lockout
                return True
            self._failures[client] = recent
            return False

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _prune(self, now: float) -> None:
        self._locked_until = {c: t for c, t in self._locked_until.items() if t > now}
        self._failures = {c: ts for c, ts in self._failures.items() if ts and now - ts[-1] < self.window}
        while len(self._failures) >= self._max_clients:
            self._failures.pop(next(iter(self._failures)))


class Sessions:
    """Signed-in browsers: random session ids kept in memory until they expire."""

    def __init__(self, seconds: float = SESSION_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def new(self) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._expires = {s: t for s, t in self._expires.items() if t > now}
            self._expires[session] = now + self.seconds
        return session

    def valid(self, session: str | None) -> bool:
        if not session:
            return False
        with self._lock:
            expires = self._expires.get(session)
            if expires is None:
                return False
            if expires <= self._clock():
                del self._expires[session]
                return False
            return True

    def end(self, session: str | None) -> None:
        with self._lock:
            self._expires.pop(session or "", None)


def token_problem(authorization: str | None, token: str) -> str | None:
    """Why an Authorization header value is not `Bearer <token>` (compared in constant time), or None."""
    if not (authorization or "").strip():
        return "this server needs a token: send the header 'Authorization: Bearer <token>' (its QA_API_TOKEN)"
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return "the Authorization header must be 'Bearer <token>'"
    if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8")):
        return "the token is not this server's QA_API_TOKEN"
    return None


class AccessGuard:
    """The ASGI middleware in front of everything (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        hosts: tuple[str, ...] | None,
        sessions: Sessions | None = None,
        lockout: Lockout | None = None,
        title: str = "Ask the corpus",
    ) -> None:
        self.app, self.token, self.hosts = app, token, hosts
        self.sessions = sessions or Sessions()
        self.lockout = lockout or Lockout()
        self.title = title

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}
        if self.hosts is not None and host_of(headers.get("host", "")) not in self.hosts:
            await self._refuse(scope, receive, send, 400, "this server does not answer for that Host header")
            return
        path = scope.get("path", "")
        if self.token is None or path.startswith(SELF_GUARDED_PREFIXES):
            await self._serve(scope, receive, send)
            return
        if path in (LOGIN_PATH, LOGOUT_PATH) and scope["type"] == "http":
            await self._sign_in_or_out(scope, receive, send, headers)
            return
        if self._signed_in(headers):
            await self._serve(scope, receive, send)
            return
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            if path == "/":
                await self._login_page()(scope, receive, send)
                return
            if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
                await self._serve(scope, receive, send)
                return
        await self._refuse(
            scope,
            receive,
            send,
            401,
            "this server needs a token: sign in on the chat page, or send 'Authorization: Bearer <token>' "
            "(its QA_API_TOKEN)",
        )

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app; an exception it lets out becomes a JSON error, and the connection stays usable."""
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] in ("http.response.start", "websocket.accept")
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if type(exc).__name__ == "FnIndexInferError":  # Gradio: no endpoint by that name
                status, message = 404, "no such API endpoint on this server"
            else:
                log.error("%s %s failed", scope.get("method", ""), scope.get("path", ""), exc_info=exc)
                status, message = 500, "something went wrong; the error was logged on the server"
            if started or scope["type"] != "http":
                return
            await JSONResponse({"error": message}, status_code=status)(scope, receive, send)

    # -- helpers -------------------------------------------------------------------------------
    def _signed_in(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        if "authorization" in headers:
            return token_problem(headers["authorization"], self.token) is None
        return self.sessions.valid(_cookie(headers.get("cookie", ""), SESSION_COOKIE))

    async def _sign_in_or_out(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        assert self.token is not None
        method = scope.get("method")
        if scope["path"] == LOGOUT_PATH:
            self.sessions.end(_cookie(headers.get("cookie", ""), SESSION_COOKIE))
            response: Response = RedirectResponse("/", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
        elif method in ("GET", "HEAD"):
            response = self._login_page()
        elif method != "POST":
            response = JSONResponse({"error": f"{method} is not allowed on {LOGIN_PATH}"}, status_code=405)
        elif not _same_origin(headers):
            response = self._login_page("The sign-in form must be sent from this server's own page.", 403)
        else:
            client = (scope.get("client") or ("",))[0] or ""
            wait = self.lockout.wait(client)
            given = _form_field(await _read_body(receive, 10_000), "token")
            if wait:
                response = self._login_page(f"Too many wrong tokens; try again in {int(wait) + 1} s.", 429)
            elif hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("utf-8")):
                self.lockout.succeeded(client)
                response = RedirectResponse("/", status_code=303)
                secure = scope.get("scheme") == "https"
                response.set_cookie(
                    SESSION_COOKIE,
                    self.sessions.new(),
                    max_age=int(self.sessions.seconds),
                    path="/",
                    httponly=True,
                    samesite="strict",
                    secure=secure,
                )
            else:
                locked = self.lockout.failed(client)
                message = "Wrong token." + (" Too many attempts: wait a minute." if locked else "")
                response = self._login_page(message, 401)
        await response(scope, receive, send)

    def _login_page(self, message: str = "", status: int = 200) -> HTMLResponse:
        note = f'<p class="error">{html.escape(message)}</p>' if message else ""
        return HTMLResponse(
            LOGIN_PAGE.format(title=html.escape(self.title), note=note, action=LOGIN_PATH),
            status_code=status,
            headers={"cache-control": "no-store"},
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        response = JSONResponse({"error": message}, status_code=status, headers=extra)
        await response(scope, receive, send)


def _with_headers(send: Send) -> Send:
    """`send` that adds the security headers to the response start (keeping any already set)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            message["headers"] = list(message.get("headers", [])) + [
                (k, v) for k, v in SECURITY_HEADERS if k not in present
            ]
        await send(message)

    return sending


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip() or None
    return None


def _same_origin(headers: dict[str, str]) -> bool:
    """A form post whose Origin (when the browser sends one) is this server."""
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urllib.parse.urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit or not message.get("more_body"):
            return body[:limit]


def _form_field(body: bytes, name: str) -> str:
    try:
        values = urllib.parse.parse_qs(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return ""
    return (values.get(name) or [""])[0].strip()


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; display: flex; min-height: 90vh; align-items: center;
  justify-content: center; background: #f5f5f7; margin: 0; }}
form {{ background: #fff; padding: 1.6rem 1.8rem; border-radius: 10px; box-shadow: 0 2px 12px #0002;
  width: min(24rem, 90vw); }}
h1 {{ font-size: 1.3rem; margin: 0 0 .6rem 0; }}
p {{ color: #555; margin: .3rem 0 .9rem 0; }}
p.error {{ color: #b91c1c; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; margin-bottom: .8rem; }}
button {{ padding: .5rem 1.2rem; font-size: 1rem; background: #4f46e5; color: #fff; border: 0; border-radius: 6px; }}
</style></head>
<body><form method="post" action="{action}">
<h1>{title}</h1>
<p>This server needs its access token (QA_API_TOKEN) to sign in.</p>{note}
<input type="password" name="token" id="qa-token" autocomplete="current-password" placeholder="Access token" autofocus>
<button type="submit" id="qa-sign-in">Sign in</button>
</form></body></html>
"""
