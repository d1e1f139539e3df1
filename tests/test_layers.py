"""The architecture as import contracts (grimp builds the import graph of `qa`, function-level
and type-checking imports included): the interfaces sit on top and none imports another; nothing
below them imports an interface, the evaluation or the training code; test servers stay out of the
package's layers; and every module of the package sits in one layer of LAYERS, importing only the
layers below it, so that no two parts of the package import each other; and no module imports
itself at run time through others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

# The package's layers, top first: each imports only those below it (a set: parts of one layer
# that do not import each other; a Layer(..., independent=False): parts that may).
LAYERS = (
    "__main__",
    "cli",
    {"chat", "web"},  # the interfaces
    {"arguments", "formatting"},  # what the interfaces share: serve flags, an answer as text
    "training",
    "evaluation",
    "feedback",  # a reader's verdicts on a conversation's answers
    "conversation",  # a conversation's turns, asked of the engine
    "engine",  # qa.engine.QA: an open index that answers questions
    "answering",
    {"ingest", "retrieval"},
    "storage",
    "embedding",
    "config",
    # The floor: the data model, errors, versions, lexical analysis and small helpers.
    grimp.Layer("types", "errors", "versions", "terms", "vocabulary", "linear", "memo", "_lazy", independent=False),
)
OUTSIDE = {"testing"}  # test servers: no layer imports them

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


def _tails(layer) -> set[str]:
    if isinstance(layer, str):
        return {layer}
    if isinstance(layer, set):
        return layer
    return set(layer.module_tails)


def test_every_part_of_the_package_has_a_layer(graph):
    parts = {m.split(".")[1] for m in graph.modules if m != "qa"}
    placed = set().union(*(_tails(layer) for layer in LAYERS))
    assert parts - OUTSIDE == placed


def test_each_layer_imports_only_the_layers_below_it(graph):
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS, containers={"qa"})
    problems = sorted(
        f"{d.importer} imports {d.imported}: "
        + ", ".join(" -> ".join([*r.heads, *r.middle, *r.tails]) for r in d.routes)
        for d in illegal
    )
    assert not problems, "\n".join(problems)


def test_the_package_opens_an_index_from_above_the_engine(graph):
    """`qa.open_index` reaches the engine: only the layers above it may import the package itself."""
    above = set().union(*(_tails(layer) for layer in LAYERS[: LAYERS.index("engine")]))
    importers = {m.split(".")[1] for m in graph.find_modules_that_directly_import("qa")}
    assert importers <= above


def _on_cycles(imports: dict[str, set[str]]) -> list[str]:
    """The nodes of an import graph that lie on a cycle or lead to one."""
    # Take away the nodes that import nothing left, until none is left; what stays is on a cycle.
    while True:
        leaves = {p for p, imported in imports.items() if not imported & imports.keys()}
        if not leaves:
            return sorted(imports)
        imports = {p: imported for p, imported in imports.items() if p not in leaves}


def test_no_two_parts_of_the_package_import_each_other(graph):
    """The parts of qa (its sub-packages and top modules, the package itself) form no import cycle."""

    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    imports: dict[str, set[str]] = {}
    for module in graph.modules:
        found = imports.setdefault(part(module), set())
        found.update(part(m) for m in graph.find_modules_directly_imported_by(module) if part(m) != part(module))
    assert not _on_cycles(imports), f"parts on or above an import cycle: {_on_cycles(imports)}"


def test_no_module_imports_itself_at_run_time():
    """No import cycle between modules, type-checking imports aside (the postgres store's parts name
    the store that made them in their type hints)."""
    runtime = grimp.build_graph("qa", exclude_type_checking_imports=True, cache_dir=None)  # grimp's cache mixes the two
    imports = {m: runtime.find_modules_directly_imported_by(m) for m in runtime.modules}
    assert not _on_cycles(imports), f"modules on or above an import cycle: {_on_cycles(imports)}"


def test_no_test_uses_the_measuring_scripts():
    """bench/ only measures: what a test needs of it lives in the package (qa.testing)."""
    offenders = []
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n == "bench" or n.startswith("bench.")]
    assert not offenders
