"""Where an index lives, behind one interface (`base`): the `local` store (snapshots in a folder:
SQLite catalog, FAISS vectors, bm25s lexical index) and the `postgres` store (pgvector, tsvector).

The package exports nothing: callers import the module they need (`stores.open_store` opens the
store the settings name), so that the local store does not import the PostgreSQL driver.
"""
