"""Issue 38, finding 3: hostile files are read within limits (pages, decompressed bytes, memory
and time, in a worker process), by `qa index` and uploads alike; a file over a limit is skipped
with its reason and nothing else is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qa.config import Settings
from qa.errors import QAError
from qa.ingest.isolation import IsolatedParser
from qa.ingest.parsing import ParseLimits, ReadError
from qa.web.uploads import store_uploads
from tests.conftest import REPO
from tests.pdfgen import make_bomb_pdf, make_pdf


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """The issue's 40-page bomb: each page's stream inflates to 70 MB (2.8 GB in all)."""
    return make_bomb_pdf(40, 70)


MEASURE = """
import json, resource, sys
from qa.config import Settings
from qa.ingest.indexer import update_index
settings = Settings(corpus_dir=sys.argv[1], index_dir=sys.argv[2], model="hash", min_relevance=0.0)
report = update_index(settings)
print(json.dumps({
    "failed": {f["path"]: f["reason"] for f in report.failed},
    "added": sorted(report.added),
    "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def test_qa_index_skips_the_bomb_with_its_reason_and_indexes_the_rest(tmp_path, bomb):
    """Indexing in a fresh process, so that its peak memory (and its worker's) is this run's alone."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bomb.pdf").write_bytes(bomb)
    (corpus / "good.pdf").write_bytes(make_pdf(["Russia deployed missiles to the Kuril islands."]))
    (corpus / "notes.md").write_text("# Notes\n\nJapan protested.\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, str(corpus), str(tmp_path / "index")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(result["failed"]) == {"bomb.pdf"} and "safety limit" in result["failed"]["bomb.pdf"]
    assert result["added"] == ["good.pdf", "notes.md"]
    assert result["self_mb"] < 500 and result["worker_mb"] < 500, result


def test_the_worker_enforces_memory_and_time(bomb):
    # With pypdf's own stream limit lifted, the memory cap stops the bomb in the worker.
    loose = ParseLimits(memory_mb=192, stream_bytes=10**10)
    with IsolatedParser(loose) as parser:
        with pytest.raises(ReadError, match=r"more than 192 MB of memory.*QA_PARSE_MEMORY_MB"):
            parser.parse("bomb.pdf", bomb)
        # The next file gets a fresh worker.
        assert "Kuril" in parser.parse("ok.pdf", make_pdf(["The Kuril islands."])).text
    with (
        IsolatedParser(ParseLimits(seconds=0.01)) as parser,
        pytest.raises(ReadError, match=r"longer than 0\.01 s.*QA_PARSE_SECONDS"),
    ):
        parser.parse("slow.pdf", bomb)


def test_too_many_pages_is_a_reason_not_a_crash():
    pdf = make_pdf([f"Page {i} text." for i in range(12)])
    with IsolatedParser(ParseLimits(pages=10)) as parser, pytest.raises(ReadError, match=r"12 pages.*QA_MAX_PAGES"):
        parser.parse("long.pdf", pdf)


def test_uploads_read_files_within_the_same_limits(tmp_path, bomb):
    received = tmp_path / "received"
    received.mkdir()
    (received / "bomb.pdf").write_bytes(bomb)
    (received / "good.md").write_text("# Good\n\nA good entry.\n", encoding="utf-8")
    results = store_uploads(
        tmp_path / "corpus",
        [("bomb.pdf", received / "bomb.pdf"), ("good.md", received / "good.md")],
        max_bytes=20_000_000,
    )
    by_name = {r.name: r for r in results}
    assert by_name["bomb.pdf"].status == "rejected" and "safety limit" in by_name["bomb.pdf"].detail
    assert by_name["good.md"].status == "added"
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == ["good.md"]


def test_limits_are_settings_with_clear_errors():
    assert Settings.from_env({"QA_PARSE_MEMORY_MB": "256", "QA_MAX_PAGES": "50"}).parse_memory_mb == 256
    with pytest.raises(QAError, match="QA_PARSE_MEMORY_MB must be between"):
        Settings.from_env({"QA_PARSE_MEMORY_MB": "1"})
    with pytest.raises(QAError, match="QA_PARSE_SECONDS must be between"):
        Settings.from_env({"QA_PARSE_SECONDS": "0"})
    with pytest.raises(QAError, match="QA_MAX_PAGES must be a positive"):
        Settings.from_env({"QA_MAX_PAGES": "0"})
