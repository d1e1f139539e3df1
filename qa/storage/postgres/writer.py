"""Writing a postgres index: each document's change in one transaction under its advisory lock;
a rebuild in one transaction; the HNSW index built after the first load; the manifest in `meta`."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from qa.errors import EncoderRevisedError, IndexMismatchError, QAError
from qa.storage.base import IndexedChunk
from qa.storage.manifest import Manifest, base_manifest
from qa.storage.postgres.cache import PostgresEmbeddingCache
from qa.storage.postgres.connection import DOCUMENT_LOCK, lock_holder
from qa.storage.postgres.lexical import tsvector_literal
from qa.types import Document
from qa.vocabulary import words_of

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding.models import Embedder
    from qa.storage.postgres.store import PostgresStore


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
            try:
                manifest.check_settings(embedder.cache_key, settings)
            except EncoderRevisedError as exc:
                self.notes.append(f"{str(exc).split(';')[0]}: every chunk is embedded again")
                rebuild = True
            built = float(manifest.data.get("lexical", {}).get("pairs", 0.0))
            if not rebuild and built != store.pairs:
                raise IndexMismatchError(
                    f"the index's lexical terms were written with term pairs {built:g}, not {store.pairs:g}; "
                    f"run `qa index --rebuild` (nothing is re-embedded), or set QA_BM25_PAIRS={built:g}"
                )
        self.rebuilt = rebuild or "manifest" not in meta
        self.relexed = False  # BM25 is computed at query time, with the reader's parameters
        self._rebuild_tx = None
        if rebuild:
            # One transaction for the whole rebuild: readers keep the previous index until it commits.
            self._rebuild_tx = conn.transaction()
            self._rebuild_tx.__enter__()
            if self._prepare_vectors(meta, replace=True):
                # Another dimension or type: the old rows cannot enter the new HNSW index, even as
                # dead rows; TRUNCATE (rolled back with the rest) keeps readers out until the commit.
                conn.execute(f"TRUNCATE {self.q}.evidence, {self.q}.chunks, {self.q}.documents, {self.q}.words")
            else:
                conn.execute(f"DELETE FROM {self.q}.documents")
                conn.execute(f"DELETE FROM {self.q}.words")
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
            lexemes = [tsvector_literal(self.store.analyzer, c.lexical_text, self.store.pairs > 0) for c in chunks]
            self.conn.execute(
                f"INSERT INTO {self.q}.documents (doc_id, source, content_hash, title, author, author_key, publisher,"
                f" date, url, page_starts, text, n_chunks, n_terms, locators)"
                f" VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
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
                    _jsonb([[x.start, x.unit, x.number, x.within] for x in doc.locators]),
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
                    f" n_terms, embedding, place) FROM STDIN"
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
                                c.place and c.place.to_json(),
                            )
                        )
                evidence = [(i, c.evidence) for i, c in zip(ids, chunks, strict=True) if c.evidence is not None]
                if evidence:
                    with cur.copy(f"COPY {self.q}.evidence (chunk_id, spans, vectors) FROM STDIN") as copy:
                        for chunk_id, e in evidence:
                            copy.write_row((chunk_id, [x for span in e.spans for x in span], e.to_bytes()))
            # In order, so that two writers adding the same new words wait for each other, never deadlock.
            words = sorted(words_of(c.lexical_text for c in chunks))
            self.conn.execute(
                f"INSERT INTO {self.q}.words (word) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (words,)
            )
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
        holder = lock_holder(self.conn, DOCUMENT_LOCK, key[1])
        print(f"waiting for another writer ({holder}) that is storing {source}…", file=sys.stderr)
        self.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", key)

    def counts(self) -> tuple[int, int]:
        row = self.conn.execute(f"SELECT coalesce(sum(n_chunks), 0), count(*) FROM {self.q}.documents").fetchone()
        return int(row[0]), int(row[1])

    def unchanged(self, failed: list[dict]) -> str:
        row = self.conn.execute(f"SELECT value FROM {self.q}.meta WHERE key = 'manifest'").fetchone()
        if self.rebuilt or row is None or not self.store.current_name():
            return self.finish(None, failed)
        if row[0].get("corpus", {}).get("failed", []) == failed:
            return self.store.current_name()
        data = dict(row[0])  # the same index; its manifest names this update's failed files
        data["corpus"] = {**data.get("corpus", {}), "failed": failed}
        with self._transaction():
            return self._publish(data)

    def _publish(self, data: dict) -> str:
        """Store the manifest and bump the generation (readers then reopen); in the caller's transaction."""
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
        return f"generation-{int(generation)}"

    def finish(self, manifest: dict | None, failed: list[dict] | None = None) -> str:
        data = dict(manifest or base_manifest(self.settings, self.embedder))
        if failed is not None:
            data["corpus"] = {**data.get("corpus", {}), "failed": failed}
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
            "pairs": self.store.pairs,
            "stopwords": self.store.analyzer.stopwords,
            "stemmer": self.store.analyzer.stemmer_language,
            # The list itself, so that answering needs no bm25s import.
            "stopword_list": self.store.analyzer.stopword_list(),
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
            name = self._publish(data)
        if self._rebuild_tx is not None:
            self._rebuild_tx.__exit__(None, None, None)
            self._rebuild_tx = None
        if self.rebuilt:
            self.conn.execute(f"ANALYZE {self.q}.chunks")
            self.conn.execute(f"ANALYZE {self.q}.documents")
        return name

    def abort(self) -> None:
        """An error or Ctrl-C: a rebuild rolls back whole; an update keeps the documents it committed."""
        if self._rebuild_tx is not None:
            with contextlib.suppress(Exception):
                self._rebuild_tx.__exit__(QAError, QAError("aborted"), None)
            self._rebuild_tx = None


def _jsonb(data: dict | list):
    from psycopg.types.json import Jsonb

    return Jsonb(data)
