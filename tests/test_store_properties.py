"""Property-based tests (hypothesis) of the span invariant on every store: over random Unicode
documents, each stored chunk is exactly `text[start:end]` of its stored document, and the chunks
cover every non-whitespace character of it."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.embedding.models import HashEmbedder
from qa.ingest.indexer import make_chunker
from qa.ingest.readers import content_hash
from qa.storage.base import IndexedChunk
from qa.storage.manifest import base_manifest
from qa.storage.stores import open_store
from qa.types import Document

# Any character a decoded UTF-8 file can hold except NUL (refused by the reader for every store).
CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
WORDS = st.text(CHARACTERS, min_size=1, max_size=12)
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\n\n", "\n \n", ". ", "; ", ", ", "\t", "。", "! ", "\u00a0", ""])


@st.composite
def documents(draw) -> str:
    """Text made of words and separators (so that documents split into many chunks), or anything."""
    if draw(st.booleans()):
        parts = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=400))
        text = "".join(word + sep for word, sep in parts)
    else:
        text = draw(st.text(CHARACTERS, min_size=1, max_size=2000))
    if not text.strip():
        text += "x"
    return text


def _covered(text: str, spans: list[tuple[int, int]]) -> bool:
    covered = bytearray(len(text))
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    return all(covered[i] or ch.isspace() for i, ch in enumerate(text))


def test_spans_slice_the_document_and_cover_it(store_settings):
    embedder = HashEmbedder(64)
    configured = store_settings.with_(model="hash:64")
    store = open_store(configured)
    chunker = make_chunker(configured, embedder)
    counter = itertools.count()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=documents())
    def check(text: str) -> None:
        number = next(counter)
        doc = Document(f"doc-{number}", f"doc-{number}.txt", text, content_hash(text.encode()), title="t")
        chunks = chunker.chunk(doc)
        vectors = embedder.encode([c.text for c in chunks])
        with store.writer(embedder, configured) as writer:
            writer.put_document(doc, [IndexedChunk(c, v) for c, v in zip(chunks, vectors, strict=True)])
            writer.finish(base_manifest(configured, embedder, chunker))
        reader = store.open(embedder.cache_key, configured)
        try:
            stored = reader.document(doc.doc_id)
            assert stored.text == text  # the store keeps the text as it was, character for character
            spans = [(s, e) for _, doc_id, s, e in reader.chunk_spans() if doc_id == doc.doc_id]
            records = reader.chunk_records([i for i, doc_id, _, _ in reader.chunk_spans() if doc_id == doc.doc_id])
            assert len(spans) == len(chunks) == len(records)
            for record in records.values():
                assert stored.text[record.chunk.start : record.chunk.end] == record.chunk.text
            assert _covered(stored.text, spans)
        finally:
            reader.close()

    check()
