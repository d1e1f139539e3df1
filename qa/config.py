"""Settings from one place: defaults, overridden by QA_* environment variables, then by flags.

Each field of Settings is declared with `setting(...)`: its default, the section it belongs to, its
environment variable, its flag if it has one, what it sets, whether the index records it, and the
values it allows. ENV_VARS, INDEX_SETTINGS, the shared flags (qa.arguments), the checks of
Settings.validate and the configuration page (scripts/docs_hooks.py) are all derived from those
declarations, and each list of allowed values below is written once.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import QAError

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# -- the allowed values of each setting that takes a name, and of a question's retrieval mode ---
MODES = ("hybrid", "dense", "lexical")  # retrieval: meaning and words fused, meaning alone, words alone
BACKENDS = ("torch", "onnx", "onnx-int8")
# QA_CHUNK_CONTEXT: nothing, the document's title, or the title and the headings above the chunk
# (qa.ingest.representation makes the prefix).
CONTEXTS = ("none", "title", "title+headings")
FUSIONS = ("convex", "rrf")
SENTENCE_VECTORS = ("late", "alone")
STORES = ("local", "postgres")
PG_VECTORS = ("vector", "halfvec")
PG_LEXICALS = ("bm25", "ts_rank_cd")
ON_OFF = ("on", "off")

# The sections a setting belongs to: what `qa index` reads and builds, what shapes a question's
# search and answer, where the index lives, and the web server's.
SECTIONS = ("index", "search", "store", "serve")


def setting(
    default: Any,
    *,
    section: str,
    env: str,
    help: str,
    flag: str | None = None,
    metavar: str | None = None,
    flag_help: str | None = None,
    shown_default: str | None = None,
    note: str | None = None,
    index: bool = False,
    choices: tuple[str, ...] | None = None,
    bounds: tuple[float | None, float | None] | None = None,
    above: bool = False,
    allowed: str | None = None,
) -> Any:
    """A Settings field with its declaration in the field's metadata.

    section: one of SECTIONS; env: its QA_* variable; help: what it sets (the configuration page);
    flag, metavar and flag_help: the shared command-line flag that overrides it (qa.arguments), if
    any, with the default shown as shown_default where the plain value would not say it (or, in
    its place, note: what the flag's help says after the variable); index:
    whether the index records it, so that an index built with another value is refused or rebuilt;
    choices: the values it allows; bounds: the least and the greatest number it allows (None: no
    limit), the least itself excluded when above; allowed: how a message says the bounds, where
    "between LOW and HIGH" or "at least LOW" would not say enough.
    """
    if section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}")
    metadata = {
        "section": section,
        "env": env,
        "help": " ".join(help.split()),
        "flag": flag,
        "metavar": metavar,
        "flag_help": flag_help,
        "shown_default": shown_default,
        "note": note,
        "index": index,
        "choices": choices,
        "bounds": bounds,
        "above": above,
        "allowed": allowed or (bounds and _bounds_text(*bounds)),
    }
    return field(default=default, metadata=metadata)


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def within(value: float, bounds: tuple[float | None, float | None], above: bool = False) -> bool:
    """Whether `value` lies within a setting's declared bounds."""
    low, high = bounds
    if low is not None and (value <= low if above else value < low):
        return False
    return high is None or value <= high


def choice_list(choices: tuple[str, ...]) -> str:
    """'a, b or c': the allowed values as a message says them."""
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = setting(
        Path("corpus"),
        section="index",
        env="QA_CORPUS",
        help="The corpus folder: the files `qa index` reads, sub-folders included.",
        flag="--corpus",
        metavar="DIR",
        flag_help="corpus folder",
        shown_default="corpus/",
    )
    index_dir: Path = setting(
        Path("index"),
        section="store",
        env="QA_INDEX",
        help="The index folder of the local store: its snapshots, the embedding cache and readers' feedback.",
        flag="--index",
        metavar="DIR",
        flag_help="index folder",
        shown_default="index/",
    )
    model: str = setting(
        DEFAULT_MODEL,
        section="index",
        env="QA_MODEL",
        help='A sentence-transformers model name or path; "all-MiniLM-L6-v2" is the bundled copy. '
        '"hash" selects a deterministic hashing embedder (no model, for tests and dry runs).',
        flag="--model",
        metavar="NAME_OR_PATH",
        flag_help="sentence-transformers model",
        shown_default=f"the bundled {DEFAULT_MODEL}",
        index=True,
    )
    # onnx-int8 is the default: on SciFact its hybrid nDCG@10 is 0.722 against torch's 0.721
    # (dense alone: 0.685 against 0.693), it embeds ~2x faster, and answering needs no torch.
    backend: str = setting(
        "onnx-int8",
        section="index",
        env="QA_BACKEND",
        help='How the model runs: "torch" (sentence-transformers, the reference), "onnx" or "onnx-int8" '
        "(ONNX Runtime; no torch import when answering). Vectors differ slightly between backends, so an "
        "index records which one built it.",
        flag="--backend",
        flag_help="how the model runs",
        index=True,
        choices=BACKENDS,
    )
    chunk_size: int = setting(
        128,
        section="index",
        env="QA_CHUNK_SIZE",
        help="Chunk size in the embedding model's tokens (special tokens included), so no chunk is ever "
        "truncated by the encoder. 128 tokens scored best for dense retrieval on SciFact here "
        "(docs/evaluation.md).",
        index=True,
        bounds=(16, None),
        allowed="at least 16 tokens",
    )
    chunk_overlap: int = setting(
        32,
        section="index",
        env="QA_CHUNK_OVERLAP",
        help="Tokens each chunk shares with the one before it.",
        index=True,
        allowed="0 up to half the chunk size",  # checked in Settings.validate: it depends on chunk_size
    )
    paragraph_size: int = setting(
        224,
        section="index",
        env="QA_PARAGRAPH_SIZE",
        help="A paragraph longer than a chunk but within this many tokens stays one chunk instead of being "
        "cut in two; chunk_size or less (0) turns this off. 224 leaves 32 of the model's 256 for the context "
        "prefix; on squad-dev-a it lifts hybrid Hit@1 from 0.846 to 0.871, SciFact train nDCG@10 moves by "
        "-0.005 (bench/tune.py).",
        index=True,
        bounds=(0, None),
        allowed="0 or more tokens",
    )
    chunk_context: str = setting(
        "title+headings",
        section="index",
        env="QA_CHUNK_CONTEXT",
        help="What a chunk's embedded and BM25-indexed text carries besides its own words, as a prefix: "
        '"none", "title" (the document\'s title) or "title+headings" (and, for Markdown and HTML, the '
        "headings above the chunk). The chunk's text and span stay the document's own.",
        flag="--chunk-context",
        flag_help="what each chunk's embedded and indexed text carries besides its own words",
        index=True,
        choices=CONTEXTS,
    )
    context_tokens: int = setting(
        16,
        section="index",
        env="QA_CONTEXT_TOKENS",
        help="At most this many model tokens of context before a chunk. Each one costs encoder time: on "
        "SciFact (titles of ~22 tokens) 16 keeps indexing at 0.88x the speed without context (64: 0.76x) "
        "for 0.002 less nDCG@10 on train; squad-dev-a's short titles fit either way.",
        index=True,
        bounds=(1, 128),
    )
    max_file_mb: float = setting(
        20.0,
        section="index",
        env="QA_MAX_FILE_MB",
        help="Larger files are skipped with a reason (a 50 MB text would be a million-chunk document).",
    )
    max_pages: int = setting(
        2000,
        section="index",
        env="QA_MAX_PAGES",
        help="Limits on reading one untrusted file (qa.ingest.isolation): PDFs are parsed in a worker process "
        "up to this many pages. A file over a limit is skipped with its reason; the rest of the corpus is "
        "indexed.",
        bounds=(1, None),
        allowed="a positive integer",
    )
    parse_memory_mb: int = setting(
        512,
        section="index",
        env="QA_PARSE_MEMORY_MB",
        help="The memory of the worker process that parses a PDF, in MB.",
        bounds=(128, 65536),
    )
    parse_seconds: float = setting(
        60.0,
        section="index",
        env="QA_PARSE_SECONDS",
        help="The time the worker process may take to parse a PDF, in seconds.",
        bounds=(1, 3600),
    )
    max_cells: int = setting(
        1_000_000,
        section="index",
        env="QA_MAX_CELLS",
        help="Spreadsheets (XLSX, CSV) are read up to this many cells.",
        bounds=(1, None),
        allowed="a positive integer",
    )
    max_zip_mb: float = setting(
        256.0,
        section="index",
        env="QA_MAX_ZIP_MB",
        help="Office files and e-books are zip archives: one that would expand past this many MB is refused "
        "before it is inflated.",
        bounds=(1, 65536),
    )
    ocr: str = setting(
        "on",
        section="index",
        env="QA_OCR",
        help="PDF pages without a text layer are read by OCR (qa.ingest.ocr, when rapidocr-onnxruntime is "
        'installed); "off" skips them.',
        choices=ON_OFF,
    )
    ocr_memory_mb: int = setting(
        2048,
        section="index",
        env="QA_OCR_MEMORY_MB",
        help="The memory of OCR's own worker process, in MB.",
        bounds=(512, 65536),
    )
    ocr_seconds: float = setting(
        120.0,
        section="index",
        env="QA_OCR_SECONDS",
        help="The time OCR may take per page, in seconds.",
        bounds=(1, 3600),
    )
    min_relevance: float | None = setting(
        None,
        section="search",
        env="QA_MIN_RELEVANCE",
        help="The relevance gate answers a question only when its fitted probability that the corpus holds "
        "an answer reaches this; unset uses the threshold fitted with the answer models "
        "(qa/answering/answer_models.json: at most 0.5 % of answerable questions refused). 0 answers every "
        "question with whatever passages come closest.",
        bounds=(0, 1),
        allowed="a probability between 0 and 1",
    )
    fusion: str = setting(
        "convex",
        section="search",
        env="QA_FUSION",
        help='Hybrid fusion of the dense and lexical chunk rankings: "convex" scores a chunk '
        "(1 - w) * minmax(cosine) + w * minmax(BM25) with w = lexical_weight over the top `candidates` chunks "
        'of each retriever; "rrf" is reciprocal rank fusion with rrf_k. Chosen on SciFact train and '
        "squad-dev-a together (bench/tune.py): convex, w = 0.5.",
        choices=FUSIONS,
    )
    lexical_weight: float = setting(
        0.5,
        section="search",
        env="QA_LEXICAL_WEIGHT",
        help="The weight w of the lexical ranking in convex fusion, between 0 and 1.",
        bounds=(0, 1),
    )
    rrf_k: int = setting(
        60,
        section="search",
        env="QA_RRF_K",
        help="The constant k of reciprocal rank fusion.",
        bounds=(1, None),
        allowed="a positive integer",
    )
    candidates: int = setting(
        300,
        section="search",
        env="QA_CANDIDATES",
        help="Chunks per retriever, before fusion. 1000 candidates scored 0.001-0.003 higher than 300 but "
        "cost 5-25 % of a hybrid query's time (docs/evaluation.md).",
        bounds=(1, None),
        allowed="a positive integer",
    )
    rerank_depth: int = setting(
        20,
        section="search",
        env="QA_RERANK_DEPTH",
        help="The fused ranking's top `rerank_depth` chunks are re-ranked by a model fitted on squad-dev-a "
        "(qa.retrieval.rerank: best sentence cosine, term coverage, phrase pairs, "
        "both scores); 0 turns it off. Hybrid mode only: dense and lexical stay the single retrievers. 20 is "
        "the pool `ask` reads anyway, so it fetches nothing more.",
        bounds=(0, 1000),
        allowed="between 0 (no re-ranking) and 1000",
    )
    # Anserini's defaults for BEIR (k1 = 0.9, b = 0.4) beat 1.5 / 0.75 on both SciFact train and
    # squad-dev-a (bench/tune.py).
    bm25_k1: float = setting(
        0.9,
        section="index",
        env="QA_BM25_K1",
        help="BM25's term-frequency saturation. A change takes effect at the next `qa index`, which rebuilds "
        "the lexical index (no re-embedding).",
        index=True,
        bounds=(0, 10),
        above=True,
        allowed="above 0 and at most 10",
    )
    bm25_b: float = setting(
        0.4,
        section="index",
        env="QA_BM25_B",
        help="BM25's length normalisation, between 0 and 1. A change takes effect at the next `qa index`, "
        "which rebuilds the lexical index (no re-embedding).",
        index=True,
        bounds=(0, 1),
    )
    bm25_pairs: float = setting(
        0.25,
        section="index",
        env="QA_BM25_PAIRS",
        help="Adjacent-term pairs in the lexical index, and their weight in a query's BM25 sum beside its "
        "terms' (1 each); 0 indexes none. 0.25 lifted squad-dev-a Hit@1 by about a point and left SciFact "
        "train level (bench/tune.py --part extras). Like k1 and b, a change rebuilds the lexical index at "
        "the next `qa index` (PostgreSQL: `qa index --rebuild`), nothing re-embedded.",
        index=True,
        bounds=(0, 4),
        allowed="between 0 (no pairs) and 4",
    )
    ann_threshold: int = setting(
        50_000,
        section="store",
        env="QA_ANN_THRESHOLD",
        help="From this many chunks on, vectors go in an approximate (IVF) index calibrated to recall@10 >= "
        "0.98 of exact search; below it, exact search is fast enough.",
    )
    store: str = setting(
        "local",
        section="store",
        env="QA_STORE",
        help='Where the index lives: "local" (snapshots in index_dir) or "postgres" (a PostgreSQL database '
        "with pgvector: pg_dsn, a libpq connection string, and a schema in it).",
        flag="--store",
        flag_help="where the index lives: the --index folder, or a PostgreSQL database",
        choices=STORES,
    )
    pg_dsn: str = setting(
        "",
        section="store",
        env="QA_PG_DSN",
        help="The PostgreSQL store's libpq connection string.",
        flag="--dsn",
        metavar="CONNINFO",
        flag_help="PostgreSQL connection string for --store postgres, e.g. 'host=db port=5432 dbname=qa'",
    )
    pg_schema: str = setting(
        "qa", section="store", env="QA_PG_SCHEMA", help="The schema of the PostgreSQL store's tables."
    )
    pg_vector: str = setting(
        "vector",
        section="store",
        env="QA_PG_VECTOR",
        help='Column type of the vectors: "vector" (float32) or "halfvec" (float16: half the memory and disk, '
        "recall@10 within ~0.01 here); fixed when the schema's index is first built.",
        choices=PG_VECTORS,
    )
    pg_lexical: str = setting(
        "bm25",
        section="store",
        env="QA_PG_LEXICAL",
        help='Lexical ranking in postgres: "bm25" (the local store\'s BM25, computed in SQL over the GIN '
        "index's matches) or \"ts_rank_cd\" (PostgreSQL's cover density; see docs/postgresql.md).",
        choices=PG_LEXICALS,
    )
    pg_ef_search: int = setting(
        100,
        section="store",
        env="QA_PG_EF_SEARCH",
        help="HNSW candidate list per query (pgvector's hnsw.ef_search); iterative scans extend it when "
        "filters reject candidates.",
        bounds=(1, 1000),
    )
    sentence_vectors: str = setting(
        "late",
        section="index",
        env="QA_SENTENCE_VECTORS",
        help='How each chunk\'s sentence vectors are made at indexing time (qa.embedding.evidence): "late" '
        "pools the chunk's own token embeddings over each sentence (free, in the chunk's forward pass); "
        '"alone" encodes each sentence by itself.',
        index=True,
        choices=SENTENCE_VECTORS,
    )
    spelling: str = setting(
        "on",
        section="search",
        env="QA_SPELLING",
        help="Spelling fallback (qa.retrieval.spelling): a question's word that no document uses and that is "
        'no English word is searched as the corpus\'s nearest word ("povertly" -> "poverty"), and the answer '
        'says so; "off" searches every word as asked.',
        choices=ON_OFF,
    )
    reader: str = setting(
        "on",
        section="search",
        env="QA_READER",
        help="The reader (qa.answering.reader, a cross-encoder trained here) re-reads the best candidate "
        'sentences and marks the answer phrase; "off" answers with the fitted scorer alone.',
        choices=ON_OFF,
    )
    feedback: str = setting(
        "on",
        section="store",
        env="QA_FEEDBACK",
        help="Readers' feedback and the questions asked (qa.storage.feedback), kept beside the index for "
        '`qa report` and `qa feedback export`; "off" records nothing.',
        choices=ON_OFF,
    )
    local_models: str = setting(
        "on",
        section="search",
        env="QA_LOCAL_MODELS",
        help="The corpus's own correction of the answer models (`qa fit feedback`: local-models.json beside "
        'the index; qa.answering.local), used while it fits the shipped models; "off" answers with those alone.',
        choices=ON_OFF,
    )

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
        for key in (f.name for f in fields(cls) if f.type == "Path"):
            if key in values:
                values[key] = Path(values[key]).expanduser()  # type: ignore[arg-type]
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def with_(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validate(self) -> None:
        for f in fields(self):
            declared, value = f.metadata, getattr(self, f.name)
            if declared["choices"] and value not in declared["choices"]:
                raise QAError(f"{declared['env']} must be {choice_list(declared['choices'])} (got {value!r})")
            if declared["bounds"] and value is not None and not within(value, declared["bounds"], declared["above"]):
                raise QAError(f"{declared['env']} must be {declared['allowed']} (got {value:g})")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2 + 1:
            raise QAError(
                f"chunk overlap must be between 0 and half the chunk size "
                f"(got {self.chunk_overlap} for size {self.chunk_size})"
            )
        if self.store == "postgres" and not self.pg_dsn.strip():
            raise QAError(
                "QA_STORE=postgres needs a database: set QA_PG_DSN (or --dsn) to a libpq connection string, "
                "e.g. 'host=127.0.0.1 port=5432 dbname=qa user=qa'"
            )
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.pg_schema):
            raise QAError(f"QA_PG_SCHEMA must be a plain lower-case name (letters, digits, _; got {self.pg_schema!r})")


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


# -- derived from the declarations ------------------------------------------------------------
# Environment variable of each setting, in the order of the fields.
ENV_VARS = {f.name: f.metadata["env"] for f in fields(Settings)}
# The settings an index records (qa.storage.manifest): an index built with other values is refused,
# or, for BM25's, rebuilt at the next `qa index`.
INDEX_SETTINGS = tuple(f.name for f in fields(Settings) if f.metadata["index"])
# Settings field -> its shared command-line flag (qa.arguments.add_path_arguments).
FLAGS = {f.name: f.metadata["flag"] for f in fields(Settings) if f.metadata["flag"]}


def assignment(name: str, value: object) -> str:
    """How a message tells the user to set a setting: its variable, e.g. QA_CHUNK_SIZE=128."""
    return f"{ENV_VARS[name]}={value}"


# -- the reader (qa.answering.reader): a cross-encoder over question-sentence pairs -------------
# QA_READER=off answers without it (the shipped model is not opened).
READER_ENV = ENV_VARS["reader"]
READER_CHOICES = ON_OFF


def reader_setting(env: dict[str, str] | None = None) -> str:
    """QA_READER: on (the default) or off."""
    value = (os.environ if env is None else env).get(READER_ENV, "on").strip().lower() or "on"
    if value not in READER_CHOICES:
        raise QAError(f"{READER_ENV} must be on or off (got {value!r})")
    return value


# -- the web server (`qa serve`, `python app.py`): its settings and their variables -----------
# Flags (qa.arguments.add_serve_arguments) override the variables; qa.web.options resolves them.
PREFER_THE_VARIABLE = "prefer the variable: command lines are visible to other users"


@dataclass(frozen=True)
class ServeSettings:
    """The declarations of the web server's settings (section "serve"); qa.web.options resolves them."""

    host: str = setting(
        "127.0.0.1",
        section="serve",
        env="GRADIO_SERVER_NAME",
        help="The address the web server listens on.",
        flag="--host",
        metavar="ADDRESS",
        flag_help="address to listen on",
    )
    port: int = setting(
        7860,
        section="serve",
        env="GRADIO_SERVER_PORT",
        help="The web server's port.",
        flag="--port",
        metavar="N",
        flag_help="port",
    )
    admin_password: str = setting(
        "",
        section="serve",
        env="QA_ADMIN_PASSWORD",
        help="Enables the analysts' Index tab behind this password.",
        flag="--admin-password",
        metavar="PASSWORD",
        flag_help="enable the analysts' Index tab behind this password",
        note=PREFER_THE_VARIABLE,
    )
    max_upload_mb: float = setting(
        20.0,
        section="serve",
        env="QA_MAX_UPLOAD_MB",
        help="The largest file analysts may upload, in MB.",
        flag="--max-upload-mb",
        metavar="MB",
        flag_help="largest file analysts may upload",
        shown_default="20",
    )
    # Optional: when set, every route that answers or returns a document needs the token
    # (`Authorization: Bearer <token>`, or the chat's sign-in cookie); see qa.web.security.
    api_token: str = setting(
        "",
        section="serve",
        env="QA_API_TOKEN",
        help="When set, every route that answers or returns a document needs this token.",
        flag="--api-token",
        metavar="TOKEN",
        flag_help="require this token on every route that answers or returns a document: the chat signs in "
        "with it, the APIs send 'Authorization: Bearer TOKEN'",
        note=PREFER_THE_VARIABLE,
    )
    # Host header values answered besides the loopback names (comma-separated; any when unset on a
    # non-loopback address), and the origins allowed to call the server from other sites' pages (none).
    allowed_hosts: str = setting(
        "",
        section="serve",
        env="QA_ALLOWED_HOSTS",
        help="Host header values answered, comma-separated.",
        flag="--allowed-hosts",
        metavar="HOSTS",
        flag_help="Host header values answered, comma-separated",
        note="default: the loopback names on a loopback address, any host elsewhere",
    )
    cors_origins: str = setting(
        "",
        section="serve",
        env="QA_CORS_ORIGINS",
        help="Origins whose pages may call this server, comma-separated.",
        flag="--cors-origins",
        metavar="ORIGINS",
        flag_help="origins whose pages may call this server, comma-separated",
        shown_default="none",
    )


def _declared(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in fields(cls) if f.name == name)


DEFAULT_HOST = _declared(ServeSettings, "host").default
DEFAULT_PORT = _declared(ServeSettings, "port").default
DEFAULT_MAX_UPLOAD_MB = _declared(ServeSettings, "max_upload_mb").default
DEFAULT_CONCURRENCY = 4
HOST_ENV = _declared(ServeSettings, "host").metadata["env"]
PORT_ENV = _declared(ServeSettings, "port").metadata["env"]
ADMIN_PASSWORD_ENV = _declared(ServeSettings, "admin_password").metadata["env"]
MAX_UPLOAD_ENV = _declared(ServeSettings, "max_upload_mb").metadata["env"]
API_TOKEN_ENV = _declared(ServeSettings, "api_token").metadata["env"]
ALLOWED_HOSTS_ENV = _declared(ServeSettings, "allowed_hosts").metadata["env"]
CORS_ORIGINS_ENV = _declared(ServeSettings, "cors_origins").metadata["env"]
