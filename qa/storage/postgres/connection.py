"""Connecting to PostgreSQL: one-line errors that never show the password, advisory lock keys."""

from __future__ import annotations

import re

from qa.errors import QAError

CONNECT_TIMEOUT = 10
# Advisory lock keys (first half): the writers of a schema, and one document of it.
WRITERS_LOCK, DOCUMENT_LOCK = 0x7161_0001, 0x7161_0002


def connection_error(dsn: str, exc: Exception) -> QAError:
    """One line naming the server (never the password) and what to check."""
    where = describe_dsn(dsn)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # libpq quotes a malformed connection string back, password and all: none of it is shown.
    reason = redact(reason.replace(dsn.strip(), "<QA_PG_DSN>") if dsn.strip() else reason)
    if not _parses(dsn):
        reason = re.sub(r'"[^"]*"', '"…"', reason)
    return QAError(
        f"cannot reach PostgreSQL at {where} ({reason}); check QA_PG_DSN (--dsn) and that the server is running"
    )


_SECRETS = (
    re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I),  # keyword form: password=...
    re.compile(r"(://[^:/@\s]*:)[^@\s]*(@)"),  # URI form: postgresql://user:secret@host
    re.compile(r"([?&]password=)[^&\s]*", re.I),  # URI parameter: ?password=...
)


def redact(text: str) -> str:
    """`text` with every password a connection string could carry replaced by ***."""
    text = _SECRETS[0].sub(r"\1***", text)
    text = _SECRETS[1].sub(r"\1***\2", text)
    return _SECRETS[2].sub(r"\1***", text)


def _parses(dsn: str) -> bool:
    try:
        from psycopg.conninfo import conninfo_to_dict

        conninfo_to_dict(dsn)
    except Exception:
        return False
    return True


def describe_dsn(dsn: str) -> str:
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(dsn)
    except Exception:
        return "the configured QA_PG_DSN (it does not parse as a libpq connection string)"
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or 'postgres'}"


def lock_holder(conn, classid: int, name: str) -> str:
    row = conn.execute(
        "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = (%s::bigint & 4294967295)::oid"
        " AND l.objid = (hashtext(%s)::bigint & 4294967295)::oid LIMIT 1",
        (classid, name),
    ).fetchone()
    if not row:
        return "another writer"
    return f"{row[1] or 'a client'}, server process {row[0]}"
