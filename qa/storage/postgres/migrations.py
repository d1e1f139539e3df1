"""The schema, as numbered migrations applied on connect (each once, in order, in one transaction).

Every table lives in the store's schema (QA_PG_SCHEMA, default `qa`), so that one database can
hold several indexes (a corpus, a benchmark). `{s}` below is that schema's quoted name and
`{vector}` the vector column type chosen when the schema was created (QA_PG_VECTOR).

The vector column has no fixed dimension: the HNSW index is an expression index on
`embedding::{vector}(dim)`, made by the first update that knows the model's dimension, so that
a rebuild with another model only has to replace that index.
"""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE {s}.meta (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE {s}.documents (
    doc_id text PRIMARY KEY,
    source text NOT NULL UNIQUE,
    content_hash text NOT NULL,
    title text NOT NULL,
    author text NOT NULL,
    author_key text NOT NULL,          -- author in lower case (Python's), for the author filter
    publisher text NOT NULL,
    date text NOT NULL,
    url text NOT NULL,
    page_starts integer[] NOT NULL,
    text text NOT NULL,
    n_chunks integer NOT NULL,
    n_terms bigint NOT NULL,           -- lexical terms of all its chunks: BM25's average length
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_date ON {s}.documents (date COLLATE "C");
CREATE TABLE {s}.chunks (
    id bigint PRIMARY KEY,
    doc_id text NOT NULL REFERENCES {s}.documents (doc_id) ON DELETE CASCADE,
    ordinal integer NOT NULL,
    start integer NOT NULL,
    "end" integer NOT NULL,
    page integer,
    text_hash text NOT NULL,
    text text NOT NULL,
    lexemes tsvector NOT NULL,          -- the terms of the chunk's search text, with positions
    n_terms integer NOT NULL,
    embedding {vector} NOT NULL
);
CREATE SEQUENCE {s}.chunk_ids OWNED BY {s}.chunks.id;
CREATE INDEX chunks_doc ON {s}.chunks (doc_id);
CREATE INDEX chunks_lexemes ON {s}.chunks USING gin (lexemes);
CREATE TABLE {s}.evidence (
    chunk_id bigint PRIMARY KEY REFERENCES {s}.chunks (id) ON DELETE CASCADE,
    spans integer[] NOT NULL,           -- start, end, start, end, ... (document offsets)
    vectors bytea NOT NULL              -- float32, one row per sentence
);
CREATE TABLE {s}.embeddings (
    model text NOT NULL,
    text_hash text NOT NULL,
    vector bytea NOT NULL,              -- float32
    PRIMARY KEY (model, text_hash)
);
""",
    # Vectors inline in the row (1.5 KB at 384 dimensions) rather than compressed out of line:
    # exact scans (small tables, narrow filters) no longer fetch and decompress each one.
    2: """
ALTER TABLE {s}.chunks ALTER COLUMN embedding SET STORAGE PLAIN;
""",
    # Sentence evidence cached with the chunk's embedding, by the same text hash: an unchanged
    # chunk re-indexed (a rebuild, another writer) embeds nothing. Evidence is stored as float16.
    3: """
CREATE TABLE IF NOT EXISTS {s}.sentence_vectors (
    model text NOT NULL,                -- the embedder's cache key, the method and the splitter
    text_hash text NOT NULL,
    spans integer[] NOT NULL,           -- start, end, ... within the embedded text
    vectors bytea NOT NULL,             -- float16, one row per sentence
    PRIMARY KEY (model, text_hash)
);
COMMENT ON COLUMN {s}.evidence.vectors IS 'float16, one row per sentence';
""",
    # The chunks' words as written, for spelling suggestions (qa.vocabulary). A removed
    # document's words stay until a rebuild: a suggestion must also be a term some chunk holds.
    # An index made before this migration gets the words of its chunks' text (not their titles').
    4: """
CREATE TABLE IF NOT EXISTS {s}.words (word text COLLATE "C" PRIMARY KEY);
INSERT INTO {s}.words
    SELECT DISTINCT m[1] FROM {s}.chunks c, regexp_matches(lower(c.text), '\\m([[:alpha:]]{{4,}})\\M', 'g') AS m
    ON CONFLICT DO NOTHING;
""",
    # Readers' feedback and the questions asked (qa.storage.feedback). No update or rebuild
    # touches this table: it outlives every generation of the index.
    5: """
CREATE TABLE IF NOT EXISTS {s}.feedback (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,                 -- asked, good, bad, answered
    time timestamptz NOT NULL,
    channel text NOT NULL,
    question text NOT NULL,
    searched text NOT NULL,
    history jsonb NOT NULL,             -- the earlier questions, oldest first
    passages jsonb NOT NULL,            -- a list of doc_id, start, end, rank
    answer text NOT NULL,
    rank integer,
    index_version text NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_time ON {s}.feedback (time);
""",
    # Where each slide, chapter or spreadsheet row begins ([start, unit, number, sheet] each),
    # and the place each chunk cites ([unit, first, last, sheet]); PDFs keep page_starts and page.
    6: """
ALTER TABLE {s}.documents ADD COLUMN IF NOT EXISTS locators jsonb NOT NULL DEFAULT '[]';
ALTER TABLE {s}.chunks ADD COLUMN IF NOT EXISTS place jsonb;
""",
}

LATEST = max(MIGRATIONS)
