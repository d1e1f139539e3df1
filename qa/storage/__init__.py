"""Where an index lives: snapshots on disk with their manifest, the catalog of documents and chunks,
the vector and lexical indexes."""

from qa._lazy import lazy_exports

_EXPORTS = {
    "Snapshot": "qa.storage.snapshot",
    "IndexLayout": "qa.storage.snapshot",
    "Manifest": "qa.storage.snapshot",
    "Catalog": "qa.storage.catalog",
    "ChunkRecord": "qa.storage.catalog",
    "DocumentInfo": "qa.storage.catalog",
    "FaissFlatStore": "qa.storage.vectors",
    "FaissIvfStore": "qa.storage.vectors",
    "load_store": "qa.storage.vectors",
    "fit_store": "qa.storage.vectors",
    "Bm25Index": "qa.storage.lexical",
    "LexicalIndex": "qa.storage.lexical",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
