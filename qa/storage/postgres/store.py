"""The postgres store: one PostgreSQL database with pgvector holds the index.

* Vectors: pgvector, an HNSW index for inner product (`vector`, or `halfvec` for half the
  memory); filters are plain WHERE clauses and pgvector 0.8's iterative index scans keep
  returning rows until k pass them.
* Lexical: a tsvector of each chunk's terms (the same analysis as the local store:
  qa.terms) with a GIN index; ranked by BM25 computed in SQL over the GIN matches
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
import os
import socket
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from qa.errors import IndexLockedError, IndexMismatchError, IndexMissingError, QAError
from qa.storage.postgres.cache import PostgresEmbeddingCache
from qa.storage.postgres.connection import CONNECT_TIMEOUT, WRITERS_LOCK, connection_error, describe_dsn, lock_holder
from qa.storage.postgres.lexical import K1, B
from qa.storage.postgres.migrations import LATEST, MIGRATIONS
from qa.storage.postgres.reader import PostgresReader
from qa.storage.postgres.writer import PostgresWriter
from qa.terms import Analyzer

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding.models import Embedder

__all__ = ["PostgresEmbeddingCache", "PostgresReader", "PostgresStore", "PostgresWriter"]


class PostgresStore:
    kind = "postgres"

    def __init__(
        self,
        dsn: str,
        schema: str = "qa",
        vector_type: str = "vector",
        lexical: str = "bm25",
        ef_search: int = 100,
        bm25: tuple[float, float] = (K1, B),
        pairs: float = 0.0,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.vector_type = vector_type
        self.lexical = lexical
        self.ef_search = ef_search
        # BM25's k1 and b (QA_BM25_K1/B), applied as the SQL scores each query: no re-indexing.
        self.k1, self.b = (float(x) for x in bm25)
        # Adjacent-term pairs written into new chunks' lexemes (QA_BM25_PAIRS); the index's own
        # weight, recorded in its manifest, is what queries use.
        self.pairs = float(pairs)
        self.location = f"PostgreSQL {describe_dsn(dsn)}, schema {schema}"
        self._pool = None
        self._lock = threading.Lock()
        self.read_only = False
        self.analyzer = Analyzer()
        self._migrated = False

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        return _shared_store(
            settings.pg_dsn,
            settings.pg_schema,
            settings.pg_vector,
            settings.pg_lexical,
            settings.pg_ef_search,
            (settings.bm25_k1, settings.bm25_b),
            settings.bm25_pairs,
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
        applied = self._applied(conn)
        version = max(applied, default=0)
        if applied >= set(MIGRATIONS) and installed:
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

    def _applied(self, conn) -> set[int]:
        """The migrations this schema has (every one is checked: one missing in the middle is applied)."""
        exists = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_migrations'", (self.schema,)
        ).fetchone()
        if not exists:
            return set()
        return {int(r[0]) for r in conn.execute(f"SELECT version FROM {self.q}.schema_migrations")}

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
        reader.manifest.check_settings(model_key, settings)
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


_STORES: dict[tuple, PostgresStore] = {}
_STORES_LOCK = threading.Lock()


def _shared_store(
    dsn: str,
    schema: str,
    vector_type: str,
    lexical: str,
    ef_search: int,
    bm25: tuple[float, float] = (K1, B),
    pairs: float = 0.0,
) -> PostgresStore:
    """One store object (and so one connection pool) per process and configuration."""
    key = (dsn, schema, vector_type, lexical, ef_search, bm25, pairs)
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = PostgresStore(dsn, schema, vector_type, lexical, ef_search, bm25, pairs)
        return _STORES[key]


def _lock_writers(conn, store: PostgresStore, exclusive: bool, wait: bool) -> None:
    """The schema's writer lock: shared by updates, exclusive for a rebuild (session-level)."""
    kind = "" if exclusive else "_shared"
    key = (WRITERS_LOCK, store.schema)
    if conn.execute(f"SELECT pg_try_advisory_lock{kind}(%s, hashtext(%s))", key).fetchone()[0]:
        return
    holder = lock_holder(conn, WRITERS_LOCK, store.schema)
    what = "an update" if exclusive else "a rebuild (`qa index --rebuild`)"
    if not wait:
        raise IndexLockedError(
            f"{what} of {store.location} is running ({holder}); wait for it to finish, then run the command again"
        )
    print(f"waiting for {what} of {store.location} to finish ({holder})…", file=sys.stderr)
    conn.execute(f"SELECT pg_advisory_lock{kind}(%s, hashtext(%s))", key)
