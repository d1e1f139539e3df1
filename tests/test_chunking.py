from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.embedding.models import HashEmbedder
from qa.errors import QAError
from qa.ingest.chunking import Chunker
from qa.ingest.readers import parse_document
from qa.ingest.sentences import split_sentences

EMB = HashEmbedder()


def _doc(text: str, source: str = "d.txt", **kw):
    return parse_document(source, text.encode("utf-8"))


def _paragraphs(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = [
        "Russia",
        "Japan",
        "Kuril",
        "islands",
        "treaty",
        "deployed",
        "missiles",
        "fishing",
        "quota",
        "Tokyo",
        "Moscow",
        "über",
        "naïve",
        "東京",
    ]
    paras = []
    for _ in range(n):
        sentences = [
            " ".join(rng.choice(words) for _ in range(rng.randint(4, 18))).capitalize() + "."
            for _ in range(rng.randint(1, 6))
        ]
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


@pytest.mark.parametrize("seed", range(5))
def test_every_chunk_is_an_exact_span_within_the_limit(seed):
    doc = _doc(_paragraphs(30, seed))
    chunker = Chunker(EMB.count_tokens, 40, 8, EMB.max_tokens)
    chunks = chunker.chunk(doc)
    assert len(chunks) > 5
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert EMB.count_tokens(chunk.text) <= 40
    # Together the chunks cover every word of the document.
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_chunks_prefer_paragraph_boundaries():
    text = "First paragraph about the Kurils.\n\nSecond paragraph about fishing quotas."
    chunks = Chunker(EMB.count_tokens, 10, 0).chunk(_doc(text))
    assert [c.text for c in chunks] == ["First paragraph about the Kurils.", "Second paragraph about fishing quotas."]


def test_long_paragraph_splits_at_sentences_with_overlap():
    sentences = [f"Sentence number {i} talks about islands and treaties." for i in range(12)]
    text = " ".join(sentences)
    chunks = Chunker(EMB.count_tokens, 30, 10).chunk(_doc(text))
    assert len(chunks) > 2
    assert all(c.text.endswith(".") for c in chunks)
    assert any(chunks[i].end > chunks[i + 1].start for i in range(len(chunks) - 1)), "chunks overlap"


def test_a_paragraph_within_the_paragraph_size_stays_whole():
    medium = " ".join(f"Sentence {i} tells of the Kuril islands, Tōkyō and Moscow." for i in range(5))
    short = "A short paragraph about crab quotas."
    long = " ".join(f"Long sentence {i} about the treaty negotiations and the fishing quotas." for i in range(12))
    text = "\n\n".join([short, medium, short.replace("crab", "salmon"), long])
    assert 30 < EMB.count_tokens(medium) <= 60 < EMB.count_tokens(long)
    cut = Chunker(EMB.count_tokens, 30, 8).chunk(_doc(text))
    assert medium not in [c.text for c in cut]  # cut in pieces at sentences, as before
    kept = Chunker(EMB.count_tokens, 30, 8, paragraph_size=60).chunk(_doc(text))
    texts = [c.text for c in kept]
    assert medium in texts  # one chunk, beyond chunk_size but within paragraph_size
    # Everything else is chunked as without the setting: short paragraphs, and the long one in pieces.
    assert texts[0] == short and texts[2] == short.replace("crab", "salmon")
    assert [c.text for c in cut if long[:20] in c.text or c.start > text.index(long)] == texts[3:]
    doc = _doc(text)
    assert all(doc.text[c.start : c.end] == c.text for c in kept)
    assert all(EMB.count_tokens(c.text) <= 60 for c in kept)
    with pytest.raises(QAError, match="QA_PARAGRAPH_SIZE"):
        Chunker(EMB.count_tokens, 128, 32, max_tokens=256, paragraph_size=300)


def test_text_without_separators_is_cut_within_the_limit():
    text = "x" * 3000  # one "word": only the character cut can split it
    counter = lambda s: len(s) // 10 + 2  # noqa: E731 - a tokenizer counting ten characters a token
    chunks = Chunker(counter, 50, 0).chunk(_doc(text))
    assert "".join(c.text for c in chunks) == text
    assert all(counter(c.text) <= 50 for c in chunks)


def test_pdf_pages_are_chunked_separately():
    from tests.pdfgen import make_pdf

    doc = parse_document("p.pdf", make_pdf(["Page one text.", "Page two text."]))
    chunks = Chunker(EMB.count_tokens, 100, 0).chunk(doc)
    assert [c.page for c in chunks] == [1, 2]
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)


