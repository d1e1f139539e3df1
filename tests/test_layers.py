"""The architecture as import contracts (grimp builds the import graph of `qa`, function-level
imports included): the interfaces sit on top and none imports another; nothing below them imports
an interface, the evaluation or the training code; test servers stay out of the package's layers."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp")

INTERFACES = ("qa.cli", "qa.chat", "qa.web")
TOOLS = ("qa.evaluation", "qa.training")
LOWER = (
    "qa.types",
    "qa.errors",
    "qa.config",
    "qa.storage",
    "qa.ingest",
    "qa.embedding",
    "qa.retrieval",
    "qa.answering",
)


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("qa")


def _importers(graph, target: str) -> set[str]:
    """Modules outside `target` (a module or package) that import something inside it directly."""
    found = set()
    for module in graph.modules:
        if module == target or module.startswith(target + "."):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == target or imported.startswith(target + "."):
                found.add(module)
    return found


def _inside(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_only_the_command_line_entry_imports_the_cli(graph):
    assert _importers(graph, "qa.cli") <= {"qa.__main__"}


@pytest.mark.parametrize("interface", ["qa.chat", "qa.web"])
def test_no_interface_imports_another(graph, interface):
    assert _importers(graph, interface) <= {"qa.cli"}


def test_training_is_reached_only_from_the_cli(graph):
    assert _importers(graph, "qa.training") <= {"qa.cli"}


def test_test_servers_are_outside_the_layers(graph):
    assert _importers(graph, "qa.testing") == set()


@pytest.mark.parametrize("upper", INTERFACES + TOOLS)
def test_the_lower_layers_import_nothing_above_them(graph, upper):
    offenders = {m for m in _importers(graph, upper) if _inside(m, LOWER)}
    assert not offenders, f"{sorted(offenders)} import {upper}"
