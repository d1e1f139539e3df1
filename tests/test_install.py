"""The plain-pip route of the README, as a newcomer runs it: a fresh `python3 -m venv` with the pip it
brings (no upgrade), the README's commands as written, then `qa index` on a file of every format
(HTML, PDF, a scanned PDF, Markdown, Word, PowerPoint, Excel, CSV, ODT, EPUB). A few minutes
(pip's cache makes later runs faster); `make test` runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import officegen, scangen
from tests.conftest import REPO
from tests.test_corpus_status import KENYA

MARKER = "<!-- plain-pip:"


def readme_commands() -> str:
    """The shell block that follows the plain-pip marker in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    match = re.search(r"```(?:sh|console|bash)\n(.*?)```", after, re.S)
    assert match, "README.md: no ```sh block after the plain-pip marker"
    return match.group(1)


def test_readme_names_the_cpu_torch_before_the_package():
    commands = readme_commands()
    assert "python3 -m venv" in commands and "--upgrade pip" not in commands
    assert commands.index("pip install torch==2.13.0") < commands.index("pip install .")


def _source_copy(target: Path) -> Path:
    """The checkout's tracked files (what a clone has), so pip writes no build/ into the checkout."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            if name and (REPO / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, target / name)
    else:  # no git: the source folder without what a run leaves in it
        skip = shutil.ignore_patterns(".*", "index", "results", "build", "*.egg-info")
        shutil.copytree(REPO, target, dirs_exist_ok=True, ignore=skip)
    return target


def _clean_env() -> dict[str, str]:
    """The user's environment without this test run's virtualenv or source path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    own_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != own_bin)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.mark.install
def test_plain_pip_install_reads_every_format(tmp_path):
    if shutil.which("python3") is None:
        pytest.fail("python3 is not on PATH: the README's plain-pip route starts with `python3 -m venv`")
    source = _source_copy(tmp_path / "qa")
    env = _clean_env()
    try:
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + readme_commands()],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert done.returncode == 0, f"the README's commands failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        assert "Russia" in done.stdout  # `qa ask` answered from the bundled corpus

        venv = source / ".venv"
        bundled = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import ensurepip; print(ensurepip.version())"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert _pip_version(venv) == bundled.stdout.strip()  # the pip the venv brought, not upgraded
        packages = _pip_list(source)
        assert "lxml-html-clean" in packages or "lxml_html_clean" in packages
        assert packages["torch"].endswith("+cpu"), packages["torch"]
        assert not [name for name in packages if name.startswith("nvidia-")]

        corpus = tmp_path / "corpus"
        corpus.mkdir()
        (corpus / "kenya.html").write_bytes(KENYA)
        shutil.copy(REPO / "tests" / "data" / "oxygen-printed.pdf", corpus / "oxygen.pdf")
        (corpus / "notes.md").write_text(
            "---\ntitle: Notes on the Kurils\n---\nThe Kuril islands stretch from Hokkaido to Kamchatka.\n",
            encoding="utf-8",
        )
        office = {
            "survey.docx": officegen.docx_bytes(),
            "review.pptx": officegen.pptx_bytes(),
            "budget.xlsx": officegen.xlsx_bytes(),
            "cities.csv": officegen.csv_bytes(),
            "orchard.odt": officegen.odt_bytes(),
            "northern.epub": officegen.epub_bytes(),
            "scan.pdf": scangen.scanned_pdf(scangen.PAGES[:1]),
        }
        for name, data in office.items():
            (corpus / name).write_bytes(data)
        run_env = {**env, "QA_CORPUS": str(corpus), "QA_INDEX": str(tmp_path / "index")}
        qa = str(venv / "bin" / "qa")
        indexed = subprocess.run([qa, "index", "--json"], env=run_env, capture_output=True, text=True, timeout=600)
        assert indexed.returncode == 0, indexed.stderr
        report = json.loads(indexed.stdout)
        assert report["failed"] == [], report["failed"]
        assert sorted(report["added"]) == sorted(["kenya.html", "notes.md", "oxygen.pdf", *office])
        docs = subprocess.run([qa, "docs", "--json"], env=run_env, capture_output=True, text=True, check=True)
        titles = {d["source"]: d["title"] for d in json.loads(docs.stdout)["documents"]}
        assert {name: titles[name] for name in ("kenya.html", "notes.md", "oxygen.pdf")} == {
            "kenya.html": "Kenya",
            "notes.md": "Notes on the Kurils",
            "oxygen.pdf": "Oxygen",
        }
        assert titles["review.pptx"] == "Quarterly Review" and titles["scan.pdf"].startswith("The harbour master")
        asked = subprocess.run(
            [qa, "ask", "Nairobi capital", "--mode", "lexical", "--json"], env=run_env, capture_output=True, text=True
        )
        assert asked.returncode == 0 and asked.stderr == "", asked.stderr
        assert json.loads(asked.stdout)["passages"][0]["source"] == "kenya.html"
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)  # a virtualenv with torch is over 1 GB


def _pip_version(venv: Path) -> str:
    out = subprocess.run([str(venv / "bin" / "pip"), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def _pip_list(source: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(source / ".venv" / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}
