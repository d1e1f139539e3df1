"""Settings from one place: defaults, overridden by QA_* environment variables, then by flags."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from qa.errors import QAError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# QA_CHUNK_CONTEXT: nothing, the document's title, or the title and the headings above the chunk
# (qa.ingest.representation makes the prefix).
CONTEXTS = ("none", "title", "title+headings")

# Environment variable for each setting that has one.
ENV_VARS = {
    "corpus_dir": "QA_CORPUS",
    "index_dir": "QA_INDEX",
    "model": "QA_MODEL",
    "backend": "QA_BACKEND",
    "chunk_size": "QA_CHUNK_SIZE",
    "chunk_overlap": "QA_CHUNK_OVERLAP",
    "chunk_context": "QA_CHUNK_CONTEXT",
    "context_tokens": "QA_CONTEXT_TOKENS",
    "paragraph_size": "QA_PARAGRAPH_SIZE",
    "max_file_mb": "QA_MAX_FILE_MB",
    "max_pages": "QA_MAX_PAGES",
    "parse_memory_mb": "QA_PARSE_MEMORY_MB",
    "parse_seconds": "QA_PARSE_SECONDS",
    "max_cells": "QA_MAX_CELLS",
    "ocr": "QA_OCR",
    "ocr_memory_mb": "QA_OCR_MEMORY_MB",
    "ocr_seconds": "QA_OCR_SECONDS",
    "max_zip_mb": "QA_MAX_ZIP_MB",
    "min_relevance": "QA_MIN_RELEVANCE",
    "fusion": "QA_FUSION",
    "lexical_weight": "QA_LEXICAL_WEIGHT",
    "rrf_k": "QA_RRF_K",
    "candidates": "QA_CANDIDATES",
    "rerank_depth": "QA_RERANK_DEPTH",
    "bm25_k1": "QA_BM25_K1",
    "bm25_b": "QA_BM25_B",
    "bm25_pairs": "QA_BM25_PAIRS",
    "ann_threshold": "QA_ANN_THRESHOLD",
    "store": "QA_STORE",
    "pg_dsn": "QA_PG_DSN",
    "pg_schema": "QA_PG_SCHEMA",
    "pg_vector": "QA_PG_VECTOR",
    "pg_lexical": "QA_PG_LEXICAL",
    "pg_ef_search": "QA_PG_EF_SEARCH",
    "sentence_vectors": "QA_SENTENCE_VECTORS",
    "spelling": "QA_SPELLING",
    "reader": "QA_READER",
    "feedback": "QA_FEEDBACK",
}


@dataclass(frozen=True)
class Settings:
    # The corpus folder: the files `qa index` reads, sub-folders included.
    corpus_dir: Path = Path("corpus")
    # The index folder of the local store: its snapshots, the embedding cache and readers' feedback.
    index_dir: Path = Path("index")
    # A sentence-transformers model name or path; "all-MiniLM-L6-v2" is the bundled copy.
    # "hash" selects a deterministic hashing embedder (no model, for tests and dry runs).
    model: str = DEFAULT_MODEL
    # How the model runs: "torch" (sentence-transformers, the reference), "onnx" or "onnx-int8"
    # (ONNX Runtime; no torch import when answering). Vectors differ slightly between
    # backends, so an index records which one built it.
    # onnx-int8 is the default: on SciFact its hybrid nDCG@10 is 0.722 against torch's 0.721
    # (dense alone: 0.685 against 0.693), it embeds ~2x faster, and answering needs no torch.
    backend: str = "onnx-int8"
    # Chunks are measured in the embedding model's tokens (special tokens included),
    # so no chunk is ever truncated by the encoder. 128 tokens scored best for dense
    # retrieval on SciFact here (docs/evaluation.md).
    chunk_size: int = 128
    chunk_overlap: int = 32
    # A paragraph longer than a chunk but within this many tokens stays one chunk instead of
    # being cut in two; chunk_size or less (0) turns this off. 224 leaves 32 of the model's 256
    # for the context prefix; on squad-dev-a it lifts hybrid Hit@1 from 0.846 to 0.871, SciFact
    # train nDCG@10 moves by -0.005 (bench/tune.py).
    paragraph_size: int = 224
    # What a chunk's embedded and BM25-indexed text carries besides its own words, as a prefix:
    # "none", "title" (the document's title) or "title+headings" (and, for Markdown and HTML,
    # the headings above the chunk). The chunk's text and span stay the document's own.
    chunk_context: str = "title+headings"
    # At most this many model tokens of context before a chunk. Each one costs encoder time:
    # on SciFact (titles of ~22 tokens) 16 keeps indexing at 0.88x the speed without context
    # (64: 0.76x) for 0.002 less nDCG@10 on train; squad-dev-a's short titles fit either way.
    context_tokens: int = 16
    # Larger files are skipped with a reason (a 50 MB text would be a million-chunk document).
    max_file_mb: float = 20.0
    # Limits on reading one untrusted file (qa.ingest.isolation): PDFs are parsed in a worker
    # process with this much memory and time, up to this many pages. A file over a
    # limit is skipped with its reason; the rest of the corpus is indexed.
    max_pages: int = 2000
    parse_memory_mb: int = 512
    parse_seconds: float = 60.0
    # Office files and e-books are zip archives: one that would expand past max_zip_mb is
    # refused before it is inflated; spreadsheets (XLSX, CSV) are read up to max_cells cells.
    max_cells: int = 1_000_000
    max_zip_mb: float = 256.0
    # PDF pages without a text layer are read by OCR (qa.ingest.ocr, when rapidocr-onnxruntime
    # is installed) in a worker of its own with this much memory and this long per page.
    ocr: str = "on"
    ocr_memory_mb: int = 2048
    ocr_seconds: float = 120.0
    # The relevance gate answers a question only when its fitted probability that the corpus
    # holds an answer reaches this; None uses the threshold fitted with the answer models
    # (qa/answering/answer_models.json: at most 0.5 % of answerable questions refused). 0 answers
    # every question with whatever passages come closest.
    min_relevance: float | None = None
    # Hybrid fusion of the dense and lexical chunk rankings: "convex" scores a chunk
    # (1 - w) * minmax(cosine) + w * minmax(BM25) with w = lexical_weight over the top
    # `candidates` chunks of each retriever; "rrf" is reciprocal rank fusion with rrf_k. Chosen on
    # SciFact train and squad-dev-a together (bench/tune.py): convex, w = 0.5. 1000 candidates
    # scored 0.001-0.003 higher than 300 but cost 5-25 % of a hybrid query's time (docs/evaluation.md).
    fusion: str = "convex"
    lexical_weight: float = 0.5
    rrf_k: int = 60
    candidates: int = 300  # per retriever, before fusion
    # The fused ranking's top `rerank_depth` chunks are re-ranked by a model fitted on SciFact
    # train and squad-dev-a together (qa.retrieval.rerank: best sentence cosine, term coverage,
    # phrase pairs, both scores); 0 turns it off. Hybrid mode only: dense and lexical stay the
    # single retrievers. 20 is the pool `ask` reads anyway, so it fetches nothing more.
    rerank_depth: int = 20
    # BM25's term-frequency saturation and length normalisation. k1 = 0.9, b = 0.4 (Anserini's
    # defaults for BEIR) beat 1.5 / 0.75 on both SciFact train and squad-dev-a (bench/tune.py).
    # A change takes effect at the next `qa index`, which rebuilds the lexical index (no re-embedding).
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    # Adjacent-term pairs in the lexical index, and their weight in a query's BM25 sum beside its
    # terms' (1 each); 0 indexes none. 0.25 lifted squad-dev-a Hit@1 by about a point and left
    # SciFact train level (bench/tune.py --part extras). Like k1 and b, a change rebuilds the
    # lexical index at the next `qa index` (PostgreSQL: `qa index --rebuild`), nothing re-embedded.
    bm25_pairs: float = 0.25
    # From this many chunks on, vectors go in an approximate (IVF) index calibrated to
    # recall@10 >= 0.98 of exact search; below it, exact search is fast enough.
    ann_threshold: int = 50_000
    # Where the index lives: "local" (snapshots in index_dir) or "postgres" (a PostgreSQL
    # database with pgvector: pg_dsn, a libpq connection string, and a schema in it).
    store: str = "local"
    pg_dsn: str = ""
    pg_schema: str = "qa"
    # Column type of the vectors: "vector" (float32) or "halfvec" (float16: half the memory
    # and disk, recall@10 within ~0.01 here); fixed when the schema's index is first built.
    pg_vector: str = "vector"
    # Lexical ranking in postgres: "bm25" (the local store's BM25, computed in SQL over the
    # GIN index's matches) or "ts_rank_cd" (PostgreSQL's cover density; see docs/postgresql.md).
    pg_lexical: str = "bm25"
    # HNSW candidate list per query (pgvector's hnsw.ef_search); iterative scans extend it
    # when filters reject candidates.
    pg_ef_search: int = 100
    # How each chunk's sentence vectors are made at indexing time (qa.embedding.evidence):
    # "late" pools the chunk's own token embeddings over each sentence (free, in the chunk's
    # forward pass); "alone" encodes each sentence by itself.
    sentence_vectors: str = "late"
    # Spelling fallback (qa.retrieval.spelling): a question's word that no document uses and that
    # is no English word is searched as the corpus's nearest word ("povertly" -> "poverty"), and
    # the answer says so; "off" searches every word as asked.
    spelling: str = "on"
    # The reader (qa.answering.reader, a cross-encoder trained here) re-reads the best candidate
    # sentences and marks the answer phrase; "off" answers with the fitted scorer alone.
    reader: str = "on"
    # Readers' feedback and the questions asked (qa.storage.feedback), kept beside the index for
    # `qa report` and `qa feedback export`; off records nothing.
    feedback: str = "on"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then QA_* variables from `env` (os.environ by default), then overrides (None ignored)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[name] = _convert(name, types[name], raw.strip(), var)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("corpus_dir", "index_dir"):
            if key in values:
                values[key] = Path(values[key]).expanduser()  # type: ignore[arg-type]
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def with_(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validate(self) -> None:
        if self.chunk_size < 16:
            raise QAError(f"chunk size must be at least 16 tokens (got {self.chunk_size})")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2 + 1:
            raise QAError(
                f"chunk overlap must be between 0 and half the chunk size "
                f"(got {self.chunk_overlap} for size {self.chunk_size})"
            )
        if self.chunk_context not in CONTEXTS:
            raise QAError(f"QA_CHUNK_CONTEXT must be {', '.join(CONTEXTS)} (got {self.chunk_context!r})")
        if not 1 <= self.context_tokens <= 128:
            raise QAError(f"QA_CONTEXT_TOKENS must be between 1 and 128 (got {self.context_tokens})")
        if self.paragraph_size < 0:
            raise QAError(f"QA_PARAGRAPH_SIZE must be 0 or more tokens (got {self.paragraph_size})")
        if self.backend not in ("torch", "onnx", "onnx-int8"):
            raise QAError(f"QA_BACKEND must be torch, onnx or onnx-int8 (got {self.backend!r})")
        if self.fusion not in ("convex", "rrf"):
            raise QAError(f"QA_FUSION must be convex or rrf (got {self.fusion!r})")
        if not 0.0 <= self.lexical_weight <= 1.0:
            raise QAError(f"QA_LEXICAL_WEIGHT must be between 0 and 1 (got {self.lexical_weight})")
        if self.min_relevance is not None and not 0.0 <= self.min_relevance <= 1.0:
            raise QAError(f"QA_MIN_RELEVANCE must be a probability between 0 and 1 (got {self.min_relevance})")
        if self.sentence_vectors not in ("late", "alone"):
            raise QAError(f"QA_SENTENCE_VECTORS must be late or alone (got {self.sentence_vectors!r})")
        if self.reader not in READER_CHOICES:
            raise QAError(f"QA_READER must be on or off (got {self.reader!r})")
        if self.spelling not in ("on", "off"):
            raise QAError(f"QA_SPELLING must be on or off (got {self.spelling!r})")
        if self.feedback not in ("on", "off"):
            raise QAError(f"QA_FEEDBACK must be on or off (got {self.feedback!r})")
        if self.max_pages < 1:
            raise QAError(f"QA_MAX_PAGES must be a positive integer (got {self.max_pages})")
        if not 128 <= self.parse_memory_mb <= 65536:
            raise QAError(f"QA_PARSE_MEMORY_MB must be between 128 and 65536 (got {self.parse_memory_mb})")
        if self.ocr not in ("on", "off"):
            raise QAError(f"QA_OCR must be on or off (got {self.ocr!r})")
        if not 512 <= self.ocr_memory_mb <= 65536:
            raise QAError(f"QA_OCR_MEMORY_MB must be between 512 and 65536 (got {self.ocr_memory_mb})")
        if not 1 <= self.ocr_seconds <= 3600:
            raise QAError(f"QA_OCR_SECONDS must be between 1 and 3600 (got {self.ocr_seconds:g})")
        if self.max_cells < 1:
            raise QAError(f"QA_MAX_CELLS must be a positive integer (got {self.max_cells})")
        if not 1 <= self.max_zip_mb <= 65536:
            raise QAError(f"QA_MAX_ZIP_MB must be between 1 and 65536 (got {self.max_zip_mb:g})")
        if not 1 <= self.parse_seconds <= 3600:
            raise QAError(f"QA_PARSE_SECONDS must be between 1 and 3600 (got {self.parse_seconds:g})")
        if self.rrf_k < 1:
            raise QAError("QA_RRF_K must be a positive integer")
        if self.candidates < 1:
            raise QAError("QA_CANDIDATES must be a positive integer")
        if not 0 <= self.rerank_depth <= 1000:
            raise QAError(f"QA_RERANK_DEPTH must be between 0 (no re-ranking) and 1000 (got {self.rerank_depth})")
        if not 0.0 < self.bm25_k1 <= 10.0:
            raise QAError(f"QA_BM25_K1 must be above 0 and at most 10 (got {self.bm25_k1})")
        if not 0.0 <= self.bm25_b <= 1.0:
            raise QAError(f"QA_BM25_B must be between 0 and 1 (got {self.bm25_b})")
        if not 0.0 <= self.bm25_pairs <= 4.0:
            raise QAError(f"QA_BM25_PAIRS must be between 0 (no pairs) and 4 (got {self.bm25_pairs})")
        if self.store not in ("local", "postgres"):
            raise QAError(f"QA_STORE must be local or postgres (got {self.store!r})")
        if self.store == "postgres" and not self.pg_dsn.strip():
            raise QAError(
                "QA_STORE=postgres needs a database: set QA_PG_DSN (or --dsn) to a libpq connection string, "
                "e.g. 'host=127.0.0.1 port=5432 dbname=qa user=qa'"
            )
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.pg_schema):
            raise QAError(f"QA_PG_SCHEMA must be a plain lower-case name (letters, digits, _; got {self.pg_schema!r})")
        if self.pg_vector not in ("vector", "halfvec"):
            raise QAError(f"QA_PG_VECTOR must be vector or halfvec (got {self.pg_vector!r})")
        if self.pg_lexical not in ("bm25", "ts_rank_cd"):
            raise QAError(f"QA_PG_LEXICAL must be bm25 or ts_rank_cd (got {self.pg_lexical!r})")
        if not 1 <= self.pg_ef_search <= 1000:
            raise QAError(f"QA_PG_EF_SEARCH must be between 1 and 1000 (got {self.pg_ef_search})")


def _convert(name: str, type_name: object, raw: str, var: str) -> object:
    kind = str(type_name)
    try:
        if kind in ("int", "<class 'int'>"):
            return int(raw)
        if kind in ("float", "<class 'float'>", "float | None"):
            return float(raw)
    except ValueError:
        raise QAError(f"{var}={raw!r} is not a valid number for {name}") from None
    return raw


# -- the reader (qa.answering.reader): a cross-encoder over question-sentence pairs -------------
# QA_READER=off answers without it (the shipped model is not opened).
READER_ENV = "QA_READER"
READER_CHOICES = ("on", "off")


def reader_setting(env: dict[str, str] | None = None) -> str:
    """QA_READER: on (the default) or off."""
    value = (os.environ if env is None else env).get(READER_ENV, "on").strip().lower() or "on"
    if value not in READER_CHOICES:
        raise QAError(f"{READER_ENV} must be on or off (got {value!r})")
    return value


# -- the web server (`qa serve`, `python app.py`): defaults and environment variables ----------
# Flags (qa.arguments.add_serve_arguments) override the variables; qa.web.options resolves them.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_CONCURRENCY = 4
HOST_ENV = "GRADIO_SERVER_NAME"
PORT_ENV = "GRADIO_SERVER_PORT"
ADMIN_PASSWORD_ENV = "QA_ADMIN_PASSWORD"
MAX_UPLOAD_ENV = "QA_MAX_UPLOAD_MB"
# Optional: when set, every route that answers or returns a document needs the token
# (`Authorization: Bearer <token>`, or the chat's sign-in cookie); see qa.web.security.
API_TOKEN_ENV = "QA_API_TOKEN"
# Host header values answered besides the loopback names (comma-separated; any when unset on a
# non-loopback address), and the origins allowed to call the server from other sites' pages (none).
ALLOWED_HOSTS_ENV = "QA_ALLOWED_HOSTS"
CORS_ORIGINS_ENV = "QA_CORS_ORIGINS"
