"""Word vectors for soft coverage: embedded once at indexing, found in the cache by `ask`."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from qa.answering.answer_types import question_kind
from qa.answering.features import Analyser, QuestionTerms, SentenceFacts, soft_coverage
from qa.embedding.models import HashEmbedder
from qa.embedding.words import WordVectors, embed_words
from qa.engine import open_index
from qa.ingest.indexer import update_index
from qa.storage.stores import open_store
from qa.terms import Analyzer
from qa.vocabulary import words_of


class Counting:
    """An embedder that records every text it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.cache_key = inner.cache_key
        self.dim = inner.dim
        self.seen: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def encode(self, texts):
        self.seen.extend(texts)
        return self.inner.encode(texts)

    def encode_spans(self, texts, spans):
        self.seen.extend(texts)
        return self.inner.encode_spans(texts, spans)


# Word vectors chosen by hand: "border" and "frontier" are near synonyms, the rest orthogonal to them.
CHOSEN = {
    "border": [1.0, 0.0, 0.0, 0.0],
    "frontier": [0.9, float(np.sqrt(1 - 0.81)), 0.0, 0.0],
    "clash": [0.0, 0.0, 1.0, 0.0],
    "guards": [0.0, 0.0, 0.0, 1.0],
}


class Chosen:
    """An embedder of the CHOSEN words (any other word: a vector orthogonal to border and frontier)."""

    cache_key = "chosen:v1"
    dim = 4

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.array([CHOSEN.get(t, [0.0, 0.0, 0.6, 0.8]) for t in texts], dtype=np.float32)


class DictCache:
    def __init__(self, items: dict[str, np.ndarray] | None = None, broken: bool = False) -> None:
        self.items = dict(items or {})
        self.broken = broken

    def get_many(self, model, hashes):
        if self.broken:
            raise OSError("disk gone")
        return {h: self.items[h] for h in hashes if h in self.items}

    def put_many(self, model, items):
        self.items.update(items)

    def close(self) -> None:
        pass


def test_word_vectors_are_unit_vectors_in_the_order_asked_and_kept_in_memory():
    embedder = Chosen()
    words = WordVectors(embedder)
    got = words.vectors(["frontier", "border", "frontier"])
    assert got.shape == (3, 4)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-3)
    assert float(got[0] @ got[1]) == pytest.approx(0.9, abs=1e-2)
    assert np.allclose(got[0], got[2])
    calls = embedder.calls
    words.vectors(["border", "frontier"])
    assert embedder.calls == calls  # from memory
    assert words.vectors([]).shape == (0, 4)


def test_word_vectors_come_from_the_cache_before_the_encoder():
    from qa.types import text_hash

    embedder = Chosen()
    cache = DictCache({text_hash("border"): np.array([0.0, 0.0, 0.0, 2.0], dtype=np.float32)})
    words = WordVectors(embedder, lambda: cache)
    border, clash = words.vectors(["border", "clash"])
    assert np.allclose(border, [0.0, 0.0, 0.0, 1.0], atol=1e-3)  # the cached vector, normalised
    assert np.allclose(clash, [0.0, 0.0, 1.0, 0.0], atol=1e-3)  # the encoder's


def test_word_keys_are_the_caches_text_keys():
    from qa.embedding.words import _hashes
    from qa.types import text_hash

    assert _hashes(["frontier", "naïve"]) == [text_hash("frontier"), text_hash("naïve")]


def test_words_embedded_on_the_spot_are_kept_in_the_cache_for_the_next_process():
    from qa.types import text_hash

    cache = DictCache()
    WordVectors(Chosen(), lambda: cache).vectors(["frontier"])
    embedder = Chosen()
    again = WordVectors(embedder, lambda: cache).vectors(["frontier"])
    assert text_hash("frontier") in cache.items and embedder.calls == 0
    assert float(again[0] @ np.array(CHOSEN["border"])) == pytest.approx(0.9, abs=1e-2)


def test_an_unreadable_cache_means_embedding_not_failing(caplog):
    words = WordVectors(Chosen(), lambda: DictCache(broken=True))
    with caplog.at_level(logging.WARNING):
        got = words.vectors(["border"])
    assert np.allclose(got[0], [1.0, 0.0, 0.0, 0.0], atol=1e-3)
    assert "could not be read" in caplog.text


