"""Finding passages: dense, lexical and hybrid search over a snapshot (`search`), the pure fusion
functions (`fusion`), the re-ranker (`rerank`) and the spelling fallback (`spelling`).

The package exports nothing: callers import the module they need.
"""
