"""Sentence evidence: each chunk's sentences with a vector each, computed when the chunk is embedded.

Answering then needs no model call beyond embedding the question. Two ways, chosen by
`Settings.sentence_vectors`:

* "late": mean-pool the chunk's own token embeddings over each sentence's tokens, in the
  forward pass that embeds the chunk (late chunking): free at indexing time, and a sentence's
  vector sees its context.
* "alone": encode each sentence as a text of its own (one more pass over the same tokens).

Vectors are cached with the chunk's embedding, by (model, method, splitter) and the hash of
the text embedded, so an incremental update embeds only new text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qa.config import SENTENCE_VECTORS
from qa.embedding.models import Embedder, EmbeddingCache, _progress, embed_with_cache
from qa.types import text_hash
from qa.versions import SPLITTER_VERSION

METHODS = SENTENCE_VECTORS  # QA_SENTENCE_VECTORS

Spans = list[tuple[int, int]]


def evidence_key(embedder: Embedder, method: str) -> str:
    return f"{embedder.cache_key}|sentences:{method}:v{SPLITTER_VERSION}"


def embed_with_evidence(
    embedder: Embedder,
    cache: EmbeddingCache | None,
    texts: Sequence[str],
    hashes: Sequence[str],
    spans: Sequence[Spans],
    method: str = "late",
    progress: bool = False,
    batch: int = 64,
    bar=None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], int]:
    """Chunk vectors, and per chunk (its sentence spans within its text, their vectors); and how many were embedded.

    `spans` are each text's sentences (character offsets into the text embedded). `bar` (a tqdm
    bar) is advanced by every text, cached or embedded, instead of a bar of its own.
    """
    if method not in METHODS:
        raise ValueError(f"unknown sentence vector method {method!r}")
    if method == "alone":
        return _alone(embedder, cache, texts, hashes, spans, progress, bar)
    key = evidence_key(embedder, method)
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    evidence: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(texts)
    chunk_cached = cache.get_many(embedder.cache_key, hashes) if cache else {}
    sentence_cached = cache.get_sentences(key, hashes) if cache else {}
    missing: dict[str, int] = {}  # text hash -> the first row with that text
    for i, h in enumerate(hashes):
        if h in chunk_cached and h in sentence_cached:
            vectors[i] = chunk_cached[h]
            evidence[i] = sentence_cached[h]
        else:
            missing.setdefault(h, i)
    own_bar = bar is None
    if own_bar:
        bar = _progress(len(missing), "embedding", progress)
    else:
        bar.update(len(texts) - len(missing))  # the cached ones
    if missing:
        todo = sorted(missing.items(), key=lambda item: len(texts[item[1]]))  # less padding per batch
        fresh: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            part_spans = [spans[i] for _, i in part]
            encoded, pooled = embedder.encode_spans([texts[i] for _, i in part], part_spans)
            rows = [
                (h, encoded[j], np.array(part_spans[j], dtype=np.int32).reshape(-1, 2), pooled[j])
                for j, (h, _) in enumerate(part)
            ]
            if cache:  # a killed run keeps what it embedded
                cache.put_many(embedder.cache_key, [(h, v) for h, v, _, _ in rows])
                cache.put_sentences(key, [(h, sp, sv) for h, _, sp, sv in rows])
            fresh.update({h: (v, sp, sv) for h, v, sp, sv in rows})
            bar.update(len(part))
        for i, h in enumerate(hashes):
            if h in fresh:
                vector, spans_array, sentence_vectors = fresh[h]
                vectors[i] = vector
                evidence[i] = (spans_array, sentence_vectors)
    if own_bar:
        bar.close()
    return vectors, [e for e in evidence if e is not None], len(missing)


def _alone(
    embedder: Embedder,
    cache: EmbeddingCache | None,
    texts: Sequence[str],
    hashes: Sequence[str],
    spans: Sequence[Spans],
    progress: bool,
    bar=None,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], int]:
    vectors, embedded = embed_with_cache(embedder, cache, texts, hashes, progress=progress, bar=bar)
    arrays = [np.array(sp, dtype=np.int32).reshape(-1, 2) for sp in spans]
    sentences = [text[s:e] for text, sp in zip(texts, arrays) for s, e in sp]
    flat, more = embed_with_cache(embedder, cache, sentences, [text_hash(t) for t in sentences], progress=progress)
    evidence, row = [], 0
    for sp in arrays:
        evidence.append((sp, flat[row : row + len(sp)]))
        row += len(sp)
    return vectors, evidence, embedded + more
