"""The README's re-run examples can run on a fresh clone: the saved results they print are kept."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def saved_files() -> list[str]:
    """Files that the README's `$ ` commands read back (`--report FILE`, `--baseline FILE`)."""
    commands = [line for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("$ ")]
    return sorted({m for line in commands for m in re.findall(r"--(?:report|baseline) (\S+)", line)})


def test_the_readme_reads_some_saved_results():
    assert "results/bench.json" in saved_files()


@pytest.mark.parametrize("name", saved_files())
def test_each_saved_result_is_in_the_repository(name):
    path = REPO / name
    assert path.is_file(), f"README.md prints {name}, which is not in the checkout"
    if shutil.which("git") and (REPO / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, check=False).returncode == 0
        assert not ignored, f"{name} is git-ignored, so a fresh clone lacks it: un-ignore it in .gitignore"
