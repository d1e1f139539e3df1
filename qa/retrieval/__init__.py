"""Finding passages: dense, lexical and hybrid search over a snapshot, and the pure fusion functions."""

from qa._lazy import lazy_exports

_EXPORTS = {
    "Searcher": "qa.retrieval.search",
    "Filters": "qa.retrieval.search",
    "Candidate": "qa.retrieval.search",
    "Ranking": "qa.retrieval.search",
    "MODES": "qa.retrieval.search",
    "reciprocal_rank_fusion": "qa.retrieval.fusion",
    "convex_combination": "qa.retrieval.fusion",
    "min_max": "qa.retrieval.fusion",
    "merge_overlapping": "qa.retrieval.fusion",
    "strictly_decreasing": "qa.retrieval.fusion",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
