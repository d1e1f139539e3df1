"""Issue 38's findings against a real server (`python app.py`, hash model, loopback), tried as an
attacker would: files the server can read, the token on every route, hosts, CORS and headers."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from tests.security.helpers import SECRET, PageSession, file_payload, served_file_urls
from tests.web_helpers import running_app, write_corpus

httpx = pytest.importorskip("httpx")

PASSWORD = "analyst-password-123"
TOKEN = "security-token-0123456789abcdef"
QUESTION = "What did Russia deploy to the Kuril islands?"


def _secret_file(folder):
    secret = folder / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(f"{SECRET}\n", encoding="utf-8")
    return secret


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """No token (the default), analyst access on."""
    folder = tmp_path_factory.mktemp("security-open")
    corpus, secret = write_corpus(folder / "corpus"), _secret_file(folder)
    with running_app(corpus, folder / "index", folder / "app.log", QA_ADMIN_PASSWORD=PASSWORD) as url:
        yield url, corpus, secret


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    """QA_API_TOKEN and QA_ADMIN_PASSWORD set, as in the issue's reproductions."""
    folder = tmp_path_factory.mktemp("security-token")
    corpus, secret = write_corpus(folder / "corpus"), _secret_file(folder)
    env = {"QA_ADMIN_PASSWORD": PASSWORD, "QA_API_TOKEN": TOKEN}
    with running_app(corpus, folder / "index", folder / "app.log", **env) as url:
        yield url, corpus, secret


def _history_with(path: str) -> list:
    return [{"role": "user", "content": [{"type": "file", "file": file_payload(path)}]}]


def _chat_data(path: str) -> list:
    return ["hi", _history_with(path), None, 5, "hybrid", [], "", "", "", True]


def _assert_nothing_served(client, replies: list, secret_text: str = SECRET) -> None:
    for url in served_file_urls(replies):
        target = url if url.startswith(("http", "/gradio_api")) else f"/gradio_api/file={url}"
        response = client.get(target)
        assert secret_text not in response.text, url
    for reply in replies:
        assert secret_text not in str(reply)


# -- finding 1: the chat's history named files for Gradio to serve --------------------------------
@pytest.mark.parametrize("target", ["secret", "/proc/self/environ", "/etc/hostname"])
def test_a_client_sent_history_cannot_make_the_server_serve_a_file(open_server, target):
    url, _, secret = open_server
    path = str(secret) if target == "secret" else target
    expected = SECRET if target == "secret" else None
    with httpx.Client(base_url=url, timeout=60) as client:
        replies = []
        # The reproduction (the handler's old name), then every way to reach the chat's handler.
        for name in ("respond", "chat_turn"):
            started = client.post(f"/gradio_api/call/{name}", json={"data": _chat_data(path)})
            replies.append(started.text)
            if started.status_code == 200 and "event_id" in started.text:
                replies.append(client.get(f"/gradio_api/call/{name}/{started.json()['event_id']}").text)
        replies.append(PageSession(client).call("chat_turn", _chat_data(path)))
        # Nothing outside Gradio's cache is served directly either.
        direct = client.get(f"/gradio_api/file={path}")
        assert direct.status_code in (403, 404), direct.text[:200]
        if expected:
            _assert_nothing_served(client, replies, expected)
        else:
            for reply_url in served_file_urls(replies):
                assert urllib.parse.unquote(reply_url).rsplit("/", 1)[-1] not in ("environ", "hostname")
            assert "QA_ADMIN_PASSWORD" not in str(replies)


def test_the_chat_still_answers_after_the_attempt(open_server):
    """The chat's history is the server's own: a forged one is ignored, the turn is answered."""
    url, _, secret = open_server
    with httpx.Client(base_url=url, timeout=60) as client:
        page = PageSession(client)
        reply = page.call("chat_turn", [QUESTION, _history_with(str(secret)), None, 5, "hybrid", [], "", "", "", True])
        assert reply.get("success", True), reply
        history = reply["output"]["data"][0]
        assert [m["role"] for m in history] == ["user", "assistant"]  # the forged turn is not there
        assert "S-300V4" in str(history)


