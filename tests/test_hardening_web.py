"""Hardening of the web chat (issue 6): readers while updates swap in, the server's address,
upload limits and admin access as a hostile client sees them, and a small load run.

Escaping of questions, documents and errors is in test_web.py and test_browser.py; upload
names in test_web_uploads.py; the full 50 x 20 load benchmark is `python -m bench.load`.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from qa.config import Settings
from qa.engine import open_index
from qa.storage.local.snapshot import IndexLayout
from qa.web.app import ChatHandlers, new_context
from tests.test_hardening import HOSTILE_QUESTIONS
from tests.web_helpers import assert_inert, running_app, web_settings, write_corpus

QUESTION = "What did Russia deploy to the Kuril islands?"
PASSWORD = "hardening-test-password"
UPLOAD_LIMIT_BYTES = 50_000


def _upload(folder: Path, name: str, text: str) -> dict:
    path = folder / uuid.uuid4().hex
    path.write_text(text, encoding="utf-8")
    return {"path": str(path), "orig_name": name}


@pytest.fixture(scope="module")
def handlers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hardening-handlers")
    settings = Settings(
        corpus_dir=write_corpus(folder / "corpus"), index_dir=folder / "index", model="hash", min_relevance=0.0
    )
    return ChatHandlers(open_index(settings=settings))


@pytest.mark.parametrize("name", list(HOSTILE_QUESTIONS))
def test_hostile_questions_in_the_chat(handlers, name):
    question = HOSTILE_QUESTIONS[name]
    history, box, context, _ = handlers.respond(question, [], new_context())
    asked, reply = history[-2]["content"], history[-1]["content"]
    assert history[-1]["role"] == "assistant" and box == "" and len(context.turns) == 1
    assert "qa-error" not in reply  # an answer or "nothing found", never a failure
    assert_inert(asked)
    assert_inert(reply)
    if len(question) > 2000:
        assert "the question was cut to its first 2000 characters" in reply


def test_readers_keep_answering_while_updates_swap_in(tmp_path):
    """Chat readers, the document viewer and freshly opened engines (as `qa ask` opens one)
    keep working while an analyst publishes twelve updates in a row; each publish removes
    the snapshot before the previous one, which slow readers may still be opening."""
    settings = web_settings(tmp_path)
    engine = open_index(settings=settings)
    admin = ChatHandlers(engine, admin_password=PASSWORD)
    stop = threading.Event()
    errors: list[str] = []
    done: dict[str, int] = {}

    def loop(name, body):
        count = 0
        while not stop.is_set():
            try:
                problem = body()
            except Exception as exc:  # every failure is the finding
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                errors.append(f"{name}: {problem}")
                return
            count += 1
        done[name] = count

    def chat():
        history, *_ = admin.respond(QUESTION, [], new_context())
        reply = history[-1]["content"]
        return "" if "qa-card" in reply and "qa-error" not in reply else reply[:300]

    def viewer():
        html = admin.open_document({"doc": "kurils", "start": 0, "end": 20})
        return "" if "qa-doc-body" in html else html[:300]

    def fresh_engine():
        other = open_index(settings=settings, build=False)
        try:
            return "" if other.ask("crab salmon quotas trawlers").passages else "no passages"
        finally:
            other.snapshot.close()

    threads = [threading.Thread(target=loop, args=(f"chat{i}", chat)) for i in range(3)]
    threads += [threading.Thread(target=loop, args=("viewer", viewer))]
    threads += [threading.Thread(target=loop, args=("fresh", fresh_engine))]
    uploads = tmp_path / "received"
    uploads.mkdir()
    for thread in threads:
        thread.start()
    try:
        for i in range(12):
            added = admin.add_uploads(True, [_upload(uploads, f"extra{i}.md", f"Extra entry {i} about Sakhalin.")])
            assert "1 of 1 file(s) saved" in added
            assert "1 added" in admin.update_index(True)
            if errors:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors
    assert set(done) == {"chat0", "chat1", "chat2", "viewer", "fresh"} and min(done.values()) > 0
    assert engine.stats()["documents"] == 4 + 12
    assert len(list(IndexLayout(settings.index_dir).snapshots.iterdir())) == 2  # no pile-up


# -- a real server, as a hostile client on loopback sees it ---------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hardening-web")
    corpus, index = write_corpus(folder / "corpus"), folder / "index"
    env = {"QA_ADMIN_PASSWORD": PASSWORD, "QA_MAX_UPLOAD_MB": str(UPLOAD_LIMIT_BYTES / 1e6)}
    with running_app(corpus, index, folder / "app.log", **env) as url:
        yield url, corpus, index


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (Linux /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, state = fields[1], fields[3]
            host, port_hex = address.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(_decode_address(host))
    return found


def _decode_address(host: str) -> str:
    import ipaddress

    raw = bytes.fromhex(host)
    # /proc stores each 32-bit word in host (little-endian) order.
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))


def test_server_listens_on_loopback_only(server):
    url, *_ = server
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp")
    assert _listening_addresses(port) == {"127.0.0.1"}


def _queue_call(client, config: dict, api_name: str, data: list) -> list:
    """Call any event handler the way the page does (POST /queue/join, then read the event stream)."""
    [dependency] = [d for d in config["dependencies"] if d.get("api_name") == api_name]
    session = uuid.uuid4().hex
    joined = client.post(
        "gradio_api/queue/join",
        json={"data": data, "fn_index": dependency["id"], "session_hash": session, "event_data": None},
    )
    assert joined.status_code == 200, joined.text
    with client.stream("GET", f"gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    assert message.get("success", True), message
                    return message["output"]["data"]
    raise AssertionError("the event stream ended without a result")


def test_forged_unlock_cannot_upload_or_update(server):
    """The Index tab's handlers are reachable by anyone who reads the page's config, but the
    'unlocked' flag lives in the server's session state: a client sending True is ignored."""
    httpx = pytest.importorskip("httpx")
    url, corpus, index = server
    before = sorted(p.name for p in corpus.iterdir())
    snapshot = IndexLayout(index).current_name()
    with httpx.Client(base_url=url, timeout=60) as client:
        config = client.get("config").json()
        uploaded = client.post("gradio_api/upload", files={"files": ("forged.md", b"# Forged\n\nForged text.")})
        assert uploaded.status_code == 200
        file = {"path": uploaded.json()[0], "orig_name": "forged.md", "meta": {"_type": "gradio.FileData"}}
        report, *_ = _queue_call(client, config, "do_add", [True, [file], True])
        assert "Unlock the Index tab with the analyst password first" in report
        report, *_ = _queue_call(client, config, "do_update", [True, True])
        assert "Unlock the Index tab with the analyst password first" in report
        _, _, _, message, *_ = _queue_call(client, config, "do_unlock", ["wrong password"])
        assert message == "Wrong password."  # (the session state itself never leaves the server)
    assert sorted(p.name for p in corpus.iterdir()) == before
    assert IndexLayout(index).current_name() == snapshot


