"""From corpus files to an index: reading documents, chunking them, sentence spans, and `qa index`."""

from qa._lazy import lazy_exports

_EXPORTS = {
    "scan_corpus": "qa.ingest.readers",
    "parse_document": "qa.ingest.readers",
    "CorpusScan": "qa.ingest.readers",
    "ReadError": "qa.ingest.readers",
    "SUPPORTED_SUFFIXES": "qa.ingest.readers",
    "Chunker": "qa.ingest.chunking",
    "split_sentences": "qa.ingest.sentences",
    "update_index": "qa.ingest.indexer",
    "IndexReport": "qa.ingest.indexer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
