from __future__ import annotations

import json

import pytest

from qa.cli import main


@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("QA_CORPUS", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", "hash")
    monkeypatch.setenv("QA_CHUNK_SIZE", "48")
    monkeypatch.setenv("QA_CHUNK_OVERLAP", "8")
    monkeypatch.setenv("QA_MIN_RELEVANCE", "0")
    return settings


def test_ask_json_builds_index_and_cites(cli_env, capsys):
    assert main(["ask", "--json", "S-300V4", "deployed", "to", "the", "Kurils"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["question"] == "S-300V4 deployed to the Kurils"
    top = data["passages"][0]
    assert top["doc_id"] == "kurils" and top["source"] == "kurils.md"
    assert top["highlight"]["text"] in top["text"]


def test_ask_text_output_and_show_span(cli_env, capsys):
    assert main(["ask", "crab quotas", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "[1]" in out and "fishing.txt" in out and "best sentence" in out
    assert main(["show", "kurils", "--span", "2:13"]) == 0
    assert capsys.readouterr().out == "Deployments\n"
    assert main(["show", "kurils.md", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["author"] == "Anna Petrova"


def test_docs_lists_documents(cli_env, capsys):
    assert main(["docs", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {d["doc_id"] for d in listing["documents"]} == {"fishing", "kurils", "tokyo"}
    assert listing["failed"] == []
    assert main(["docs"]) == 0
    assert "3 documents" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "   "], "question is empty"),
        (["show", "nothing-here"], "no document"),
        (["show", "kurils", "--span", "5:1"], "outside the document"),
        (["show", "kurils", "--span", "a:b"], "START:END"),
        (["ask", "x", "-k", "0"], "between 1 and"),
    ],
)
def test_errors_are_one_line_without_traceback(cli_env, capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_corpus_error(cli_env, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("QA_CORPUS", str(tmp_path / "none"))
    monkeypatch.setenv("QA_INDEX", str(tmp_path / "idx"))
    assert main(["index"]) == 1
    assert "corpus folder" in capsys.readouterr().err


def test_stale_index_warning(cli_env, capsys):
    assert main(["index", "--quiet"]) == 0
    (cli_env.corpus_dir / "late.md").write_text("A late entry.", encoding="utf-8")
    capsys.readouterr()
    assert main(["ask", "crab quotas"]) == 0
    assert "new, changed or removed since the index was built (late.md); run `qa index`" in capsys.readouterr().err


def test_bad_environment_value(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("QA_CHUNK_SIZE", "big")
    assert main(["index"]) == 1
    assert "QA_CHUNK_SIZE" in capsys.readouterr().err
