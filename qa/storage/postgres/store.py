"""The postgres store: one PostgreSQL database with pgvector holds the index.

* Vectors: pgvector, an HNSW index for inner product (`vector`, or `halfvec` for half the
  memory); filters are plain WHERE clauses and pgvector 0.8's iterative index scans keep
  returning rows until k pass them.
* Lexical: a tsvector of each chunk's terms (the same analysis as the local store:
  qa.storage.terms) with a GIN index; ranked by BM25 computed in SQL over the GIN matches
  (QA_PG_LEXICAL=bm25, the local store's formula) or by PostgreSQL's ts_rank_cd.
* Updates: each document's change is one transaction, so readers never see half a document and
  a killed `qa index` keeps every document it finished. Writers take a transaction-level advisory
  lock per document (a second writer reaching the same document waits, says so, then skips it if
  the other stored the same content) and a shared session lock that `--rebuild` takes exclusively.
  A rebuild is one transaction: readers keep the previous index until it commits.
* A standby (read replica) answers questions; writing there is refused with a clear message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from qa.errors import IndexLockedError, IndexMismatchError, IndexMissingError, QAError
from qa.storage.base import ChunkEvidence, ChunkRecord, DocumentInfo, IndexedChunk
from qa.storage.manifest import Manifest, corpus_fingerprint
from qa.storage.postgres.migrations import LATEST, MIGRATIONS
from qa.storage.terms import Analyzer, bm25_idf, coverage_function
from qa.types import Document, Filters

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding.models import Embedder

# BM25 parameters: the local store's (bm25s) defaults, so that both rank alike.
K1, B = 1.5, 0.75
# PostgreSQL keeps at most 256 positions per lexeme and refuses lexemes over 2 KB.
MAX_POSITIONS = 256
MAX_LEXEME_BYTES = 1000
# Seconds a reader reuses the corpus size and the terms' chunk counts (BM25's idf): they move
# slowly, and a reader is opened anew after every update anyway.
STATS_TTL = 60.0
# Terms in more than this share of the chunks are "common": BM25 candidates come from the others first.
COMMON_SHARE = 0.05
CONNECT_TIMEOUT = 10
# Advisory lock keys (first half): the writers of a schema, and one document of it.
WRITERS_LOCK, DOCUMENT_LOCK = 0x7161_0001, 0x7161_0002


def connection_error(dsn: str, exc: Exception) -> QAError:
    """One line naming the server (never the password) and what to check."""
    where = describe_dsn(dsn)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return QAError(
        f"cannot reach PostgreSQL at {where} ({reason}); check QA_PG_DSN (--dsn) and that the server is running"
    )


def describe_dsn(dsn: str) -> str:
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(dsn)
    except Exception:
        return "the configured QA_PG_DSN (it does not parse as a libpq connection string)"
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or parts.get('user') or 'postgres'}"


class PostgresStore:
    kind = "postgres"

    def __init__(
        self, dsn: str, schema: str = "qa", vector_type: str = "vector", lexical: str = "bm25", ef_search: int = 100
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.vector_type = vector_type
        self.lexical = lexical
        self.ef_search = ef_search
        self.location = f"PostgreSQL {describe_dsn(dsn)}, schema {schema}"
        self._pool = None
        self._lock = threading.Lock()
        self.read_only = False
        self.analyzer = Analyzer()
        self._migrated = False

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        return _shared_store(
            settings.pg_dsn, settings.pg_schema, settings.pg_vector, settings.pg_lexical, settings.pg_ef_search
        )

    # -- connections ---------------------------------------------------------------------
    def connect(self, autocommit: bool = True):
        """A new connection with pgvector's types, the schema migrated (on a primary)."""
        import psycopg

        try:
            conn = psycopg.connect(
                self.dsn,
                autocommit=autocommit,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=f"qa pid {os.getpid()} on {socket.gethostname()}"[:63],
            )
        except psycopg.Error as exc:
            raise connection_error(self.dsn, exc) from None
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn) -> None:
        import psycopg

        try:
            self.read_only = bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
            if not self._migrated:
                self._migrate(conn)
            from pgvector.psycopg import register_vector

            register_vector(conn)
            # HNSW keeps ef_search candidates per query; when filters (or a k above it) need more
            # rows, pgvector 0.8's iterative scan goes on searching instead of returning fewer.
            conn.execute(
                f"SET hnsw.ef_search = {int(self.ef_search)}; SET hnsw.iterative_scan = relaxed_order;"
                " SET hnsw.max_scan_tuples = 50000"
            )
        except psycopg.OperationalError as exc:
            raise connection_error(self.dsn, exc) from None

    def _migrate(self, conn) -> None:
        """Apply the migrations this schema lacks, under a lock, each once."""
        import psycopg

        s = self.q
        installed = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        version = self._schema_version(conn)
        if version >= LATEST and installed:
            self._migrated = True
            return
        if self.read_only:
            if not installed or version == 0:
                raise IndexMissingError(
                    f"there is no index in {self.location} yet, and this server is a read-only replica: "
                    f"run `qa index` against the primary"
                )
            raise QAError(
                f"the schema {self.schema} on this read-only replica is at version {version}, this qa needs "
                f"{LATEST}: run `qa index` against the primary once, then let the replica catch up"
            )
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (WRITERS_LOCK - 1, self.schema))
                if not installed:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations"
                    " (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in conn.execute(f"SELECT version FROM {s}.schema_migrations")}
                for number in sorted(MIGRATIONS):
                    if number in done:
                        continue
                    conn.execute(MIGRATIONS[number].format(s=s, vector=self.vector_type))
                    conn.execute(f"INSERT INTO {s}.schema_migrations (version) VALUES (%s)", (number,))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise QAError(
                f"cannot create the index tables in {self.location} ({str(exc).splitlines()[0]}); "
                f"connect as a user that may create schemas and the vector extension, or ask an "
                f"administrator to run `CREATE EXTENSION vector` and grant CREATE on the database"
            ) from None
        except psycopg.errors.FeatureNotSupported as exc:  # e.g. pgvector missing on the server
            raise QAError(f"{self.location} cannot hold a qa index: {str(exc).splitlines()[0]}") from None
        except psycopg.errors.UndefinedFile as exc:
            raise QAError(
                f"the pgvector extension is not installed on {describe_dsn(self.dsn)} ({str(exc).splitlines()[0]}); "
                f"install pgvector 0.8 or later on the server"
            ) from None
        self._migrated = True

    def _schema_version(self, conn) -> int:
        exists = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_migrations'", (self.schema,)
        ).fetchone()
        if not exists:
            return 0
        return int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {self.q}.schema_migrations").fetchone()[0])

    @property
    def q(self) -> str:
        return f'"{self.schema}"'  # validated by Settings: [a-z_][a-z0-9_]*

    @contextlib.contextmanager
    def reading(self) -> Iterator:
        """A pooled connection for reading; connection problems become one clear QAError."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._get_pool()
        try:
            with pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise connection_error(self.dsn, exc) from None
        except psycopg.OperationalError as exc:
            raise connection_error(self.dsn, exc) from None

    def _get_pool(self):
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self.connect().close()  # fails fast, with one line, if the server cannot be reached
                self._pool = ConnectionPool(
                    self.dsn,
                    min_size=1,
                    max_size=8,
                    timeout=CONNECT_TIMEOUT,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                    configure=self._prepare,
                    open=True,
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # -- Store -----------------------------------------------------------------------------
    def current_name(self) -> str:
        with self.reading() as conn:
            row = conn.execute(f"SELECT value FROM {self.q}.meta WHERE key = 'generation'").fetchone()
        return f"generation-{int(row[0])}" if row and int(row[0]) > 0 else ""

    def open(self, model_key: str, settings: Settings) -> PostgresReader:
        with self.reading() as conn:
            meta = dict(conn.execute(f"SELECT key, value FROM {self.q}.meta").fetchall())
        generation = int(meta.get("generation") or 0)
        if generation <= 0 or "manifest" not in meta:
            raise IndexMissingError(f"there is no index in {self.location} yet; run `qa index`")
        self._check_vector_type(meta)
        reader = PostgresReader(self, f"generation-{generation}", meta)
        reader.manifest.check_compatible(model_key, settings.model, settings.chunk_size, settings.chunk_overlap)
        return reader

    def _check_vector_type(self, meta: dict) -> None:
        stored = meta.get("vector_type", self.vector_type)
        if stored != self.vector_type:
            raise IndexMismatchError(
                f"the index in {self.location} stores vectors as {stored}, not {self.vector_type}; "
                f"set QA_PG_VECTOR={stored}, or use another QA_PG_SCHEMA for a {self.vector_type} index"
            )

    def embedding_cache(self) -> PostgresEmbeddingCache:
        return PostgresEmbeddingCache(self)

    @contextlib.contextmanager
    def writer(
        self, embedder: Embedder, settings: Settings, rebuild: bool = False, wait: bool = False
    ) -> Iterator[PostgresWriter]:
        conn = self.connect()
        if self.read_only:
            conn.close()
            raise QAError(
                f"{describe_dsn(self.dsn)} is a read-only replica (a standby): it answers questions but cannot be "
                f"updated; run `qa index` against the primary, the replica follows it"
            )
        writer = None
        try:
            _lock_writers(conn, self, exclusive=rebuild, wait=wait)
            writer = PostgresWriter(self, conn, embedder, settings, rebuild)
            yield writer
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            conn.close()  # also releases the session lock

    # -- lexical helpers shared by readers and writers -----------------------------------------
    def lexemes(self, text: str) -> tuple[str, int]:
        """(tsvector literal of text's terms with positions, number of terms)."""
        terms = self.analyzer.terms([text])[0]
        positions: dict[str, list[int]] = {}
        for position, term in enumerate(terms, start=1):
            if len(term.encode("utf-8")) <= MAX_LEXEME_BYTES:
                positions.setdefault(term, []).append(min(position, 16383))
        parts = [
            f"{_quote_lexeme(term)}:{','.join(map(str, places[:MAX_POSITIONS]))}" for term, places in positions.items()
        ]
        return " ".join(parts), len(terms)


def _quote_lexeme(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


_STORES: dict[tuple, PostgresStore] = {}
_STORES_LOCK = threading.Lock()


def _shared_store(dsn: str, schema: str, vector_type: str, lexical: str, ef_search: int) -> PostgresStore:
    """One store object (and so one connection pool) per process and configuration."""
    key = (dsn, schema, vector_type, lexical, ef_search)
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = PostgresStore(dsn, schema, vector_type, lexical, ef_search)
        return _STORES[key]


def _lock_writers(conn, store: PostgresStore, exclusive: bool, wait: bool) -> None:
    """The schema's writer lock: shared by updates, exclusive for a rebuild (session-level)."""
    kind = "" if exclusive else "_shared"
    key = (WRITERS_LOCK, store.schema)
    if conn.execute(f"SELECT pg_try_advisory_lock{kind}(%s, hashtext(%s))", key).fetchone()[0]:
        return
    holder = _lock_holder(conn, WRITERS_LOCK, store.schema)
    what = "an update" if exclusive else "a rebuild (`qa index --rebuild`)"
    if not wait:
        raise IndexLockedError(
            f"{what} of {store.location} is running ({holder}); wait for it to finish, then run the command again"
        )
    print(f"waiting for {what} of {store.location} to finish ({holder})…", file=sys.stderr)
    conn.execute(f"SELECT pg_advisory_lock{kind}(%s, hashtext(%s))", key)


def _lock_holder(conn, classid: int, name: str) -> str:
    row = conn.execute(
        "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = (%s::bigint & 4294967295)::oid"
        " AND l.objid = (hashtext(%s)::bigint & 4294967295)::oid LIMIT 1",
        (classid, name),
    ).fetchone()
    if not row:
        return "another writer"
    return f"{row[1] or 'a client'}, server process {row[0]}"


# -- reading -----------------------------------------------------------------------------------
class PostgresReader:
    """The index as the database holds it now; documents are visible as soon as each is committed."""

    def __init__(self, store: PostgresStore, name: str, meta: dict) -> None:
        self.store = store
        self.name = self.opened_for = name
        self.warning = ""
        self.dim = int(meta["manifest"]["model"]["dim"])
        self.vector_type = meta.get("vector_type", store.vector_type)
        self._stats: tuple[float, int, float] | None = None  # (when, chunks, average terms)
        self._df: dict[str, tuple[float, int]] = {}
        self._stats_lock = threading.Lock()
        self._local = threading.local()
        with store.reading() as conn:
            files = dict(conn.execute(f"SELECT source, content_hash FROM {store.q}.documents").fetchall())
            chunks = int(conn.execute(f"SELECT coalesce(sum(n_chunks), 0) FROM {store.q}.documents").fetchone()[0])
        data = dict(meta["manifest"])
        data["corpus"] = {
            **data.get("corpus", {}),
            "fingerprint": corpus_fingerprint(files),
            "documents": len(files),
            "chunks": chunks,
            "files": dict(sorted(files.items())),
        }
        self.manifest = Manifest.checked(data, f"the manifest in {store.location}")

    @property
    def q(self) -> str:
        return self.store.q

    @contextlib.contextmanager
    def consistent(self) -> Iterator[None]:
        """Every read of this thread inside sees one snapshot of the database (REPEATABLE READ)."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self.store.reading() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextlib.contextmanager
    def _conn(self) -> Iterator:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
        else:
            with self.store.reading() as conn:
                yield conn

    def close(self) -> None:
        """Nothing to release: connections belong to the store's pool."""

    def documents(self) -> list[DocumentInfo]:
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT doc_id, source, title, author, publisher, date, url, content_hash, n_chunks, length(text)"
                f' FROM {self.q}.documents ORDER BY source COLLATE "C"'
            ).fetchall()
        return [DocumentInfo(*r) for r in rows]

    def document(self, doc_id: str) -> Document | None:
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT doc_id, source, text, content_hash, title, author, publisher, date, url, page_starts"
                f" FROM {self.q}.documents WHERE doc_id = %s OR source = %s ORDER BY doc_id = %s DESC LIMIT 1",
                (doc_id, doc_id, doc_id),
            ).fetchone()
        if row is None:
            return None
        return Document(*row[:9], page_starts=tuple(row[9]))

    def sources(self) -> dict[str, tuple[str, str]]:
        with self._conn() as conn:
            rows = conn.execute(f"SELECT source, doc_id, content_hash FROM {self.q}.documents").fetchall()
        return {s: (d, h) for s, d, h in rows}

    def count_chunks(self) -> int:
        with self._conn() as conn:
            return int(conn.execute(f"SELECT count(*) FROM {self.q}.chunks").fetchone()[0])

    def chunk_records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        if not len(ids):
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                f'SELECT c.id, c.doc_id, c.ordinal, c.start, c."end", c.page, c.text_hash, c.text,'
                f" d.title, d.author, d.date, d.source FROM {self.q}.chunks c JOIN {self.q}.documents d USING (doc_id)"
                f" WHERE c.id = ANY(%s)",
                ([int(i) for i in ids],),
            ).fetchall()
        return {r[0]: ChunkRecord(r[0], _chunk(r[1:8]), r[8], r[9], r[10], r[11]) for r in rows}

    def chunk_spans(self) -> list[tuple[int, str, int, int]]:
        with self._conn() as conn:
            return [tuple(r) for r in conn.execute(f'SELECT id, doc_id, start, "end" FROM {self.q}.chunks ORDER BY id')]

    def evidence(self, ids: Sequence[int]) -> dict[int, ChunkEvidence]:
        if not len(ids):
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT chunk_id, spans, vectors FROM {self.q}.evidence WHERE chunk_id = ANY(%s)",
                ([int(i) for i in ids],),
            ).fetchall()
        return {
            int(i): ChunkEvidence.from_stored(list(zip(spans[::2], spans[1::2])), bytes(blob))
            for i, spans, blob in rows
        }

    # -- search ----------------------------------------------------------------------------------
    def _where(self, filters: Filters | None) -> tuple[str, list]:
        """The filters as a WHERE clause over documents `d` (or "" when there are none)."""
        if filters is None or not filters.active:
            return "", []
        where, params = [], []
        if filters.doc_ids:
            where.append("(d.doc_id = ANY(%s) OR d.source = ANY(%s))")
            params += [list(filters.doc_ids), list(filters.doc_ids)]
        if filters.author:
            where.append("d.author_key LIKE %s ESCAPE '\\'")
            params.append("%" + _escape_like(filters.author.lower()) + "%")
        if filters.date_from:
            where.append("d.date <> '' AND d.date COLLATE \"C\" >= %s")
            params.append(filters.date_from)
        if filters.date_to:
            # "2020" as an upper bound includes all of 2020.
            where.append("d.date <> '' AND left(d.date, %s) COLLATE \"C\" <= %s")
            params += [len(filters.date_to), filters.date_to]
        return " AND ".join(where), params

    def search_dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        where, params = self._where(filters)
        cast = f"{self.vector_type}({self.dim})"
        join = f" JOIN {self.q}.documents d USING (doc_id) WHERE {where}" if where else ""
        sql = (
            f"SELECT c.id, (c.embedding::{cast} <#> %s::{cast}) AS distance FROM {self.q}.chunks c{join}"
            f" ORDER BY c.embedding::{cast} <#> %s::{cast} LIMIT %s"
        )
        query = np.asarray(vector, dtype=np.float32)
        with self._conn() as conn:  # hnsw.ef_search and iterative scans are set per connection (_prepare)
            rows = conn.execute(sql, [query, *params, query, int(k)]).fetchall()
        if not rows:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        rows.sort(key=lambda r: (r[1], r[0]))  # relaxed order: nearly sorted; make it exact
        return np.array([-r[1] for r in rows], np.float32), np.array([r[0] for r in rows], np.int64)

    def search_lexical(self, query: str, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        counts = Counter(self.store.analyzer.terms([query])[0])
        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        if not counts:
            return empty
        where, params = self._where(filters)
        join = f" JOIN {self.q}.documents d USING (doc_id)" if where else ""
        where_sql = f" AND {where}" if where else ""
        tsquery = " | ".join(_quote_lexeme(t) for t in counts)
        with self._conn() as conn:
            if self.store.lexical == "ts_rank_cd":
                rows = conn.execute(
                    f"SELECT c.id, ts_rank_cd(c.lexemes, q) AS score FROM {self.q}.chunks c{join},"
                    f" CAST(%s AS tsquery) AS q WHERE c.lexemes @@ q{where_sql} ORDER BY score DESC, c.id LIMIT %s",
                    [tsquery, *params, int(k)],
                ).fetchall()
            else:
                rows = self._bm25(conn, counts, k, join, where_sql, params)
        rows = [r for r in rows if r[1] > 0]
        if not rows:
            return empty
        return np.array([r[1] for r in rows], np.float32), np.array([r[0] for r in rows], np.int64)

    def _bm25(self, conn, counts: Counter, k: int, join: str, where_sql: str, params: list) -> list[tuple]:
        """The top k chunks by BM25 (bm25s's formula), exactly, computed over the GIN index's matches.

        Scoring every chunk that holds a common term costs time in proportion to the matches, so
        candidates come first from the rarer terms only (MaxScore): a chunk without any of them
        scores below the sum of the common terms' weights, and if the k-th candidate scores at
        least that, no other chunk can enter the top k. Otherwise every match is scored.
        """
        n, avg = self._corpus_stats(conn)
        df = self._df_counts(conn, list(counts))
        idf = {t: bm25_idf(n, df[t]) for t in counts}
        terms = [t for t in counts if df[t] > 0]
        if not terms:
            return []
        weights = {t: idf[t] * counts[t] for t in terms}  # a repeated query term counts again
        common = {t for t in terms if df[t] > COMMON_SHARE * n}
        rare = [t for t in terms if t not in common]

        def top(match: list[str]) -> list[tuple]:
            return conn.execute(
                f"WITH q(term, weight) AS (SELECT * FROM unnest(%s::text[], %s::float8[])),"
                f" m AS (SELECT c.id, c.lexemes, c.n_terms FROM {self.q}.chunks c{join}"
                f" WHERE c.lexemes @@ CAST(%s AS tsquery){where_sql})"
                f" SELECT m.id, sum(q.weight * t.tf / (t.tf + %s * (1 - %s + %s * m.n_terms / %s))) AS score"
                # Only the query's lexemes of each chunk (marked with weight A, then kept), not all of them.
                f" FROM m CROSS JOIN LATERAL unnest(ts_filter(setweight(m.lexemes, 'A', %s::text[]), '{{a}}'))"
                f" AS u(lexeme, positions, weights) JOIN q ON q.term = u.lexeme"
                f" CROSS JOIN LATERAL (SELECT cardinality(u.positions)::float8 AS tf) t"
                f" GROUP BY m.id ORDER BY score DESC, m.id LIMIT %s",
                [
                    terms,
                    [weights[t] for t in terms],
                    " | ".join(_quote_lexeme(t) for t in match),
                    *params,
                    K1,
                    B,
                    B,
                    max(avg, 1e-9),
                    terms,
                    int(k),
                ],
            ).fetchall()

        if common and rare:
            rows = top(rare)
            if len(rows) == k and rows[-1][1] >= sum(weights[t] for t in common):
                return rows
        return top(terms)

    def _corpus_stats(self, conn) -> tuple[int, float]:
        """(chunks, average terms per chunk), reused for STATS_TTL seconds."""
        with self._stats_lock:
            if self._stats is not None and time.monotonic() - self._stats[0] < STATS_TTL:
                return self._stats[1], self._stats[2]
        n, total = conn.execute(
            f"SELECT coalesce(sum(n_chunks), 0), coalesce(sum(n_terms), 0) FROM {self.q}.documents"
        ).fetchone()
        n, avg = int(n), (float(total) / int(n) if n else 0.0)
        with self._stats_lock:
            self._stats = (time.monotonic(), n, avg)
        return n, avg

    def _df_counts(self, conn, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term (counted with the GIN index), reused for STATS_TTL seconds."""
        now = time.monotonic()
        with self._stats_lock:
            known = {t: v[1] for t, v in self._df.items() if t in terms and now - v[0] < STATS_TTL}
        todo = [t for t in dict.fromkeys(terms) if t not in known]
        if todo:
            rows = conn.execute(
                f"SELECT t.term, (SELECT count(*) FROM {self.q}.chunks c WHERE c.lexemes @@ t.query)"
                f" FROM unnest(%s::text[], %s::tsquery[]) AS t(term, query)",
                [todo, [_quote_lexeme(t) for t in todo]],
            ).fetchall()
            fresh = {t: int(df) for t, df in rows}
            with self._stats_lock:
                if len(self._df) > 10_000:
                    self._df.clear()
                self._df.update({t: (now, df) for t, df in fresh.items()})
            known.update(fresh)
        return known

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        with self._conn() as conn:
            rows = dict(
                conn.execute(f"SELECT id, embedding::vector FROM {self.q}.chunks WHERE id = ANY(%s)", (ids,)).fetchall()
            )
        return np.vstack([np.asarray(rows[i].to_numpy(), dtype=np.float32) for i in ids])

    def coverage(self, query: str) -> Callable[[str], float]:
        terms = list(dict.fromkeys(self.store.analyzer.terms([query])[0]))
        with self._conn() as conn:
            n, _ = self._corpus_stats(conn)
            df = self._df_counts(conn, terms) if terms else {}
        weights = {t: bm25_idf(n, df[t]) for t in terms}
        return coverage_function(weights, self.store.analyzer.terms)

    @property
    def lexical_params(self) -> dict:
        return {
            "library": "postgres",
            "ranking": self.store.lexical,
            **({"k1": K1, "b": B} if self.store.lexical == "bm25" else {}),
            "stopwords": self.store.analyzer.stopwords,
            "stemmer": self.store.analyzer.stemmer_language,
        }


def _chunk(row: Sequence):
    from qa.types import Chunk

    doc_id, ordinal, start, end, page, text_hash, text = row
    return Chunk(doc_id=doc_id, ordinal=ordinal, start=start, end=end, text=text, text_hash=text_hash, page=page)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- the embedding cache ---------------------------------------------------------------------------
class PostgresEmbeddingCache:
    """Vectors by (model, text hash) in the schema's embeddings table; read-only on a replica."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        with self.store.reading() as conn:
            for i in range(0, len(unique), 5000):
                rows = conn.execute(
                    f"SELECT text_hash, vector FROM {self.store.q}.embeddings WHERE model = %s AND text_hash = ANY(%s)",
                    (model, unique[i : i + 5000]),
                ).fetchall()
                found.update({h: np.frombuffer(bytes(v), dtype=np.float32) for h, v in rows})
        return found

    def put_many(self, model: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        if not items:
            return
        with self.store.reading() as conn:
            if self.store.read_only:
                return  # a replica cannot cache; the vectors are still used
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self.store.q}.embeddings (model, text_hash, vector) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
                )

    def close(self) -> None:
        """Connections belong to the store's pool."""


# -- writing -----------------------------------------------------------------------------------------
class PostgresWriter:
    """One update; see the module docstring for what is committed when."""

    embed_group = 1024  # chunks embedded, then stored document by document, at a time

    def __init__(self, store: PostgresStore, conn, embedder: Embedder, settings: Settings, rebuild: bool) -> None:
        self.store = store
        self.conn = conn
        self.embedder = embedder
        self.settings = settings
        self.notes: list[str] = []
        self.q = store.q
        self._cache = PostgresEmbeddingCache(store)
        meta = dict(conn.execute(f"SELECT key, value FROM {self.q}.meta").fetchall())
        if "manifest" in meta and not rebuild:
            store._check_vector_type(meta)
            manifest = Manifest.checked(meta["manifest"], f"the manifest in {store.location}")
            manifest.check_compatible(embedder.cache_key, settings.model, settings.chunk_size, settings.chunk_overlap)
        self.rebuilt = rebuild or "manifest" not in meta
        self._rebuild_tx = None
        if rebuild:
            # One transaction for the whole rebuild: readers keep the previous index until it commits.
            self._rebuild_tx = conn.transaction()
            self._rebuild_tx.__enter__()
            if self._prepare_vectors(meta, replace=True):
                # Another dimension or type: the old rows cannot enter the new HNSW index, even as
                # dead rows; TRUNCATE (rolled back with the rest) keeps readers out until the commit.
                conn.execute(f"TRUNCATE {self.q}.evidence, {self.q}.chunks, {self.q}.documents")
            else:
                conn.execute(f"DELETE FROM {self.q}.documents")
        elif "manifest" not in meta:
            self._prepare_vectors(meta, replace=False)

    def _prepare_vectors(self, meta: dict, replace: bool) -> bool:
        """Record the vector type; a rebuild with another dimension or type drops the old HNSW
        index (True when it did)."""
        dim = int(self.embedder.dim)
        old_dim = int(meta["manifest"]["model"]["dim"]) if "manifest" in meta else None
        other_type = meta.get("vector_type", self.store.vector_type) != self.store.vector_type
        changed = replace and ((old_dim is not None and old_dim != dim) or other_type)
        if changed:
            self.conn.execute(f"DROP INDEX IF EXISTS {self.q}.chunks_embedding_hnsw")
        if replace and other_type:
            self.conn.execute(
                f"ALTER TABLE {self.q}.chunks ALTER COLUMN embedding TYPE {self.store.vector_type}"
                f" USING embedding::{self.store.vector_type}"
            )
        with self._transaction():
            self.conn.execute(
                f"INSERT INTO {self.q}.meta (key, value) VALUES ('vector_type', to_jsonb(%s::text))"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (self.store.vector_type,),
            )
        return changed

    @contextlib.contextmanager
    def _transaction(self):
        """One document's transaction (a savepoint inside a rebuild's transaction)."""
        with self.conn.transaction():
            yield

    # -- IndexWriter ----------------------------------------------------------------------------
    def sources(self) -> dict[str, tuple[str, str]]:
        rows = self.conn.execute(f"SELECT source, doc_id, content_hash FROM {self.q}.documents").fetchall()
        return {s: (d, h) for s, d, h in rows}

    @property
    def cache(self) -> PostgresEmbeddingCache:
        return self._cache

    def put_document(self, doc: Document, chunks: Sequence[IndexedChunk]) -> bool:
        with self._transaction():
            self._lock_document(doc.source)
            row = self.conn.execute(
                f"SELECT doc_id, content_hash FROM {self.q}.documents WHERE source = %s FOR UPDATE", (doc.source,)
            ).fetchone()
            if row is not None and row[1] == doc.content_hash and not self._rebuild_tx:
                return False  # another writer stored this very version meanwhile
            taken = self.conn.execute(
                f"SELECT source FROM {self.q}.documents WHERE doc_id = %s", (doc.doc_id,)
            ).fetchone()
            if taken is not None and taken[0] != doc.source:
                # Another writer gave this id to another file meanwhile: this one gets its path as its id.
                doc = dataclasses.replace(doc, doc_id=doc.source)
                chunks = [dataclasses.replace(c, chunk=dataclasses.replace(c.chunk, doc_id=doc.source)) for c in chunks]
            self.conn.execute(f"DELETE FROM {self.q}.documents WHERE source = %s", (doc.source,))
            lexemes = [self.store.lexemes(c.lexical_text) for c in chunks]
            self.conn.execute(
                f"INSERT INTO {self.q}.documents (doc_id, source, content_hash, title, author, author_key, publisher,"
                f" date, url, page_starts, text, n_chunks, n_terms) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    doc.doc_id,
                    doc.source,
                    doc.content_hash,
                    doc.title,
                    doc.author,
                    doc.author.lower(),
                    doc.publisher,
                    doc.date,
                    doc.url,
                    list(doc.page_starts),
                    doc.text,
                    len(chunks),
                    sum(n for _, n in lexemes),
                ),
            )
            if not chunks:
                return True
            ids = [
                r[0]
                for r in self.conn.execute(
                    f"SELECT nextval('{self.q}.chunk_ids') FROM generate_series(1, %s)", (len(chunks),)
                ).fetchall()
            ]
            with self.conn.cursor() as cur:
                with cur.copy(
                    f'COPY {self.q}.chunks (id, doc_id, ordinal, start, "end", page, text_hash, text, lexemes,'
                    f" n_terms, embedding) FROM STDIN"
                ) as copy:
                    for chunk_id, item, (tsv, n_terms) in zip(ids, chunks, lexemes, strict=True):
                        c = item.chunk
                        copy.write_row(
                            (
                                chunk_id,
                                doc.doc_id,
                                c.ordinal,
                                c.start,
                                c.end,
                                c.page,
                                c.text_hash,
                                c.text,
                                tsv,
                                n_terms,
                                np.asarray(item.vector, dtype=np.float32),
                            )
                        )
                evidence = [(i, c.evidence) for i, c in zip(ids, chunks, strict=True) if c.evidence is not None]
                if evidence:
                    with cur.copy(f"COPY {self.q}.evidence (chunk_id, spans, vectors) FROM STDIN") as copy:
                        for chunk_id, e in evidence:
                            copy.write_row((chunk_id, [x for span in e.spans for x in span], e.to_bytes()))
        return True

    def remove_document(self, doc_id: str) -> None:
        with self._transaction():
            row = self.conn.execute(f"SELECT source FROM {self.q}.documents WHERE doc_id = %s", (doc_id,)).fetchone()
            if row is None:
                return
            self._lock_document(row[0])
            self.conn.execute(f"DELETE FROM {self.q}.documents WHERE doc_id = %s", (doc_id,))

    def _lock_document(self, source: str) -> None:
        """This document's lock until the transaction ends; says so when another writer holds it."""
        key = (DOCUMENT_LOCK, f"{self.store.schema}:{source}")
        if self.conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", key).fetchone()[0]:
            return
        holder = _lock_holder(self.conn, DOCUMENT_LOCK, key[1])
        print(f"waiting for another writer ({holder}) that is storing {source}…", file=sys.stderr)
        self.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", key)

    def counts(self) -> tuple[int, int]:
        row = self.conn.execute(f"SELECT coalesce(sum(n_chunks), 0), count(*) FROM {self.q}.documents").fetchone()
        return int(row[0]), int(row[1])

    def unchanged(self) -> str:
        if self.rebuilt:
            return self.finish(None)
        return self.store.current_name() or self.finish(None)

    def finish(self, manifest: dict | None) -> str:
        from qa.ingest.indexer import base_manifest

        data = dict(manifest or base_manifest(self.settings, self.embedder))
        import psycopg

        data["versions"] = {
            **data.get("versions", {}),
            "psycopg": psycopg.__version__,
            "server": self.conn.execute("SHOW server_version").fetchone()[0],
            "pgvector": self.conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0],
        }
        dim = int(self.embedder.dim)
        data["vectors"] = {
            "library": "pgvector",
            "kind": "hnsw",
            "type": f"{self.store.vector_type}({dim})",
            "distance": "inner product",
            "m": 16,
            "ef_construction": 64,
        }
        data["lexical"] = {
            "library": "postgres",
            "type": "tsvector + GIN",
            "ranking": self.store.lexical,
            "stopwords": self.store.analyzer.stopwords,
            "stemmer": self.store.analyzer.stemmer_language,
        }
        data["corpus"] = {k: v for k, v in data.get("corpus", {}).items() if k not in ("files", "fingerprint")}
        cast = f"{self.store.vector_type}({dim})"
        with self._transaction():
            self.conn.execute("SET LOCAL maintenance_work_mem = '512MB'")  # the HNSW graph in memory while built
            # Built once, after the first load (faster than growing it row by row); kept up to date after.
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON {self.q}.chunks"
                f" USING hnsw ((embedding::{cast}) {self.store.vector_type}_ip_ops)"
            )
            self.conn.execute(
                f"INSERT INTO {self.q}.meta (key, value) VALUES ('manifest', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_jsonb(data),),
            )
            generation = self.conn.execute(
                f"INSERT INTO {self.q}.meta (key, value) VALUES ('generation', '1')"
                " ON CONFLICT (key) DO UPDATE SET value = to_jsonb((meta.value #>> '{{}}')::bigint + 1)"
                " RETURNING value"
            ).fetchone()[0]
        if self._rebuild_tx is not None:
            self._rebuild_tx.__exit__(None, None, None)
            self._rebuild_tx = None
        if self.rebuilt:
            self.conn.execute(f"ANALYZE {self.q}.chunks")
            self.conn.execute(f"ANALYZE {self.q}.documents")
        return f"generation-{int(generation)}"

    def abort(self) -> None:
        """An error or Ctrl-C: a rebuild rolls back whole; an update keeps the documents it committed."""
        if self._rebuild_tx is not None:
            with contextlib.suppress(Exception):
                self._rebuild_tx.__exit__(QAError, QAError("aborted"), None)
            self._rebuild_tx = None


def _jsonb(data: dict):
    from psycopg.types.json import Jsonb

    return Jsonb(data)
