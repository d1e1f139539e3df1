"""The public API: the names a user needs at the top of the package, imported only when first used,
and sub-packages whose `__all__` names what they export."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import pytest

import qa
from tests.conftest import REPO

PUBLIC = {
    "open_index": "qa.engine",
    "QA": "qa.engine",
    "Conversation": "qa.conversation",
    "Answer": "qa.types",
    "Passage": "qa.types",
    "Highlight": "qa.types",
    "Document": "qa.types",
    "Settings": "qa.config",
    "QAError": "qa.errors",
}


def test_the_top_level_exports_the_names_a_user_needs():
    assert sorted(qa.__all__) == sorted([*PUBLIC, "__version__"])
    assert set(qa.__all__) <= set(dir(qa))
    for name, module in PUBLIC.items():
        assert getattr(qa, name) is getattr(importlib.import_module(module), name)
    assert qa.__version__ == importlib.import_module("qa.versions").__version__
    with pytest.raises(AttributeError, match="no attribute 'Chunk'"):
        _ = qa.Chunk  # qa.types.Chunk is not a top-level name


def test_importing_the_package_imports_none_of_what_it_exports():
    probe = (
        "import json, sys, qa; from qa import QAError; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'faiss', 'qa'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["qa", "qa._lazy", "qa.errors", "qa.versions"]


def _packages() -> list[str]:
    return [f"qa.{m.name}" for m in pkgutil.iter_modules(qa.__path__) if m.ispkg]


def test_the_sub_packages_are_known():
    # A new sub-package belongs in this list once its `__all__` is decided.
    assert sorted(_packages()) == [
        "qa.answering",
        "qa.embedding",
        "qa.evaluation",
        "qa.ingest",
        "qa.retrieval",
        "qa.storage",
        "qa.testing",
        "qa.training",
        "qa.web",
    ]


@pytest.mark.parametrize("package", _packages())
def test_every_name_a_sub_package_exports_exists(package):
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", [])
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert getattr(module, name) is not None, f"{package}.{name}"
