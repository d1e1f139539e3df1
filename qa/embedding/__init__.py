"""Text embedders (sentence-transformers, ONNX Runtime, a hashing fake) and the embedding cache."""

from qa.embedding.models import (
    Embedder,
    EmbeddingCache,
    HashEmbedder,
    SentenceTransformerEmbedder,
    embed_with_cache,
    load_embedder,
)

__all__ = [
    "Embedder",
    "EmbeddingCache",
    "HashEmbedder",
    "SentenceTransformerEmbedder",
    "embed_with_cache",
    "load_embedder",
]
