"""What qa needs from storage, whichever engine holds the index.

Two stores implement it: `local` (immutable snapshots in a folder: SQLite, FAISS, bm25s;
qa.storage.local) and `postgres` (one database, pgvector and tsvector; qa.storage.postgres).
Indexing, answering, the web chat and evaluation see only these interfaces:

* `Store` — where an index lives (a folder, a database schema): opens a reader, starts a
  writer, holds the embedding cache.
* `IndexReader` — one opened index: documents, chunks with their spans, dense and lexical
  search under filters, stored vectors, the terms' idf for the relevance gate, sentence evidence.
* `IndexWriter` — one update: the indexed sources with their content hashes, then documents
  put or removed (each one whole), then `finish` with the manifest.

Filters reach the store as `Filters`, not as id lists: a database turns them into a WHERE
clause. Search results are (scores, ids) arrays, best first, ids being the store's chunk ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa.storage.manifest import Manifest
from qa.terms import Analyzer
from qa.types import Chunk, Document, Filters

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding.models import Embedder


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk joined with the metadata of its document."""

    id: int
    chunk: Chunk
    title: str
    author: str
    date: str
    source: str


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    source: str
    title: str
    author: str
    publisher: str
    date: str
    url: str
    content_hash: str
    chunks: int
    chars: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ChunkEvidence:
    """Per-chunk sentence evidence: sentence spans (document offsets) and one vector per sentence.

    Computed at index time and stored with the chunk; `vectors` is float32 of shape
    (len(spans), model dimension), stored as float16.
    """

    spans: tuple[tuple[int, int], ...]
    vectors: np.ndarray

    def to_bytes(self) -> bytes:
        # float16: unit vectors keep their cosines within ~1e-3, in half the space (a chunk has ~5).
        return np.ascontiguousarray(self.vectors, dtype=np.float16).tobytes()

    @classmethod
    def from_stored(cls, spans: Sequence[Sequence[int]], blob: bytes) -> ChunkEvidence:
        pairs = tuple((int(s), int(e)) for s, e in spans)
        vectors = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
        return cls(pairs, vectors.reshape(len(pairs), -1) if pairs else vectors.reshape(0, 0))

    def spans_list(self) -> list[list[int]]:
        return [[s, e] for s, e in self.spans]


@dataclass(frozen=True)
class IndexedChunk:
    """What a writer stores for one chunk.

    `search_text` is the text that was embedded and is indexed lexically: the chunk's text,
    or a representation of it (e.g. a context prefix of title and headings plus the text);
    citations always use `chunk.text` and its span.
    """

    chunk: Chunk
    vector: np.ndarray
    search_text: str = ""
    evidence: ChunkEvidence | None = None

    @property
    def lexical_text(self) -> str:
        return self.search_text or self.chunk.text


