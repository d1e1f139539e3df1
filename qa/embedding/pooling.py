"""Span vectors from token embeddings: late chunking's pooling (shared by the embedders)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pool_spans(
    hidden: np.ndarray, offsets: np.ndarray, mask: np.ndarray, spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Unit mean of the token embeddings (tokens x dim) whose characters fall in each span.

    `offsets` are each token's (start, end) characters in the text; special and padding tokens
    ((0, 0), or masked) belong to no span. A span without a token (cut off by the window) is zero.
    """
    out = np.zeros((len(spans), hidden.shape[1]), dtype=np.float32)
    if not len(spans):
        return out
    real = (mask > 0) & (offsets[:, 1] > offsets[:, 0])
    for row, (start, end) in enumerate(spans):
        take = real & (offsets[:, 0] < end) & (offsets[:, 1] > start)
        if take.any():
            vector = hidden[take].mean(axis=0)
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                out[row] = vector / norm
    return out