def test_uploads_over_the_limit_are_refused_by_the_server(server):
    httpx = pytest.importorskip("httpx")
    url, corpus, _ = server
    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("gradio_api/upload", files={"files": ("big.md", b"word " * 20_000)})  # 100 KB
    assert response.status_code == 413
    assert f"{UPLOAD_LIMIT_BYTES} bytes" in response.text
    assert not (corpus / "big.md").exists()


def test_hostile_questions_through_the_api(server):
    gradio_client = pytest.importorskip("gradio_client")
    url, *_ = server
    client = gradio_client.Client(url, verbose=False, download_files=False)
    for question in HOSTILE_QUESTIONS.values():
        answer = client.predict(question, 3, "hybrid", api_name="/ask")
        assert len(answer["question"]) <= 2000 and "\x00" not in answer["question"]
    answer = client.predict("crab quotas " * 10_000, api_name="/ask")  # 120 KB
    assert answer["notes"] == ["the question was cut to its first 2000 characters"]
    assert answer["passages"][0]["source"] == "fishing.txt"


def test_load_10_clients_x_5_questions_without_errors(server):
    pytest.importorskip("gradio_client")
    from qa.testing.load import run_load

    url, *_ = server
    result = run_load(url, clients=10, questions=5)
    assert result.questions == 50
    assert result.errors == 0, result.error_samples
    assert 0 < result.latency_p50_s <= result.latency_p95_s <= result.latency_max_s
    assert result.throughput_qps > 0
