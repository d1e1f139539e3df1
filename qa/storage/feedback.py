"""Readers' feedback and the questions asked, kept beside the index but apart from its versions.

The local store keeps them in `feedback.sqlite` in the index folder, outside `snapshots/`: an
update or a rebuild publishes a new snapshot and leaves the file alone. PostgreSQL keeps them
in the schema's `feedback` table (migration 5), which no update or rebuild touches.

A record says what was asked and shown and what the reader made of it; nothing about who
asked. `kind` is one of KINDS: "asked" for every answered question (what `qa report` counts),
"good" or "bad" for a verdict on the whole answer, "answered" when one shown passage (`rank`)
answered the question.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qa.errors import QAError

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.storage.base import Store

KINDS = ("asked", "good", "bad", "answered")
VERDICTS = ("good", "bad", "answered")
CHANNELS = ("web", "api", "mcp", "chat")
FILE_NAME = "feedback.sqlite"
MAX_TEXT = 20_000  # characters of a question, query or answer kept
MAX_HISTORY = 100
MAX_PASSAGES = 100


@dataclass(frozen=True)
class ShownPassage:
    """A passage as the reader saw it: its document, its span there, its rank in the answer."""

    doc_id: str
    start: int
    end: int
    rank: int

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end, "rank": self.rank}


@dataclass(frozen=True)
class FeedbackRecord:
    kind: str
    question: str
    searched: str = ""
    history: tuple[str, ...] = ()  # the conversation's earlier questions, oldest first
    passages: tuple[ShownPassage, ...] = ()
    answer: str = ""
    rank: int | None = None  # the passage that answered it ("answered")
    index_version: str = ""  # the snapshot (or database generation) that answered
    time: str = field(default_factory=lambda: now_utc())  # ISO 8601, UTC
    channel: str = ""  # where it came from: web, api, mcp, chat
    id: int | None = None  # set by the store

    @property
    def refused(self) -> bool:
        """No passage was shown: "nothing found"."""
        return not self.passages

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "time": self.time,
            "channel": self.channel,
            "question": self.question,
            "searched": self.searched,
            "history": list(self.history),
            "passages": [p.to_dict() for p in self.passages],
            "answer": self.answer,
            "rank": self.rank,
            "index_version": self.index_version,
        }

    def checked(self) -> FeedbackRecord:
        """The record if it is well formed; QAError naming the first thing wrong."""
        if self.kind not in KINDS:
            raise QAError(f"feedback kind must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if not self.question.strip():
            raise QAError("feedback needs the question that was asked")
        for name, text in (("question", self.question), ("searched query", self.searched), ("answer", self.answer)):
            if len(text) > MAX_TEXT:
                raise QAError(f"the {name} is longer than {MAX_TEXT} characters")
        if len(self.history) > MAX_HISTORY:
            raise QAError(f"history holds at most {MAX_HISTORY} earlier questions (got {len(self.history)})")
        if len(self.passages) > MAX_PASSAGES:
            raise QAError(f"at most {MAX_PASSAGES} passages (got {len(self.passages)})")
        for p in self.passages:
            if not p.doc_id or p.start < 0 or p.end < p.start or p.rank < 1:
                raise QAError(f"passage {p.to_dict()} needs a document id, 0 <= start <= end and a rank from 1")
        if self.kind == "answered":
            ranks = {p.rank for p in self.passages}
            if self.rank is None or self.rank not in ranks:
                shown = ", ".join(str(r) for r in sorted(ranks)) or "none"
                raise QAError(f"'answered' needs the rank of a shown passage (shown: {shown}; got {self.rank})")
        elif self.rank is not None:
            raise QAError(f"a rank goes only with the verdict 'answered' (got {self.kind!r})")
        if self.channel and self.channel not in CHANNELS:
            raise QAError(f"channel must be one of {', '.join(CHANNELS)} (got {self.channel!r})")
        return self


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def check_since(since: str | None) -> str | None:
    """An ISO date or time as the lower bound of `time` (UTC), or None; QAError when unreadable."""
    if since is None or not since.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
    except ValueError:
        raise QAError(f"--since must be a date or time like 2026-12-01 or 2026-12-01T09:00 (got {since!r})") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


class FeedbackStore(Protocol):
    """Where records are kept: append and read back, oldest first."""

    location: str

    def add(self, record: FeedbackRecord) -> int:
        """Keep a (checked) record; returns its id."""
        ...

    def records(self, since: str | None = None, kinds: Sequence[str] | None = None) -> list[FeedbackRecord]:
        """Records at or after `since` (ISO UTC), of these kinds, oldest first."""
        ...

    def close(self) -> None: ...


_COLUMNS = "id, kind, time, channel, question, searched, history, passages, answer, rank, index_version"


def _row(record: FeedbackRecord) -> tuple:
    return (
        record.kind,
        record.time,
        record.channel,
        record.question,
        record.searched,
        json.dumps(list(record.history), ensure_ascii=False),
        json.dumps([p.to_dict() for p in record.passages], ensure_ascii=False),
        record.answer,
        record.rank,
        record.index_version,
    )


def _record(row: Sequence) -> FeedbackRecord:
    id_, kind, time, channel, question, searched, history, passages, answer, rank, version = row
    history = json.loads(history) if isinstance(history, str) else history
    passages = json.loads(passages) if isinstance(passages, str) else passages
    return FeedbackRecord(
        kind=kind,
        question=question,
        searched=searched,
        history=tuple(history),
        passages=tuple(ShownPassage(p["doc_id"], p["start"], p["end"], p["rank"]) for p in passages),
        answer=answer,
        rank=rank,
        index_version=version,
        time=time if isinstance(time, str) else time.astimezone(dt.timezone.utc).isoformat(),
        channel=channel,
        id=int(id_),
    )


# Numbered like the PostgreSQL migrations; PRAGMA user_version records the last one applied.
LOCAL_MIGRATIONS = {
    1: """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    time TEXT NOT NULL,             -- ISO 8601, UTC
    channel TEXT NOT NULL,
    question TEXT NOT NULL,
    searched TEXT NOT NULL,
    history TEXT NOT NULL,          -- JSON list of the earlier questions
    passages TEXT NOT NULL,         -- JSON list of {doc_id, start, end, rank}
    answer TEXT NOT NULL,
    rank INTEGER,
    index_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_time ON feedback (time);