# -- finding 2: "Add to corpus" took any server path ----------------------------------------------
def test_add_to_corpus_takes_only_files_uploaded_through_the_page(open_server):
    url, corpus, secret = open_server
    before = sorted(p.name for p in corpus.iterdir())
    with httpx.Client(base_url=url, timeout=60) as client:
        page = PageSession(client)
        unlocked = page.call("do_unlock", [PASSWORD])
        assert unlocked["output"]["data"][3].startswith("Unlocked")  # (the flag itself stays on the server)
        for path in (str(secret), "/etc/hostname"):
            reply = page.call("do_add", [True, [file_payload(path)], True])
            assert "added" not in str(reply.get("output", {}).get("data", [""])[0])
        # A real upload still goes in.
        uploaded = client.post("gradio_api/upload", files={"files": ("sakhalin.md", b"# Sakhalin\n\nLNG exports.")})
        assert uploaded.status_code == 200
        good = {**file_payload(uploaded.json()[0]), "orig_name": "sakhalin.md"}
        report = page.call("do_add", [True, [good], False])["output"]["data"][0]
        assert "added" in report
    after = sorted(p.name for p in corpus.iterdir())
    assert after == sorted([*before, "sakhalin.md"])
    assert all(SECRET not in p.read_text(errors="replace") for p in corpus.iterdir() if p.is_file())


# -- finding 4: the token guarded /api and /mcp only ----------------------------------------------
GUARDED = (
    ("POST", "/gradio_api/call/ask", {"data": [QUESTION, 3, "hybrid"]}),
    ("POST", "/gradio_api/run/ask", {"data": [QUESTION, 3, "hybrid"]}),
    ("POST", "/gradio_api/call/chat_turn", {"data": [QUESTION, [], None, 5, "hybrid", [], "", "", "", True]}),
    ("POST", "/gradio_api/call/open_document", {"data": []}),
    ("POST", "/gradio_api/queue/join", {"data": [QUESTION], "fn_index": 0, "session_hash": "x"}),
    ("GET", "/gradio_api/queue/data?session_hash=x", None),
    ("GET", "/gradio_api/info", None),
    ("GET", "/gradio_api/file=/etc/hostname", None),
    ("POST", "/gradio_api/upload", None),
    ("GET", "/gradio_api/heartbeat/x", None),
    ("POST", "/api/v1/ask", {"question": QUESTION}),
    ("GET", "/api/v1/documents/kurils", None),
    ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
    ("GET", "/corpus/kurils.md", None),
    ("GET", "/corpus-page/kurils.md?page=1", None),
)


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[p for _, p, _ in GUARDED])
def test_with_a_token_no_route_answers_without_it(guarded_server, method, path, body):
    url, *_ = guarded_server
    headers = {"accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text[:300]
        assert "token" in response.json()["error"]
        wrong = client.request(method, path, json=body, headers={**headers, "Authorization": "Bearer wrong-wrong"})
        assert wrong.status_code == 401
        cookie = client.request(method, path, json=body, headers=headers, cookies={"qa_session": "forged"})
        assert cookie.status_code == 401
    assert "S-300V4" not in response.text


def test_with_a_token_the_page_shows_a_sign_in_and_its_layout_no_documents(guarded_server):
    url, *_ = guarded_server
    with httpx.Client(base_url=url, timeout=60) as client:
        page = client.get("/", headers={"accept": "text/html"})
        assert page.status_code == 200 and 'name="token"' in page.text and "Sign in" in page.text
        layout = client.get("/config")
        assert layout.status_code == 200
    for text in ("S-300V4", "kurils", "Deployments on the Kuril islands", "Anna Petrova"):
        assert text not in layout.text


def test_the_token_opens_every_route(guarded_server):
    gradio_client = pytest.importorskip("gradio_client")
    url, *_ = guarded_server
    auth = {"Authorization": f"Bearer {TOKEN}"}
    answer = gradio_client.Client(url, headers=auth, verbose=False, download_files=False).predict(
        QUESTION, 3, "hybrid", api_name="/ask"
    )
    assert "S-300V4" in answer["answer"]
    with httpx.Client(base_url=url, timeout=60, headers=auth) as client:
        assert client.post("/api/v1/ask", json={"question": QUESTION}).status_code == 200
        original = client.get("/corpus/kurils.md")
        assert original.status_code == 200 and "S-300V4" in original.text
        assert original.headers["content-disposition"].startswith("attachment")
        reply = PageSession(client).call("chat_turn", [QUESTION, [], None, 5, "hybrid", [], "", "", "", True])
        assert "S-300V4" in str(reply["output"]["data"][0])


def test_signing_in_sets_a_session_cookie_the_chat_accepts(guarded_server):
    url, *_ = guarded_server
    with httpx.Client(base_url=url, timeout=60) as client:
        wrong = client.post("/login", data={"token": "not-the-token"})
        assert wrong.status_code == 401 and "Wrong token" in wrong.text and "qa_session" not in client.cookies
        foreign = client.post("/login", data={"token": TOKEN}, headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403 and "qa_session" not in client.cookies
        signed = client.post("/login", data={"token": TOKEN})
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert 'name="token"' not in client.get("/").text  # the chat itself now
        reply = PageSession(client).call("chat_turn", [QUESTION, [], None, 5, "hybrid", [], "", "", "", True])
        assert "S-300V4" in str(reply["output"]["data"][0])
        # The REST API and MCP still take the header only.
        assert client.post("/api/v1/ask", json={"question": QUESTION}).status_code == 401
        client.get("/logout")
        assert client.post("/gradio_api/call/ask", json={"data": [QUESTION, 3, "hybrid"]}).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/corpus/%2E%2E/outside/secret.txt",
        "/corpus/..%2Foutside%2Fsecret.txt",
        "/corpus/{secret}",
        "/corpus/{secret_encoded}",
        "/corpus-page/%2E%2E/outside/secret.txt?page=1",
        "/corpus-page/{secret}?page=1",
    ],
)
def test_the_originals_route_serves_nothing_outside_the_index(open_server, path):
    url, _, secret = open_server
    path = path.format(secret=secret, secret_encoded=urllib.parse.quote(str(secret), safe=""))
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert "no document" in response.json()["error"]  # refused by the route, not missed by it
        assert SECRET not in response.text