def test_chunk_size_beyond_the_model_window_is_refused():
    with pytest.raises(QAError, match="window"):
        Chunker(EMB.count_tokens, 1000, 10, max_tokens=256)


def test_sentence_spans():
    text = "Dr. Smith met Col. Girkin in the U.S. on 8 December. Did W. Baulch agree? Yes!\nNew line here"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Dr. Smith met Col. Girkin in the U.S. on 8 December.",
        "Did W. Baulch agree?",
        "Yes!",
        "New line here",
    ]
    assert split_sentences("   ") == []
    # No break inside a number, nor before a lower-case continuation.
    assert split_sentences("Version 3.5 is out. ok") == [(0, 22)]
    text = "It cost $400 billion. Then it fell."
    assert [text[s:e] for s, e in split_sentences(text)] == ["It cost $400 billion.", "Then it fell."]


def test_a_line_break_inside_a_sentence_does_not_end_it():
    def sentences(text):
        return [text[s:e] for s, e in split_sentences(text)]

    # Hard-wrapped prose, and a subscript on a line of its own, read as Markdown reads them.
    wrapped = (
        "Japan and Russia have always had an uneasy relationship, with the\nRussian Federation holding the islands."
    )
    assert sentences(wrapped) == [wrapped]
    assert sentences("Breathing an O\n2 partial pressure above 60 kPa harms. Then\nit stops.") == [
        "Breathing an O\n2 partial pressure above 60 kPa harms.",
        "Then\nit stops.",
    ]
    assert sentences("Trioxygen (O\n3) is ozone. Rev. Jimmy Creech spoke.") == [
        "Trioxygen (O\n3) is ozone.",
        "Rev. Jimmy Creech spoke.",
    ]
    # Headings, list items, quotes and table rows keep their own lines; so do short lines.
    text = "# Heading\nThe text starts here\n- item one\n- item two\nSteps\n1. Mix\n2. Bake\n> quoted\n| a | b |\nEnd"
    assert sentences(text) == [
        "# Heading", "The text starts here", "- item one", "- item two", "Steps", "1. Mix", "2. Bake",
        "> quoted", "| a | b |", "End",
    ]  # fmt: skip
    assert sentences("A short line\nAnother line") == ["A short line", "Another line"]
    assert sentences("It ended in 1945.\nThen came peace.") == ["It ended in 1945.", "Then came peace."]


def test_repeated_text_gets_the_spans_where_each_chunk_is():
    """Found by the property tests: a chunk repeating words of the one before was placed at their
    earlier copy, inside the previous chunk, leaving the end of the document uncovered."""
    embedder = HashEmbedder(64)
    chunker = Chunker(embedder.count_tokens, 48, 8, embedder.max_tokens)
    text = "00。000。000。"
    spans = chunker.spans(text)
    assert spans == [(0, 10), (8, 11)]
    assert [text[a:b] for a, b in spans] == ["00。000。000", "00。"]
    long = " ".join(["the same words again."] * 60)
    spans = chunker.spans(long)
    assert spans[-1][1] == len(long) and all(b2 > b1 for (_, b1), (_, b2) in itertools.pairwise(spans))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["\n", "\n\n", ". ", "? ", "1. ", "- ", "# ", "| ", "O\n2 ", "Dr. ", " ", "e.g. "]),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
        ),
        max_size=20,
    ).map("".join)
)
def test_sentence_spans_are_ordered_trimmed_and_cover_every_word(text):
    spans = split_sentences(text)
    covered = [False] * len(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        covered[start:end] = [True] * (end - start)
        previous_end = end
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