""",
}


class LocalFeedback:
    """`feedback.sqlite` in the index folder; safe for the threads of one process and for several processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for number in sorted(n for n in LOCAL_MIGRATIONS if n > version):
                    conn.executescript(f"BEGIN; {LOCAL_MIGRATIONS[number]} PRAGMA user_version = {number}; COMMIT;")
            except (OSError, sqlite3.Error) as exc:
                raise QAError(f"cannot open the feedback file {self.path}: {exc}") from None
            self._conn = conn
        return self._conn

    def add(self, record: FeedbackRecord) -> int:
        record.checked()
        with self._lock:
            try:
                cursor = self._connect().execute(
                    "INSERT INTO feedback (kind, time, channel, question, searched, history, passages, answer, "
                    "rank, index_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _row(record),
                )
            except sqlite3.Error as exc:
                raise QAError(f"cannot write to the feedback file {self.path}: {exc}") from None
            return int(cursor.lastrowid)

    def records(self, since: str | None = None, kinds: Sequence[str] | None = None) -> list[FeedbackRecord]:
        if not self.path.exists():
            return []
        sql, args = f"SELECT {_COLUMNS} FROM feedback WHERE 1 = 1", []
        if since:
            sql += " AND time >= ?"
            args.append(since)
        if kinds:
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
            args.extend(kinds)
        with self._lock:
            try:
                rows = self._connect().execute(sql + " ORDER BY time, id", args).fetchall()
            except sqlite3.Error as exc:
                raise QAError(f"cannot read the feedback file {self.path}: {exc}") from None
        return [_record(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresFeedback:
    """The schema's `feedback` table (qa.storage.postgres.migrations, 5)."""

    def __init__(self, store) -> None:
        self.store = store
        self.location = f"{store.location}, table feedback"

    def add(self, record: FeedbackRecord) -> int:
        from psycopg.types.json import Jsonb

        record.checked()
        row = list(_row(record))
        row[5] = Jsonb(list(record.history))
        row[6] = Jsonb([p.to_dict() for p in record.passages])
        with self.store.reading() as conn:
            if self.store.read_only:
                raise QAError(f"{self.store.location} is a read-only replica: feedback is recorded on the primary")
            return int(
                conn.execute(
                    f"INSERT INTO {self.store.q}.feedback (kind, time, channel, question, searched, history, "
                    "passages, answer, rank, index_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "RETURNING id",
                    row,
                ).fetchone()[0]
            )

    def records(self, since: str | None = None, kinds: Sequence[str] | None = None) -> list[FeedbackRecord]:
        sql, args = f"SELECT {_COLUMNS} FROM {self.store.q}.feedback WHERE true", []
        if since:
            sql += " AND time >= %s"
            args.append(since)
        if kinds:
            sql += " AND kind = ANY(%s)"
            args.append(list(kinds))
        with self.store.reading() as conn:
            rows = conn.execute(sql + " ORDER BY time, id", args).fetchall()
        return [_record(r) for r in rows]

    def close(self) -> None:
        pass


def open_feedback(settings: Settings, store: Store) -> FeedbackStore | None:
    """Where this index keeps its feedback; None when QA_FEEDBACK=off."""
    if settings.feedback == "off":
        return None
    if store.kind == "postgres":
        return PostgresFeedback(store)
    return LocalFeedback(Path(store.location) / FILE_NAME)