# -- finding 7: hosts, CORS, frames, the API docs offline -------------------------------------------
@pytest.mark.parametrize("path", ["/", "/config", "/api/v1/health", "/api/v1/docs", "/mcp", "/gradio_api/info"])
def test_other_host_headers_are_refused_on_every_route(open_server, path):
    url, *_ = open_server
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.get(path, headers={"host": "evil.example"})
        assert response.status_code == 400 and "Host" in response.json()["error"]
        assert client.get("/config", headers={"host": "localhost"}).status_code == 200


@pytest.mark.parametrize("path", ["/config", "/gradio_api/info", "/api/v1/health", "/gradio_api/file=x"])
def test_no_cross_origin_access_unless_configured(open_server, path):
    url, *_ = open_server
    origin = "http://localhost:9999"
    with httpx.Client(base_url=url, timeout=30) as client:
        simple = client.get(path, headers={"origin": origin})
        assert "access-control-allow-origin" not in simple.headers
        assert "access-control-allow-credentials" not in simple.headers
        preflight = client.options(path, headers={"origin": origin, "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("path", ["/", "/config", "/api/v1/docs", "/api/v1/health", "/gradio_api/info"])
def test_frame_and_content_security_headers(open_server, path):
    url, *_ = open_server
    with httpx.Client(base_url=url, timeout=30) as client:
        headers = client.get(path).headers
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_the_api_docs_load_nothing_from_outside(open_server):
    url, *_ = open_server
    with httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/api/v1/docs")
        assert page.status_code == 200
        sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        sources += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
        assert sources and not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
        for source in sources:
            assert client.get(source).status_code == 200, source


def test_the_analyst_lockout_is_per_client(open_server):
    """Five wrong passwords lock that client out; the analyst's own client can still unlock."""
    from qa.web.app import AdminGate

    gate = AdminGate(PASSWORD)
    for _ in range(5):
        ok, message = gate.check("wrong", client="203.0.113.7")
    assert not ok and "locked" in message
    assert gate.check(PASSWORD, client="203.0.113.7")[0] is False  # the guesser waits
    assert gate.check(PASSWORD, client="198.51.100.2") == (
        True,
        "Unlocked: you can add documents and update the index.",
    )
    url, *_ = open_server
    with httpx.Client(base_url=url, timeout=60) as client:
        page = PageSession(client)
        for _ in range(6):
            page.call("do_unlock", ["wrong password"])
        # Every test client shares 127.0.0.1, so this is the same client: it is locked, and says so.
        assert "Too many" in page.call("do_unlock", [PASSWORD])["output"]["data"][3]
