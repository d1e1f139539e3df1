"""Reading a postgres index: documents, chunks, dense search (HNSW), lexical search (BM25 in SQL
or ts_rank_cd), filters as WHERE clauses, the terms' idf for the relevance gate."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from qa.storage.base import ChunkEvidence, ChunkRecord, DocumentInfo
from qa.storage.manifest import Manifest, corpus_fingerprint
from qa.storage.postgres.lexical import quote_lexeme
from qa.terms import Analyzer, bm25_idf, coverage_function, query_weights
from qa.types import Chunk, Document, Filters, Locator, Place
from qa.vocabulary import nearest_words

if TYPE_CHECKING:
    from qa.storage.postgres.store import PostgresStore

# Seconds a reader reuses the corpus size and the terms' chunk counts (BM25's idf): they move
# slowly, and a reader is opened anew after every update anyway.
STATS_TTL = 60.0


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
        lexical = data.get("lexical", {})
        self.pairs = float(lexical.get("pairs", 0.0))  # the weight the index's pair lexemes were written for
        saved = lexical.get("stopword_list")
        self.analyzer = (
            Analyzer(store.analyzer.stopwords, store.analyzer.stemmer_language, frozenset(saved))
            if isinstance(saved, list)
            else store.analyzer
        )

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
                f"SELECT doc_id, source, text, content_hash, title, author, publisher, date, url, page_starts,"
                f" locators FROM {self.q}.documents WHERE doc_id = %s OR source = %s ORDER BY doc_id = %s DESC LIMIT 1",
                (doc_id, doc_id, doc_id),
            ).fetchone()
        if row is None:
            return None
        locators = tuple(Locator(int(a), str(u), int(n), str(w)) for a, u, n, w in row[10])
        return Document(*row[:9], page_starts=tuple(row[9]), locators=locators)

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
                f" d.title, d.author, d.date, d.source, c.place::text"
                f" FROM {self.q}.chunks c JOIN {self.q}.documents d USING (doc_id)"
                f" WHERE c.id = ANY(%s)",
                ([int(i) for i in ids],),
            ).fetchall()
        return {r[0]: ChunkRecord(r[0], _chunk(r[1:8], r[12]), r[8], r[9], r[10], r[11]) for r in rows}

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
        terms = self.analyzer.terms([query])[0]
        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        if not terms:
            return empty
        where, params = self._where(filters)
        join = f" JOIN {self.q}.documents d USING (doc_id)" if where else ""
        where_sql = f" AND {where}" if where else ""
        tsquery = " | ".join(quote_lexeme(t) for t in dict.fromkeys(terms))
        with self._conn() as conn:
            if self.store.lexical == "ts_rank_cd":
                rows = conn.execute(
                    f"SELECT c.id, ts_rank_cd(c.lexemes, q) AS score FROM {self.q}.chunks c{join},"
                    f" CAST(%s AS tsquery) AS q WHERE c.lexemes @@ q{where_sql} ORDER BY score DESC, c.id LIMIT %s",
                    [tsquery, *params, int(k)],
                ).fetchall()
            else:
                rows = self._bm25(conn, query_weights(terms, self.pairs), k, join, where_sql, params)
        rows = [r for r in rows if r[1] > 0]
        if not rows:
            return empty
        return np.array([r[1] for r in rows], np.float32), np.array([r[0] for r in rows], np.int64)

    def _bm25(self, conn, asked: dict[str, float], k: int, join: str, where_sql: str, params: list) -> list[tuple]:
        """The top k chunks by BM25 (bm25s's formula), exactly, computed over the GIN index's matches.

        Scoring every chunk that holds a common term costs time in proportion to the matches, so
        candidates come first from the rarer terms only (MaxScore): a chunk without any of them
        scores below the sum of the other terms' weights, and if the k-th candidate scores at
        least that, no other chunk can enter the top k. The rarer terms are the fewest, taken from
        the rarest, whose matches can fill k; then all but the most common; else every match.
        """
        n, avg = self._corpus_stats(conn)
        df = self._df_counts(conn, list(asked))
        idf = {t: bm25_idf(n, df[t]) for t in asked}
        terms = [t for t in asked if df[t] > 0]
        if not terms:
            return []
        weights = {t: idf[t] * asked[t] for t in terms}  # a repeated query term counts again; pairs by their weight
        by_df = sorted(terms, key=lambda t: (df[t], t))
        splits = []
        for end in range(1, len(by_df)):
            if sum(df[t] for t in by_df[:end]) >= k or end == len(by_df) - 1:
                splits.append(end)
                break
        if len(by_df) > 2 and len(by_df) - 1 not in splits:
            splits.append(len(by_df) - 1)

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
                    " | ".join(quote_lexeme(t) for t in match),
                    *params,
                    self.store.k1,
                    self.store.b,
                    self.store.b,
                    max(avg, 1e-9),
                    terms,
                    int(k),
                ],
            ).fetchall()

        for end in splits:
            rare, common = by_df[:end], by_df[end:]
            if sum(df[t] for t in rare) > sum(df[t] for t in terms) / 2:
                break  # not much fewer matches than scoring everything: a failed pass would cost double
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
                [todo, [quote_lexeme(t) for t in todo]],
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

    def term_stats(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        terms = list(dict.fromkeys(terms))
        with self._conn() as conn:
            n, _ = self._corpus_stats(conn)
            df = self._df_counts(conn, terms) if terms else {}
        return n, {t: df.get(t, 0) for t in terms}

    def similar_words(self, word: str, max_edits: int) -> list[tuple[str, int]]:
        if not word:
            return []
        # The words with its first letter (a range of the primary key), of a length within reach.
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT word FROM {self.q}.words WHERE word >= %s AND word < %s AND length(word) BETWEEN %s AND %s",
                [word[0], chr(ord(word[0]) + 1), len(word) - max_edits, len(word) + max_edits],
            ).fetchall()
        return nearest_words(word, [r[0] for r in rows], max_edits)

    def coverage(self, query: str) -> Callable[[str], float]:
        terms = list(dict.fromkeys(self.analyzer.terms([query])[0]))
        with self._conn() as conn:
            n, _ = self._corpus_stats(conn)
            df = self._df_counts(conn, terms) if terms else {}
        weights = {t: bm25_idf(n, df[t]) for t in terms}
        return coverage_function(weights, self.analyzer.terms)

    @property
    def lexical_params(self) -> dict:
        return {
            "library": "postgres",
            "ranking": self.store.lexical,
            **({"k1": self.store.k1, "b": self.store.b, "pairs": self.pairs} if self.store.lexical == "bm25" else {}),
            "stopwords": self.analyzer.stopwords,
            "stemmer": self.analyzer.stemmer_language,
        }


def _chunk(row: Sequence, place: str | None = None) -> Chunk:
    doc_id, ordinal, start, end, page, text_hash, text = row
    return Chunk(
        doc_id=doc_id,
        ordinal=ordinal,
        start=start,
        end=end,
        text=text,
        text_hash=text_hash,
        page=page,
        place=Place.from_json(place),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
