"""Document and chunk records in SQLite (one file per index snapshot)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError
from qa.storage.base import ChunkEvidence, ChunkRecord, DocumentInfo
from qa.types import Chunk, Document, Locator, Place

__all__ = ["Catalog", "ChunkRecord", "DocumentInfo"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL UNIQUE, content_hash TEXT NOT NULL,
    title TEXT NOT NULL, author TEXT NOT NULL, publisher TEXT NOT NULL, date TEXT NOT NULL,
    url TEXT NOT NULL, page_starts TEXT NOT NULL, text TEXT NOT NULL,
    locators TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER,
    text_hash TEXT NOT NULL, text TEXT NOT NULL, place TEXT
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS evidence (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id), spans TEXT NOT NULL, vectors BLOB NOT NULL
);
"""


class Catalog:
    FILE = "catalog.sqlite"

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.Lock()
        self._evidence_table = False
        self._places: bool | None = None

    @classmethod
    def create(cls, folder: Path) -> Catalog:
        path = folder / cls.FILE
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.executescript(SCHEMA)
        return cls(conn, path)

    @classmethod
    def open(cls, folder: Path, writable: bool = False) -> Catalog:
        path = folder / cls.FILE
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing; run `qa index --rebuild`")
        try:
            # Snapshots never change once published: immutable=1 skips locking.
            uri = f"file:{path}?mode=rw" if writable else f"file:{path}?mode=ro&immutable=1"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("SELECT count(*) FROM documents").fetchone()
            conn.execute("SELECT count(*) FROM chunks").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"cannot read {path} ({exc}); run `qa index --rebuild`") from None
        return cls(conn, path)

    def copy_to(self, folder: Path) -> Catalog:
        """A writable copy in another folder (SQLite's online backup)."""
        target = sqlite3.connect(folder / self.FILE, check_same_thread=False)
        with self._lock:
            self._conn.backup(target)
        return Catalog(target, folder / self.FILE)

    def close(self) -> None:
        self._conn.close()

    def commit(self) -> None:
        self._conn.commit()

    # -- writing -------------------------------------------------------------------
    def add_document(
        self,
        doc: Document,
        chunks: Sequence[Chunk],
        ids: Sequence[int],
        evidence: Sequence[ChunkEvidence | None] = (),
    ) -> None:
        self._ensure_places()
        self._conn.execute(
            "INSERT INTO documents (doc_id, source, content_hash, title, author, publisher, date, url,"
            " page_starts, text, locators) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                doc.doc_id,
                doc.source,
                doc.content_hash,
                doc.title,
                doc.author,
                doc.publisher,
                doc.date,
                doc.url,
                json.dumps(list(doc.page_starts)),
                doc.text,
                json.dumps([[x.start, x.unit, x.number, x.within] for x in doc.locators], ensure_ascii=False),
            ),
        )
        self._conn.executemany(
            'INSERT INTO chunks (id, doc_id, ordinal, start, "end", page, text_hash, text, place)'
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    int(i),
                    c.doc_id,
                    c.ordinal,
                    c.start,
                    c.end,
                    c.page,
                    c.text_hash,
                    c.text,
                    c.place and c.place.to_json(),
                )
                for i, c in zip(ids, chunks, strict=True)
            ],
        )
        if any(e is not None for e in evidence):
            self._ensure_evidence_table()
            self._conn.executemany(
                "INSERT INTO evidence (chunk_id, spans, vectors) VALUES (?,?,?)",
                [(int(i), json.dumps(e.spans_list()), e.to_bytes()) for i, e in zip(ids, evidence) if e is not None],
            )

    def remove_document(self, doc_id: str) -> list[int]:
        """Delete a document; returns the ids of its chunks."""
        ids = self.chunk_ids_of(doc_id)
        if self._has_evidence_table():
            self._conn.execute(
                "DELETE FROM evidence WHERE chunk_id IN (SELECT id FROM chunks WHERE doc_id = ?)", (doc_id,)
            )
        self._conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self._conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return ids

    def _has_evidence_table(self) -> bool:
        # Snapshots written before sentence evidence existed have no such table. Once there it
        # stays (nothing drops it), so a found table is not looked up again on every read.
        if not self._evidence_table:
            found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evidence'"
            self._evidence_table = bool(self._query(found))
        return self._evidence_table

    def _has_places(self) -> bool:
        # Snapshots written before slides, chapters and rows had locators lack the two columns.
        if self._places is None:
            columns = {r[1] for r in self._query("PRAGMA table_info(chunks)")}
            self._places = "place" in columns
        return self._places

    def _ensure_places(self) -> None:
        if not self._has_places():
            with self._lock:
                self._conn.execute("ALTER TABLE documents ADD COLUMN locators TEXT NOT NULL DEFAULT '[]'")
                self._conn.execute("ALTER TABLE chunks ADD COLUMN place TEXT")
            self._places = True

    def _ensure_evidence_table(self) -> None:
        if not self._has_evidence_table():
            self._conn.executescript(SCHEMA)

    # -- reading -------------------------------------------------------------------
    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def next_chunk_id(self) -> int:
        return int(self._query("SELECT coalesce(max(id), -1) + 1 FROM chunks")[0][0])

    def chunk_ids_of(self, doc_id: str) -> list[int]:
        return [r[0] for r in self._query("SELECT id FROM chunks WHERE doc_id = ? ORDER BY id", (doc_id,))]

    def sources(self) -> dict[str, tuple[str, str]]:
        """source -> (doc_id, content_hash)"""
        return {s: (d, h) for d, s, h in self._query("SELECT doc_id, source, content_hash FROM documents")}

    def count_chunks(self) -> int:
        return int(self._query("SELECT count(*) FROM chunks")[0][0])

    def all_chunks(self) -> tuple[np.ndarray, list[str]]:
        rows = self._query("SELECT id, text FROM chunks ORDER BY id")
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def documents(self) -> list[DocumentInfo]:
        rows = self._query(
            "SELECT d.doc_id, d.source, d.title, d.author, d.publisher, d.date, d.url, d.content_hash,"
            " (SELECT count(*) FROM chunks c WHERE c.doc_id = d.doc_id), length(d.text)"
            " FROM documents d ORDER BY d.source"
        )
        return [DocumentInfo(*r) for r in rows]

    def document(self, doc_id: str) -> Document | None:
        rows = self._query(
            "SELECT doc_id, source, text, content_hash, title, author, publisher, date, url, page_starts, "
            + ("locators" if self._has_places() else "'[]'")
            + " FROM documents WHERE doc_id = ? OR source = ?",
            (doc_id, doc_id),
        )
        if not rows:
            return None
        r = rows[0]
        return Document(
            doc_id=r[0],
            source=r[1],
            text=r[2],
            content_hash=r[3],
            title=r[4],
            author=r[5],
            publisher=r[6],
            date=r[7],
            url=r[8],
            page_starts=tuple(json.loads(r[9])),
            locators=tuple(Locator(int(a), str(u), int(n), str(w)) for a, u, n, w in json.loads(r[10])),
        )

    def chunk_records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        out: dict[int, ChunkRecord] = {}
        ids = [int(i) for i in ids]
        place = "c.place" if self._has_places() else "NULL"
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self._query(
                f'SELECT c.id, c.doc_id, c.ordinal, c.start, c."end", c.page, c.text_hash, c.text,'
                f" d.title, d.author, d.date, d.source, {place} FROM chunks c JOIN documents d USING (doc_id)"
                f" WHERE c.id IN ({marks})",
                part,
            )
            for r in rows:
                chunk = Chunk(
                    doc_id=r[1],
                    ordinal=r[2],
                    start=r[3],
                    end=r[4],
                    text=r[7],
                    text_hash=r[6],
                    page=r[5],
                    place=Place.from_json(r[12]),
                )
                out[r[0]] = ChunkRecord(r[0], chunk, r[8], r[9], r[10], r[11])
        return out

    def chunk_spans(self) -> list[tuple[int, str, int, int]]:
        return [tuple(r) for r in self._query('SELECT id, doc_id, start, "end" FROM chunks ORDER BY id')]

    def evidence(self, ids: Sequence[int]) -> dict[int, ChunkEvidence]:
        if not self._has_evidence_table():
            return {}
        out: dict[int, ChunkEvidence] = {}
        ids = [int(i) for i in ids]
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = self._query(
                f"SELECT chunk_id, spans, vectors FROM evidence WHERE chunk_id IN ({','.join('?' * len(part))})", part
            )
            for chunk_id, spans, blob in rows:
                out[int(chunk_id)] = ChunkEvidence.from_stored(json.loads(spans), blob)
        return out

    def filtered_chunk_ids(
        self, doc_ids: Sequence[str] = (), author: str = "", date_from: str = "", date_to: str = ""
    ) -> np.ndarray:
        """Ids of chunks whose document passes every given filter."""
        where, params = [], []
        if doc_ids:
            where.append(
                f"(d.doc_id IN ({','.join('?' * len(doc_ids))}) OR d.source IN ({','.join('?' * len(doc_ids))}))"
            )
            params += list(doc_ids) * 2
        if author:
            where.append("lower(d.author) LIKE ? ESCAPE '\\'")
            params.append("%" + _escape_like(author.lower()) + "%")
        if date_from:
            where.append("d.date != '' AND d.date >= ?")
            params.append(date_from)
        if date_to:
            # "2020" as an upper bound includes all of 2020.
            where.append("d.date != '' AND d.date <= ?")
            params.append(date_to + "\uffff")
        sql = "SELECT c.id FROM chunks c JOIN documents d USING (doc_id)"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return np.array([r[0] for r in self._query(sql, params)], dtype=np.int64)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
