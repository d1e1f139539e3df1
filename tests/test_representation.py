"""Chunk representations: a context prefix (title, headings above) before the chunk's own text."""

from __future__ import annotations

import pytest

from qa.embedding.models import HashEmbedder
from qa.ingest.chunking import Chunker
from qa.ingest.readers import markdown_headings, parse_document
from qa.ingest.representation import DEFAULT_CONTEXT_TOKENS, Representer, context_parts, context_prefix
from qa.types import Chunk

MARKDOWN = """\
---
title: Les Kouriles — 千島列島
---
# Les Kouriles — 千島列島

Une introduction sur les îles.

## Défense

Russia deployed an S-300V4 system.

### Chars

T72B3 tanks arrived on Iturup.

## Pêche

Crab quotas are agreed every year.
"""


def chunks_of(doc, size=16):
    embedder = HashEmbedder()
    return Chunker(embedder.count_tokens, size, 0, embedder.max_tokens).chunk(doc)


def test_markdown_headings_atx_setext_and_not_in_code():
    text = "# Título ##\n\nintro\n\n```\n# not a heading\n```\n\nSection\n=======\n\n  ### Deep ###\nbody\nPara\n---\n"
    found = [(text[h.start : h.end], h.level) for h in markdown_headings(text)]
    assert found == [("Título", 1), ("Section", 1), ("Deep", 3), ("Para", 2)]


def test_html_headings_are_found_in_the_extracted_text():
    html = (
        "<html><body><article><h1>Main title</h1><p>"
        + "First paragraph about the islands and what happened there, long enough to keep. " * 2
        + "</p><h2>Défense aérienne</h2><p>"
        + "Second paragraph about the S-300V4 system deployed on the islands, long enough. " * 2
        + "</p></article></body></html>"
    )
    doc = parse_document("page.html", html.encode())
    assert [(doc.text[h.start : h.end], h.level) for h in doc.headings] == [
        ("Main title", 1),
        ("Défense aérienne", 2),
    ]


def test_each_chunk_carries_the_title_and_the_headings_above_it():
    doc = parse_document("kurils.md", MARKDOWN.encode())
    chunks = chunks_of(doc)
    embedder = HashEmbedder()
    representer = Representer("title+headings", embedder.count_tokens, embedder.max_tokens)
    by_text = {c.text.split("\n")[-1]: p for c, p in zip(chunks, representer.prefixes(doc, chunks))}
    # The first chunk opens with the title (as its heading): it is not repeated.
    assert chunks[0].text.startswith("# Les Kouriles") and representer.prefixes(doc, chunks)[0] == ""
    # A chunk that opens with a heading is in that section, and has the heading in its text already.
    assert by_text["Russia deployed an S-300V4 system."] == "Les Kouriles — 千島列島\n\n"
    assert by_text["T72B3 tanks arrived on Iturup."] == "Les Kouriles — 千島列島\nDéfense\n\n"
    assert by_text["Crab quotas are agreed every year."] == "Les Kouriles — 千島列島\n\n"
    # A chunk inside a section (here: starting after the heading line) gets the whole path.
    inside = Chunk(doc.doc_id, 9, doc.text.index("T72B3"), len(doc.text), doc.text[doc.text.index("T72B3") :], "h")
    assert context_parts(doc, inside, "title+headings") == ["Les Kouriles — 千島列島", "Défense", "Chars"]
    crab = doc.text.index("Crab")
    assert context_parts(doc, Chunk(doc.doc_id, 9, crab, crab + 4, "Crab", "h"), "title+headings")[1:] == ["Pêche"]
    # The represented text is exactly prefix + the chunk's own text; the chunk itself is untouched.
    for chunk, text, prefix in zip(chunks, representer.texts(doc, chunks), representer.prefixes(doc, chunks)):
        assert text == prefix + chunk.text and text.endswith(chunk.text)
        assert doc.text[chunk.start : chunk.end] == chunk.text


def test_title_only_and_none():
    doc = parse_document("kurils.md", MARKDOWN.encode())
    chunks = chunks_of(doc)
    embedder = HashEmbedder()
    titled = Representer("title", embedder.count_tokens, embedder.max_tokens).prefixes(doc, chunks)
    assert set(titled[1:]) == {"Les Kouriles — 千島列島\n\n"}
    assert Representer("none", embedder.count_tokens, embedder.max_tokens).prefixes(doc, chunks) == [""] * len(chunks)
    with pytest.raises(ValueError, match="unknown chunk context"):
        Representer("everything", embedder.count_tokens, embedder.max_tokens)


def test_the_prefix_fits_the_window_and_its_own_budget():
    embedder = HashEmbedder()
    doc = parse_document("long.txt", ("A title " + "word " * 300).encode() + b"\n\nbody text here")
    doc = type(doc)(**{**doc.__dict__, "title": "title " * 200})
    chunk = Chunk(doc.doc_id, 0, 0, 4, "body", "h")
    prefix = context_prefix(doc, chunk, "title", embedder.count_tokens, embedder.max_tokens)
    assert prefix.endswith("\n\n") and embedder.count_tokens(prefix) - 2 <= DEFAULT_CONTEXT_TOKENS
    # A chunk filling the window leaves no room: no prefix rather than a truncated chunk.
    full = Chunk(doc.doc_id, 0, 0, 10, "x " * (embedder.max_tokens - 2), "h")
    assert context_prefix(doc, full, "title", embedder.count_tokens, embedder.max_tokens) == ""
    tight = Chunk(doc.doc_id, 0, 0, 10, "x " * (embedder.max_tokens - 5), "h")
    kept = context_prefix(doc, tight, "title", embedder.count_tokens, embedder.max_tokens)
    assert kept == "title title title\n\n"
    assert embedder.count_tokens(kept + tight.text) <= embedder.max_tokens


@pytest.mark.parametrize("budget", [0, 1, 3, 7, 16, 40])
@pytest.mark.parametrize("room", [0, 1, 2, 5, 9, 200])
def test_the_prefix_is_the_longest_run_of_words_that_fits(budget, room):
    """Against trying every number of leading words: the longest whose prefix keeps within its own
    budget and leaves the chunk within the window."""
    embedder = HashEmbedder()
    doc = parse_document("t.txt", b"body text here")
    doc = type(doc)(**{**doc.__dict__, "title": " ".join(f"w{i}" for i in range(30))})
    text = "x " * (embedder.max_tokens - 2 - room)
    chunk = Chunk(doc.doc_id, 0, 0, 10, text, "h")
    words = doc.title.split(" ")
    candidates = [" ".join(words[:n]) + "\n\n" if n else "" for n in range(len(words) + 1)]
    fitting = [
        p
        for p in candidates
        if embedder.count_tokens(p) - 2 <= budget and embedder.count_tokens(p + text) <= embedder.max_tokens
    ]
    expected = fitting[-1] if fitting else ""
    got = context_prefix(doc, chunk, "title", embedder.count_tokens, embedder.max_tokens, context_tokens=budget)
    assert got == expected


def test_the_settings_default_is_the_representation_default():
    from qa.config import Settings

    assert Settings().context_tokens == DEFAULT_CONTEXT_TOKENS