def test_past_its_limit_the_memory_starts_afresh_and_stays_right():
    words = WordVectors(Chosen(), max_words=2)
    first = words.vectors(["border", "frontier"])
    again = words.vectors(["clash", "border"])  # a third word: memory cleared, both looked up again
    assert np.allclose(again[1], first[0], atol=1e-3)
    assert np.allclose(again[0], [0.0, 0.0, 1.0, 0.0], atol=1e-3)


def _facts(words: list[str], analyser: Analyser) -> SentenceFacts:
    stems = analyser.stems(words)
    return SentenceFacts(
        tuple(stems),
        frozenset(stems),
        frozenset(stems),
        {},
        tuple(stems),
        (),
        (),
        (),
        False,
        False,
        False,
        len(words),
        tuple(w for w in words if len(w) >= 4),
    )


def test_soft_coverage_credits_a_near_synonym_by_how_near_it_is():
    from qa.answering.features import SOFT_FLOOR

    analyzer = Analyzer()
    analyser = Analyser(analyzer, WordVectors(Chosen()))
    stems = analyser.stems(["frontier", "guards"])
    q = QuestionTerms(
        None,
        tuple(stems),
        np.array([0.5, 0.5]),
        0.0,
        frozenset(["frontier", "guards"]),
        frozenset(),
        question_kind("who guards the frontier?"),
    )
    near = _facts(["border", "guards"], analyser)  # "guards" exact, "border" near "frontier"
    far = _facts(["clash", "guards"], analyser)
    soft = soft_coverage(q, [near, far], analyser)
    assert soft[0] == pytest.approx(0.5 + 0.5 * (0.9 - SOFT_FLOOR) / (1 - SOFT_FLOOR), abs=1e-2)
    assert soft[1] == pytest.approx(0.5)  # orthogonal words earn nothing
    without = soft_coverage(q, [near, far], Analyser(analyzer))
    assert list(without) == pytest.approx([0.5, 0.5])  # no word vectors: exact matches only


def test_indexing_embeds_each_new_word_once_and_ask_finds_them_in_the_cache(settings, corpus):
    counting = Counting(HashEmbedder())
    report = update_index(settings, embedder=counting)
    engine = open_index(settings=settings, embedder=counting)
    body = words_of(engine.document(d.doc_id).text for d in engine.documents())
    assert body <= set(counting.seen) and {"deployed", "trawlers"} <= body
    assert report.words_embedded >= len(body)  # and the titles' words
    # A rebuild and an unchanged update embed no word again; a new document only its new words.
    assert update_index(settings, rebuild=True, embedder=counting).words_embedded == 0
    (corpus / "crab.txt").write_text("Crab trawlers protested the quotas in Nemuro harbour.\n", encoding="utf-8")
    assert update_index(settings, embedder=counting).words_embedded == 2  # "nemuro", "harbour"
    # Answering embeds the question, and no word the corpus has.
    engine = open_index(settings=settings, embedder=counting)  # the new document in
    counting.seen.clear()
    engine.ask("Which trawlers protested the quotas?")
    assert counting.seen == ["Which trawlers protested the quotas?"]
    counting.seen.clear()
    engine.ask("Which frigates patrolled?")  # words no document has are embedded on the spot
    assert set(counting.seen) == {"Which frigates patrolled?", "frigates", "patrolled"}


def test_embed_words_keeps_only_vocabulary_words(settings):
    cache = DictCache()
    assert embed_words(HashEmbedder(), cache, ["islands", "war", "s-300", "kuril"]) == 2  # not "war", "s-300"
    assert embed_words(HashEmbedder(), cache, ["islands"]) == 0
    cache_of_store = open_store(settings).embedding_cache()
    try:
        assert embed_words(HashEmbedder(), cache_of_store, ["islands", "waters"]) == 2
        assert embed_words(HashEmbedder(), cache_of_store, ["waters"]) == 0
    finally:
        cache_of_store.close()


def test_the_one_thread_product_is_the_product():
    from qa.answering.features import one_thread_product

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 384)).astype(np.float32), rng.normal(size=(900, 384)).astype(np.float32)
    assert np.allclose(one_thread_product(a, b), a @ b.T, atol=1e-4)
    assert one_thread_product(a, b[:3]).shape == (12, 3)
