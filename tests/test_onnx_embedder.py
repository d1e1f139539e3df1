"""The ONNX encoder gives a text one vector, whatever is embedded beside it."""

from __future__ import annotations

import numpy as np
import pytest

from qa.config import DEFAULT_MODEL

pytestmark = pytest.mark.integration

TEXTS = [
    "Russia deployed the S-300V4 air defence system to the Kuril Islands.",
    "Japan protested through diplomatic channels.",
    "A much longer text about fisheries, " * 20,
    "Tanks.",
]


@pytest.fixture(scope="module")
def embedder():
    from qa.embedding.models import load_embedder

    return load_embedder(DEFAULT_MODEL, "onnx-int8")


def test_a_texts_vector_does_not_depend_on_its_neighbours(embedder):
    together = embedder.encode(TEXTS)
    assert together.shape == (4, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(TEXTS):  # alone, on the question's two-thread session
        assert np.array_equal(embedder.encode([text])[0], together[i])
    shuffled = embedder.encode(TEXTS[::-1] + TEXTS[:1])  # other neighbours, other order
    assert np.array_equal(shuffled[:4][::-1], together) and np.array_equal(shuffled[4], together[0])
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_span_vectors_come_from_the_same_pass_and_match_the_text_vectors(embedder):
    spans = [[(0, 25), (26, len(TEXTS[0]))], [(0, 5)], [], [(0, 6)]]
    vectors, pooled = embedder.encode_spans(TEXTS, spans)
    assert np.array_equal(vectors, embedder.encode(TEXTS))
    assert [p.shape for p in pooled] == [(2, embedder.dim), (1, embedder.dim), (0, embedder.dim), (1, embedder.dim)]
    np.testing.assert_allclose(np.linalg.norm(pooled[0], axis=1), 1.0, atol=1e-5)
    _, alone = embedder.encode_spans(TEXTS[:1], spans[:1])
    assert np.array_equal(alone[0], pooled[0])
    # "Tanks." is its whole text: its span vector is the mean of the same tokens, not the CLS token.
    assert float(pooled[3][0] @ vectors[3]) > 0.9


def test_the_int8_key_says_vectors_are_made_alone(embedder):
    assert embedder.cache_key.startswith("onnx-int8:") and embedder.cache_key.endswith("|alone")
