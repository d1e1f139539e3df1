"""Where an index lives, behind one interface (`base`): the `local` store (snapshots in a folder:
SQLite catalog, FAISS vectors, bm25s lexical index) and the `postgres` store (pgvector, tsvector)."""

from qa._lazy import lazy_exports

_EXPORTS = {
    "Store": "qa.storage.base",
    "IndexReader": "qa.storage.base",
    "IndexWriter": "qa.storage.base",
    "EmbeddingCache": "qa.storage.base",
    "ChunkRecord": "qa.storage.base",
    "ChunkEvidence": "qa.storage.base",
    "DocumentInfo": "qa.storage.base",
    "IndexedChunk": "qa.storage.base",
    "open_store": "qa.storage.stores",
    "STORES": "qa.config",
    "Manifest": "qa.storage.manifest",
    "LocalStore": "qa.storage.local.store",
    "Snapshot": "qa.storage.local.snapshot",
    "IndexLayout": "qa.storage.local.snapshot",
    "Catalog": "qa.storage.local.catalog",
    "FaissFlatStore": "qa.storage.local.vectors",
    "FaissIvfStore": "qa.storage.local.vectors",
    "load_store": "qa.storage.local.vectors",
    "fit_store": "qa.storage.local.vectors",
    "Bm25Index": "qa.storage.local.lexical",
    "LexicalIndex": "qa.storage.local.lexical",
    "PostgresStore": "qa.storage.postgres.store",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
