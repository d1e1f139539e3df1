"""The README stays short and its links resolve; the re-run examples of the README and the
documentation pages can run on a fresh clone (the saved results they print are kept), and
scripts/readme_examples.py re-runs them wherever they are."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def examples_script():
    spec = importlib.util.spec_from_file_location("readme_examples", REPO / "scripts" / "readme_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages() -> list[Path]:
    """README.md and the documentation pages: where the re-run examples live."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def saved_files() -> list[str]:
    """Files that the `$ ` commands of the README and the docs read back (`--report FILE`, `--baseline FILE`)."""
    commands = [line for p in pages() for line in p.read_text(encoding="utf-8").splitlines() if line.startswith("$ ")]
    return sorted({m for line in commands for m in re.findall(r"--(?:report|baseline) (\S+)", line)})


def test_the_examples_read_some_saved_results():
    assert "results/bench.json" in saved_files()


@pytest.mark.parametrize("name", saved_files())
def test_each_saved_result_is_in_the_repository(name):
    path = REPO / name
    assert path.is_file(), f"the docs print {name}, which is not in the checkout"
    if shutil.which("git") and (REPO / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, check=False).returncode == 0
        assert not ignored, f"{name} is git-ignored, so a fresh clone lacks it: un-ignore it in .gitignore"


def test_the_readme_is_short_and_points_at_the_docs():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "README.md is over 250 lines: move the detail to a page under docs/"
    for command in ("make chat", "make test"):
        assert command in text


def test_the_readmes_relative_links_resolve():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?!https?:|#)[^)\s]+)\)", text)
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if not (REPO / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_the_examples_script_reruns_the_readme_and_every_docs_page():
    found = examples_script().documents()
    assert found[0] == REPO / "README.md"
    assert REPO / "docs" / "rest.md" in found and REPO / "docs" / "experiments" / "tried-and-not-kept.md" in found


def test_the_examples_script_rewrites_a_page_and_checks_it(tmp_path):
    script = examples_script()
    page = tmp_path / "page.md"
    block = "# A page\n\n<!-- rerun -->\n```console\n$ echo 'naïve café'\n{}\n```\n"
    page.write_text(block.format("stale output"), encoding="utf-8")
    assert script.main([str(page), "--check"]) == 1
    assert "stale output" in page.read_text(encoding="utf-8")
    assert script.main([str(page)]) == 0
    assert page.read_text(encoding="utf-8") == block.format("naïve café")
    assert script.main([str(page), "--check"]) == 0
