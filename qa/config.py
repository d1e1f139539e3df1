"""Settings from one place: defaults, overridden by QA_* environment variables, then by flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from qa.errors import QAError

DEFAULT_MODEL = "all-MiniLM-L6-v2"

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
    "batch_size": "QA_BATCH_SIZE",
    "max_file_mb": "QA_MAX_FILE_MB",
    "min_similarity": "QA_MIN_SIMILARITY",
    "fusion": "QA_FUSION",
    "lexical_weight": "QA_LEXICAL_WEIGHT",
    "rrf_k": "QA_RRF_K",
    "candidates": "QA_CANDIDATES",
    "bm25_k1": "QA_BM25_K1",
    "bm25_b": "QA_BM25_B",
    "ann_threshold": "QA_ANN_THRESHOLD",
}


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("corpus")
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
    # retrieval on SciFact here (see RETRIEVAL-NOTES).
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
    batch_size: int = 32
    # Larger files are skipped with a reason (a 50 MB text would be a million-chunk document).
    max_file_mb: float = 20.0
    # A passage is reported only if its cosine similarity to the question reaches this,
    # or it holds most of the question's terms (see search.Searcher.is_relevant).
    min_similarity: float = 0.45
    # Hybrid fusion of the dense and lexical chunk rankings: "convex" scores a chunk
    # (1 - w) * minmax(cosine) + w * minmax(BM25) with w = lexical_weight over the top
    # `candidates` chunks of each retriever; "rrf" is reciprocal rank fusion with rrf_k. Chosen on
    # SciFact train and squad-dev-a together (bench/tune.py): convex, w = 0.5. 1000 candidates
    # scored 0.001-0.003 higher than 300 but cost 5-25 % of a hybrid query's time (README, Evaluation).
    fusion: str = "convex"
    lexical_weight: float = 0.5
    rrf_k: int = 60
    candidates: int = 300  # per retriever, before fusion
    # BM25's term-frequency saturation and length normalisation. k1 = 0.9, b = 0.4 (Anserini's
    # defaults for BEIR) beat 1.5 / 0.75 on both SciFact train and squad-dev-a (bench/tune.py).
    # A change takes effect at the next `qa index`, which rebuilds the lexical index (no re-embedding).
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    # From this many chunks on, vectors go in an approximate (IVF) index calibrated to
    # recall@10 >= 0.98 of exact search; below it, exact search is fast enough.
    ann_threshold: int = 50_000

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
        from qa.ingest.representation import CONTEXTS

        if self.chunk_context not in CONTEXTS:
            raise QAError(f"QA_CHUNK_CONTEXT must be {', '.join(CONTEXTS)} (got {self.chunk_context!r})")
        if not 1 <= self.context_tokens <= 128:
            raise QAError(f"QA_CONTEXT_TOKENS must be between 1 and 128 (got {self.context_tokens})")
        if self.paragraph_size < 0:
            raise QAError(f"QA_PARAGRAPH_SIZE must be 0 or more tokens (got {self.paragraph_size})")
        if self.batch_size < 1:
            raise QAError("batch size must be at least 1")
        if self.backend not in ("torch", "onnx", "onnx-int8"):
            raise QAError(f"QA_BACKEND must be torch, onnx or onnx-int8 (got {self.backend!r})")
        if self.fusion not in ("convex", "rrf"):
            raise QAError(f"QA_FUSION must be convex or rrf (got {self.fusion!r})")
        if not 0.0 <= self.lexical_weight <= 1.0:
            raise QAError(f"QA_LEXICAL_WEIGHT must be between 0 and 1 (got {self.lexical_weight})")
        if self.rrf_k < 1:
            raise QAError("QA_RRF_K must be a positive integer")
        if self.candidates < 1:
            raise QAError("QA_CANDIDATES must be a positive integer")
        if not 0.0 < self.bm25_k1 <= 10.0:
            raise QAError(f"QA_BM25_K1 must be above 0 and at most 10 (got {self.bm25_k1})")
        if not 0.0 <= self.bm25_b <= 1.0:
            raise QAError(f"QA_BM25_B must be between 0 and 1 (got {self.bm25_b})")


def _convert(name: str, type_name: object, raw: str, var: str) -> object:
    kind = str(type_name)
    try:
        if kind in ("int", "<class 'int'>"):
            return int(raw)
        if kind in ("float", "<class 'float'>"):
            return float(raw)
    except ValueError:
        raise QAError(f"{var}={raw!r} is not a valid number for {name}") from None
    return raw
