"""The postgres store: the index in a PostgreSQL database with pgvector (see `store`), its
versioned schema (`migrations`), and a throwaway local server for tests and benchmarks (`server`)."""
