"""Text embedders and the embedding cache keyed by (model, chunk-text hash)."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.config import DEFAULT_MODEL
from qa.embedding.model_files import model_identity, read_json, resolve_model_path
from qa.embedding.pooling import pool_spans
from qa.errors import QAError


class Embedder(Protocol):
    name: str
    cache_key: str  # identifies model and backend: cached vectors are shared only on a match
    max_tokens: int  # the encoder's window, special tokens included

    @property
    def dim(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """encode(texts), and for each text one unit vector per character span (start, end) of it.

        Span vectors are mean-pooled from the text's own token embeddings, in the same forward
        pass ("late chunking"): a sentence's vector sees the sentences around it, at no extra cost.
        """
        ...


def load_embedder(name: str, backend: str = "onnx-int8") -> Embedder:
    """The embedder for a configured model name or path, on a backend (torch, onnx, onnx-int8)."""
    if name == "hash" or name.startswith("hash:"):
        dim = int(name.split(":", 1)[1]) if ":" in name else 1024
        return HashEmbedder(dim)
    if backend == "torch":
        return SentenceTransformerEmbedder(name)
    if backend in ("onnx", "onnx-int8"):
        from qa.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder(name, quantized=backend == "onnx-int8")
    raise QAError(f"unknown embedding backend '{backend}'; choose torch, onnx or onnx-int8 (QA_BACKEND)")


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded lazily (importing torch costs seconds)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = resolve_model_path(name)
        self._model = None
        self._lock = threading.Lock()
        self._tokenizer = None
        config = read_json(self.path / "sentence_bert_config.json") if self.path else {}
        self.max_tokens = int(config.get("max_seq_length") or 0) or self._loaded().max_seq_length
        self.cache_key = f"sentence-transformers:{model_identity(name, self.path)}"
        self._dim: int | None = _pooling_dim(self.path) if self.path else None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._loaded().get_sentence_embedding_dimension())
        return self._dim

    def count_tokens(self, text: str) -> int:
        tokenizer = self._fast_tokenizer()
        if tokenizer is not None:
            return len(tokenizer.encode(text).ids)
        return len(self._loaded().tokenizer(text, truncation=False)["input_ids"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._loaded().encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        vectors = self.encode(texts)
        model = self._loaded()
        import torch

        pooled: list[np.ndarray] = []
        for start in range(0, len(texts), 32):
            batch = list(texts[start : start + 32])
            features = model.tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            offsets = features.pop("offset_mapping").numpy()
            with torch.no_grad():
                hidden = model[0]({k: v for k, v in features.items()})["token_embeddings"].numpy()
            mask = features["attention_mask"].numpy()
            for j in range(len(batch)):
                pooled.append(pool_spans(hidden[j], offsets[j], mask[j], spans[start + j]))
        return vectors, pooled

    def _fast_tokenizer(self):
        if self._tokenizer is None and self.path and (self.path / "tokenizer.json").exists():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def _loaded(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import transformers
                    from sentence_transformers import SentenceTransformer

                    transformers.logging.set_verbosity_error()
                    transformers.logging.disable_progress_bar()
                except ImportError as exc:
                    raise QAError(f"sentence-transformers is not installed ({exc}); run `pip install -e .`") from None
                target = str(self.path) if self.path else self.name
                try:
                    self._model = SentenceTransformer(target, device="cpu")
                except Exception as exc:
                    raise QAError(
                        f"cannot load the embedding model '{self.name}': {str(exc).splitlines()[0][:200]}. "
                        f"Models cannot be downloaded here: set QA_MODEL (or --model) to a local model "
                        f"folder, or use the bundled '{DEFAULT_MODEL}'"
                    ) from None
            return self._model


class HashEmbedder:
    """Deterministic bag-of-words hashing vectors: no model, for tests and dry runs."""

    _WORD = re.compile(r"\w+", re.UNICODE)

    def __init__(self, dim: int = 1024) -> None:
        self.name = f"hash:{dim}"
        self._dim = dim
        self.cache_key = f"hash:{dim}:v1"
        self.max_tokens = 512

    @property
    def dim(self) -> int:
        return self._dim

    def count_tokens(self, text: str) -> int:
        return len(self._WORD.findall(text)) + 2

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in self._WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self._dim] += 1.0 if (value >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return out

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        # No token embeddings to pool: each span is hashed on its own.
        pooled = [self.encode([text[s:e] for s, e in text_spans]) for text, text_spans in zip(texts, spans)]
        return self.encode(texts), pooled


class EmbeddingCache:
    """SQLite cache of vectors keyed by (embedder cache key, sha256 of the text).

    The cache is disposable: a corrupt file is set aside and started afresh.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError:
            aside = path.with_suffix(".corrupt")
            os.replace(path, aside)
            print(f"warning: embedding cache {path} was unreadable; moved to {aside}", file=sys.stderr)
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, text_hash TEXT NOT NULL,"
            " dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, text_hash))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sentence_vectors (model TEXT NOT NULL, text_hash TEXT NOT NULL,"
            " spans BLOB NOT NULL, vectors BLOB NOT NULL, PRIMARY KEY (model, text_hash))"
        )
        conn.commit()
        return conn

    def _rows(self, columns: str, table: str, model: str, hashes: Sequence[str]) -> Iterator[tuple]:
        """Rows of `table` for this model and these text hashes, 500 hashes a query."""
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            batch = unique[i : i + 500]
            marks = ",".join("?" * len(batch))
            yield from self._conn.execute(
                f"SELECT {columns} FROM {table} WHERE model = ? AND text_hash IN ({marks})", [model, *batch]
            )

    def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return {
            text_hash: np.frombuffer(blob, dtype=np.float32, count=dim)
            for text_hash, dim, blob in self._rows("text_hash, dim, vector", "embeddings", model, hashes)
        }

    def put_many(self, model: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model, text_hash, dim, vector) VALUES (?, ?, ?, ?)",
                [(model, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
            )

    def get_sentences(self, model: str, hashes: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """text hash -> (spans (n, 2) int32 within the text, vectors (n, dim) float32)."""
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for text_hash, spans, vectors in self._rows("text_hash, spans, vectors", "sentence_vectors", model, hashes):
            span_array = np.frombuffer(spans, dtype=np.int32).reshape(-1, 2)
            found[text_hash] = (span_array, unpack_vectors(vectors, len(span_array)))
        return found

    def put_sentences(self, model: str, items: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO sentence_vectors (model, text_hash, spans, vectors) VALUES (?, ?, ?, ?)",
                [(model, h, np.asarray(sp, np.int32).tobytes(), pack_vectors(v)) for h, sp, v in items],
            )

    def close(self) -> None:
        self._conn.close()


def pack_vectors(vectors: np.ndarray) -> bytes:
    """Unit vectors as float16 bytes: half the space, cosines within ~1e-3."""
    return np.asarray(vectors, dtype=np.float16).tobytes()


def unpack_vectors(blob: bytes, rows: int) -> np.ndarray:
    flat = np.frombuffer(blob, dtype=np.float16)
    return flat.reshape(rows, -1).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def embed_with_cache(
    embedder: Embedder,
    cache: EmbeddingCache | None,
    texts: Sequence[str],
    hashes: Sequence[str],
    progress: bool = False,
    batch: int = 64,
    bar=None,
) -> tuple[np.ndarray, int]:
    """Vectors for texts, embedding only those the cache lacks; returns (vectors, number embedded).

    `bar` (a tqdm bar) is advanced by every text, cached or embedded, instead of a bar of its own.
    """
    key = embedder.cache_key
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    cached = cache.get_many(key, hashes) if cache else {}
    missing: dict[str, str] = {}
    for i, h in enumerate(hashes):
        if h in cached:
            vectors[i] = cached[h]
        else:
            missing.setdefault(h, texts[i])
    if missing:
        # Similar lengths in a batch waste less padding.
        todo = sorted(missing.items(), key=lambda item: len(item[1]))
        fresh: dict[str, np.ndarray] = {}
        own_bar = bar is None
        if own_bar:
            bar = _progress(len(todo), "embedding", progress)
        else:
            bar.update(len(texts) - len(todo))  # the cached ones
        for i in range(0, len(todo), batch):
            part = todo[i : i + batch]
            encoded = embedder.encode([t for _, t in part])
            pairs = [(h, encoded[j]) for j, (h, _) in enumerate(part)]
            if cache:
                cache.put_many(key, pairs)  # a killed run keeps what it embedded
            fresh.update(pairs)
            bar.update(len(part))
        if own_bar:
            bar.close()
        for i, h in enumerate(hashes):
            if h in fresh:
                vectors[i] = fresh[h]
    elif bar is not None:
        bar.update(len(texts))
    return vectors, len(missing)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _pooling_dim(path: Path) -> int | None:
    modules = read_json(path / "modules.json")
    if not isinstance(modules, list):
        return None
    dim = None
    for module in modules:
        kind = str(module.get("type", ""))
        config = read_json(path / str(module.get("path", "")) / "config.json")
        if kind.endswith("Pooling"):
            dim = config.get("word_embedding_dimension", dim)
        elif kind.endswith("Dense"):
            dim = config.get("out_features", dim)
    return int(dim) if dim else None
