"""End to end: `python app.py` on a free local port, asked through gradio_client."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

gradio_client = pytest.importorskip("gradio_client")

from tests.web_helpers import REPO, app_env, running_app, write_corpus  # noqa: E402

QUESTION = "What did Russia deploy to the Kuril islands?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-e2e")
    corpus, index = write_corpus(folder / "corpus"), folder / "index"
    with running_app(corpus, index, folder / "app.log") as url:
        yield url, corpus, index


def cli_json(corpus, index, *argv: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "qa", "ask", "--json", *argv],
        cwd=REPO,
        env=app_env(corpus, index),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_ask_endpoint_returns_the_cli_json(server):
    url, corpus, index = server
    client = gradio_client.Client(url, verbose=False)
    answer = client.predict(QUESTION, api_name="/ask")
    assert answer == cli_json(corpus, index, QUESTION)
    assert answer["passages"] and answer["passages"][0]["highlight"]["text"]
    assert set(answer) == {"question", "answer", "more", "passages", "mode", "searched_query", "notes"}


def test_ask_endpoint_optional_k_and_mode(server):
    url, corpus, index = server
    client = gradio_client.Client(url, verbose=False)
    answer = client.predict(QUESTION, 1, "lexical", api_name="/ask")
    assert answer["mode"] == "lexical" and len(answer["passages"]) == 1
    assert answer == cli_json(corpus, index, "-k", "1", "--mode", "lexical", QUESTION)


def test_ask_endpoint_errors_are_messages(server):
    url, *_ = server
    client = gradio_client.Client(url, verbose=False)
    with pytest.raises(Exception, match="The question is empty") as info:
        client.predict("   ", api_name="/ask")
    assert "Traceback" not in str(info.value)
    with pytest.raises(Exception, match="Unknown retrieval mode"):
        client.predict(QUESTION, 3, "bogus", api_name="/ask")


def test_only_ask_is_public_and_no_index_tab(server):
    url, *_ = server
    client = gradio_client.Client(url, verbose=False)
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/ask"]
    with urllib.request.urlopen(url + "config", timeout=10) as response:
        config = json.load(response)
    labels = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    assert labels == ["Chat"]


def test_concurrent_questions(server):
    from concurrent.futures import ThreadPoolExecutor

    url, *_ = server
    questions = [
        QUESTION,
        "Abe Putin Nagato economic plan",
        "crab salmon quotas trawlers",
        "garrison on Iturup received Bastion launchers",
    ] * 2

    def ask(question):
        return gradio_client.Client(url, verbose=False).predict(question, 2, "hybrid", api_name="/ask")

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, questions))
    assert [a["question"] for a in answers] == questions
    assert all(a["passages"] for a in answers)
    assert answers[:4] == answers[4:]
