"""The app's layout and start-up options: ports, host, admin access, the `qa serve` command."""

from __future__ import annotations

import argparse

import pytest

from qa.cli import COMMANDS, build_parser, cmd_serve
from qa.config import Settings
from qa.engine import open_index
from qa.errors import QAError
from qa.web.app import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ChatHandlers,
    add_serve_arguments,
    build_app,
    resolve_options,
    resolve_port,
)
from tests.web_helpers import write_corpus


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, paths=True)
    return parser.parse_args(argv)


def test_port_precedence():
    assert resolve_port(None, {}) == DEFAULT_PORT == 7860
    assert resolve_port(None, {"GRADIO_SERVER_PORT": " 8123 "}) == 8123
    assert resolve_port(9001, {"GRADIO_SERVER_PORT": "8123"}) == 9001
    with pytest.raises(QAError, match="not a port number"):
        resolve_port(None, {"GRADIO_SERVER_PORT": "eighty"})
    with pytest.raises(QAError, match="between 1 and 65535"):
        resolve_port(70000, {})


def test_defaults_bind_locally_without_admin():
    options = resolve_options(_args(), env={})
    assert options == {
        "host": DEFAULT_HOST,
        "port": DEFAULT_PORT,
        "admin_password": None,
        "max_upload_mb": 20.0,
        "api_token": None,
        "concurrency": 4,
        "allowed_hosts": (),
        "cors_origins": (),
    }
    assert DEFAULT_HOST == "127.0.0.1"


def test_flags_and_environment():
    env = {"QA_ADMIN_PASSWORD": "from-env", "QA_MAX_UPLOAD_MB": "5", "GRADIO_SERVER_NAME": "0.0.0.0"}
    options = resolve_options(_args(), env=env)
    assert (options["host"], options["admin_password"], options["max_upload_mb"]) == ("0.0.0.0", "from-env", 5.0)
    options = resolve_options(
        _args("--host", "::1", "--port", "8000", "--admin-password", "flag", "--max-upload-mb", "2"), env=env
    )
    assert (options["host"], options["port"], options["admin_password"], options["max_upload_mb"]) == (
        "::1",
        8000,
        "flag",
        2.0,
    )
    with pytest.raises(QAError, match="QA_MAX_UPLOAD_MB"):
        resolve_options(_args(), env={"QA_MAX_UPLOAD_MB": "lots"})
    with pytest.raises(QAError, match="upload limit"):
        resolve_options(_args("--max-upload-mb", "0"), env={})


def test_qa_serve_command():
    args = build_parser().parse_args(["serve", "--port", "8765", "--corpus", "c", "--admin-password", "pw"])
    assert (args.command, args.port, args.corpus, args.admin_password) == ("serve", 8765, "c", "pw")
    assert COMMANDS["serve"] is cmd_serve


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-app")
    return open_index(
        settings=Settings(corpus_dir=write_corpus(folder / "corpus"), index_dir=folder / "index", model="hash")
    )


def _layout(handlers: ChatHandlers) -> tuple[list[str], dict[str, str]]:
    config = build_app(handlers).get_config_file()
    tabs = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    endpoints = {d["api_name"]: d["api_visibility"] for d in config["dependencies"]}
    return tabs, endpoints


def test_reader_app_has_no_index_tab_and_one_public_endpoint(engine):
    tabs, endpoints = _layout(ChatHandlers(engine))
    assert tabs == ["Chat"]
    assert [name for name, visibility in endpoints.items() if visibility != "private"] == ["ask"]
    assert not any(name.startswith(("do_update", "do_add", "do_unlock")) for name in endpoints)


def test_admin_app_adds_the_index_tab_with_private_actions(engine):
    tabs, endpoints = _layout(ChatHandlers(engine, admin_password="pw"))
    assert tabs == ["Chat", "Index"]
    for name in ("do_unlock", "do_add", "do_update"):
        assert endpoints[name] == "private"
    assert [name for name, visibility in endpoints.items() if visibility != "private"] == ["ask"]


def test_main_reports_a_bad_corpus_without_traceback(tmp_path, capsys, monkeypatch):
    from qa.web.server import main

    monkeypatch.setenv("QA_MODEL", "hash")
    code = main(["--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "index"), "--port", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert "qa: error: corpus folder" in err and "Traceback" not in err
