"""Where an index lives: snapshots on disk with their manifest, the catalog of documents and chunks,
the vector and lexical indexes."""

from qa._lazy import lazy_exports

_EXPORTS = {
    "Snapshot": "qa.storage.local.snapshot",
    "IndexLayout": "qa.storage.local.snapshot",
    "Manifest": "qa.storage.local.snapshot",
    "Catalog": "qa.storage.local.catalog",
    "ChunkRecord": "qa.storage.local.catalog",
    "DocumentInfo": "qa.storage.local.catalog",
    "FaissFlatStore": "qa.storage.local.vectors",
    "FaissIvfStore": "qa.storage.local.vectors",
    "load_store": "qa.storage.local.vectors",
    "fit_store": "qa.storage.local.vectors",
    "Bm25Index": "qa.storage.local.lexical",
    "LexicalIndex": "qa.storage.local.lexical",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
