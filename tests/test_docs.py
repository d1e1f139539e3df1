"""The documentation site builds with every warning an error (`mkdocs build --strict`, as `make docs`
runs it), and its generated reference pages hold every command, setting and route of the code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
pytest.importorskip("material", reason="the docs extra is not installed: pip install -e '.[docs]'")
pytest.importorskip("mkdocstrings", reason="the docs extra is not installed: pip install -e '.[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    env["NO_MKDOCS_2_WARNING"] = "1"  # Material's banner about its successor, not a build warning
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml")]
    done = subprocess.run(
        [*command, "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return out


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def test_the_site_builds_strictly_with_every_page(site):
    pages = {p.relative_to(REPO / "docs").with_suffix("").as_posix() for p in (REPO / "docs").rglob("*.md")}
    pages.discard("index")
    missing = [name for name in sorted(pages) if not (site / name / "index.html").is_file()]
    assert not missing, f"pages not built: {missing}"


def test_the_cli_reference_holds_every_command_and_flag(site):
    from qa.cli import build_parser

    html = page(site, "cli")
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert f"qa {name}" in html
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in html, f"qa {name} {flag} is not in the CLI reference"


def test_the_configuration_page_holds_every_setting(site):
    from qa import config

    html = page(site, "configuration")
    for variable in [*config.ENV_VARS.values(), config.API_TOKEN_ENV, config.HOST_ENV, "QA_CACHE_DIR"]:
        assert variable in html, f"{variable} is not on the configuration page"


def test_the_rest_reference_holds_every_route_and_schema(site):
    from qa.web.api import create_api

    spec = create_api(None).app.openapi()
    html = page(site, "rest")
    for path in spec["paths"]:
        assert f"/api{path}" in html, f"{path} is not in the REST reference"
    for name in spec["components"]["schemas"]:
        if "ValidationError" not in name:
            assert f'id="{name.lower()}"' in html, f"schema {name} is not in the REST reference"


def test_the_mcp_reference_holds_every_tool_and_argument(site):
    import asyncio

    from qa.web.mcp_server import create_mcp

    html = page(site, "mcp")
    for tool in asyncio.run(create_mcp(None).list_tools()):
        assert f'id="{tool.name.replace("_", "-")}"' in html or f'id="{tool.name}"' in html, tool.name
        for argument in tool.input_schema.get("properties", {}):
            assert f"<code>{argument}</code>" in html, f"{tool.name}({argument}) is not in the MCP reference"


def test_the_python_api_is_rendered_from_the_docstrings(site):
    import qa

    html = page(site, "python-api")
    assert "Ranked passages answering" in html
    for name in set(qa.__all__) - {"__version__"}:  # the top-level names, each with its docstring
        assert f'id="qa.{name}"' in html, f"qa.{name} is not on the Python API page"