class EmbeddingCache(Protocol):
    """Vectors by (embedder cache key, hash of the embedded text)."""

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, model: str, items: Sequence[tuple[str, np.ndarray]]) -> None: ...

    def get_sentences(self, model: str, hashes: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Sentence evidence by text hash: (spans (n, 2) within the text, vectors (n, dim))."""
        ...

    def put_sentences(self, model: str, items: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> None: ...

    def close(self) -> None: ...


class IndexReader(Protocol):
    """One opened index, for answering and evaluation. Safe for concurrent readers."""

    name: str  # which version is open (a snapshot name, a database generation)
    opened_for: str  # the live version when it was opened: `name`, unless an older one stood in for it
    warning: str  # why an older version stands in, or ""
    manifest: Manifest

    def documents(self) -> list[DocumentInfo]: ...

    def document(self, doc_id: str) -> Document | None:
        """By document id or corpus-relative path."""
        ...

    def sources(self) -> dict[str, tuple[str, str]]:
        """source -> (doc_id, content_hash)"""
        ...

    def count_chunks(self) -> int: ...

    def chunk_records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]: ...

    def chunk_spans(self) -> list[tuple[int, str, int, int]]:
        """(chunk id, doc_id, start, end) of every chunk, by id."""
        ...

    def search_dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(inner products, chunk ids) of the k nearest chunks passing the filters, best first."""
        ...

    def search_lexical(self, query: str, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, chunk ids) of the k best lexical matches passing the filters; no zero-score padding."""
        ...

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of these chunks, one row each, in order."""
        ...

    def coverage(self, query: str) -> Callable[[str], float]:
        """A function giving the idf-weighted share of the query's terms that a text contains."""
        ...

    def evidence(self, ids: Sequence[int]) -> dict[int, ChunkEvidence]:
        """Sentence evidence of these chunks (those that have it)."""
        ...

    @property
    def analyzer(self) -> Analyzer:
        """How the index turns text into lexical terms (stems, stop words)."""
        ...

    def term_stats(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(chunks in the index, how many of them hold each term), for idf and unknown terms."""
        ...

    def similar_words(self, word: str, max_edits: int) -> list[tuple[str, int]]:
        """(word, edits) of the corpus's words as written that begin with `word`'s letter and lie
        within max_edits of it, nearest first (qa.vocabulary): spelling suggestions."""
        ...

    def consistent(self) -> AbstractContextManager[None]:
        """Reads of this thread inside the block see one state of the index (one answer's reads).

        A snapshot never changes, so the local store needs nothing; a database uses one transaction.
        """
        ...

    @property
    def lexical_params(self) -> dict: ...

    def close(self) -> None: ...


class IndexWriter(Protocol):
    """One update, holding the store's writer lock (see Store.writer).

    The local store publishes everything at `finish` (one new snapshot); the postgres store
    commits each `put_document` / `remove_document` on its own, so that a reader never sees
    half a document and an interrupted update keeps every document it finished.
    """

    rebuilt: bool  # started from an empty index
    # The lexical index is rebuilt with other BM25 parameters (QA_BM25_K1/B) than the index's, so
    # the update is written even if no document changed (nothing is re-embedded).
    relexed: bool
    notes: list[str]
    # Documents are embedded and stored in groups of about this many chunks (0: all at once).
    # A store that commits per document keeps each finished group if the update is interrupted;
    # one that publishes at the end embeds everything in one pass (fewer, fuller batches).
    embed_group: int

    def sources(self) -> dict[str, tuple[str, str]]:
        """What is indexed now: source -> (doc_id, content_hash)."""
        ...

    @property
    def cache(self) -> EmbeddingCache: ...

    def put_document(self, doc: Document, chunks: Sequence[IndexedChunk]) -> bool:
        """Add or replace (same doc_id) a document with its chunks; False if another writer
        had stored this very content meanwhile (nothing written)."""
        ...

    def remove_document(self, doc_id: str) -> None: ...

    def counts(self) -> tuple[int, int]:
        """(chunks, documents) in the index as this writer sees it."""
        ...

    def finish(self, manifest: dict) -> str:
        """Record the manifest and make the update visible; returns the new version's name."""
        ...

    def unchanged(self, failed: list[dict]) -> str:
        """End an update that changed no document; records `failed` ({"path", "reason", "hash"}:
        the files it could not read) in the manifest if they differ. Returns the version's name."""
        ...


class Store(Protocol):
    """Where an index lives."""

    kind: str  # one of STORES (qa.config)
    location: str  # for messages: a folder, or a database and schema

    def open(self, model_key: str, settings: Settings) -> IndexReader:
        """The current index, refused (IndexMismatchError) if built with another model or chunker;
        IndexMissingError when there is none yet."""
        ...

    def current_name(self) -> str:
        """The name a fresh `open` would get ("" when there is no index): cheap, for refresh."""
        ...

    def writer(
        self, embedder: Embedder, settings: Settings, rebuild: bool = False, wait: bool = False
    ) -> AbstractContextManager[IndexWriter]:
        """Exclusive (local) or cooperative (postgres) right to update; see IndexWriter."""
        ...

    def embedding_cache(self) -> EmbeddingCache: ...
