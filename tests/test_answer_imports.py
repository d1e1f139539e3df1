"""`qa ask` imports only what answering needs: no web UI, torch, scipy, bm25s or langchain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qa.testing.imports import FORBIDDEN_ON_ANSWER, forbidden_on_answer, parse_importtime
from tests.conftest import REPO

PROBE = """
import json, sys
from qa.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _answer_modules(settings, extra_env: dict[str, str], *argv: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "QA_CORPUS": str(settings.corpus_dir),
            "QA_INDEX": str(settings.index_dir),
            "QA_CHUNK_SIZE": "48",
            "QA_CHUNK_OVERLAP": "8",
            **extra_env,
        }
    )
    subprocess.run([sys.executable, "-m", "qa", "index", "--quiet"], env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    return [m for m in result["modules"] if forbidden_on_answer(m)]


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_ask_and_docs_import_nothing_they_do_not_need(settings, mode):
    assert _answer_modules(settings, {"QA_MODEL": "hash"}, "ask", "crab quotas", "--mode", mode, "--json") == []
    assert _answer_modules(settings, {"QA_MODEL": "hash"}, "docs") == []


@pytest.mark.integration
def test_ask_with_the_real_model_imports_nothing_it_does_not_need(settings):
    assert _answer_modules(settings, {"QA_BACKEND": "onnx-int8"}, "ask", "what did Russia deploy?", "--json") == []


def test_forbidden_modules_and_importtime_parsing():
    assert FORBIDDEN_ON_ANSWER and forbidden_on_answer("scipy.sparse") and forbidden_on_answer("qa.web.app")
    assert not forbidden_on_answer("qa.web.options") and not forbidden_on_answer("scipyx")
    trace = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   numpy._core\n"
        "import time:       200 |       1300 | numpy\n"
        "import time:        50 |         50 | qa\n"
    )
    assert parse_importtime(trace) == [("numpy._core", 0.1, 1), ("numpy", 1.3, 0), ("qa", 0.05, 0)]
