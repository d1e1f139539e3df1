"""The local store: immutable snapshots on disk (SQLite catalog, FAISS vectors, bm25s lexical index)."""
