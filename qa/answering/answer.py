"""Turning hits into cited passages: the answering sentence and a short extractive answer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qa.embedding.models import Embedder
from qa.ingest.sentences import split_sentences
from qa.retrieval.search import Hit
from qa.types import Answer, Highlight, Passage

NOTHING_FOUND = (
    "No relevant passage found in the corpus for this question. "
    "Try other words, another retrieval mode, or fewer filters."
)
MAX_ANSWER_SENTENCES = 3
# After the first, a sentence joins the answer only if it scores at least this share of the
# best sentence's score: a weak third sentence dilutes the answer more than it adds.
ANSWER_MIN_SHARE = 0.85
# Weight of the share of question terms a sentence contains, next to its cosine similarity.
TERM_WEIGHT = 0.5


def build_answer(
    question: str,
    hits: list[Hit],
    document_texts: dict[str, str],
    embedder: Embedder,
    query_vector: np.ndarray | None,
    coverage_of: Callable[[str], float],
    mode: str,
    min_similarity: float,
    searched_query: str = "",
    notes: tuple[str, ...] = (),
) -> Answer:
    """Passages with their best sentence highlighted, and an answer made of the best sentences."""
    if not hits:
        return Answer(question, NOTHING_FOUND, (), mode, searched_query, notes)
    # All candidate sentences of all passages, embedded in one batch.
    candidates: list[tuple[int, int, int, str]] = []  # (hit index, start, end, text) in document offsets
    for index, hit in enumerate(hits):
        text = document_texts[hit.record.chunk.doc_id]
        for start, end in split_sentences(text[hit.start : hit.end]):
            candidates.append((index, hit.start + start, hit.start + end, text[hit.start + start : hit.start + end]))
    cosines = np.zeros(len(candidates), dtype=np.float32)
    if query_vector is not None and candidates:
        cosines = embedder.encode([c[3] for c in candidates]) @ query_vector
    best: dict[int, tuple[float, float, int]] = {}  # hit index -> (score, cosine, candidate index)
    for ci, (index, _, _, sentence) in enumerate(candidates):
        coverage = coverage_of(sentence)
        score = float(cosines[ci]) + TERM_WEIGHT * coverage
        if index not in best or score > best[index][0]:
            best[index] = (score, float(cosines[ci]), ci)

    passages = []
    for index, hit in enumerate(hits):
        record = hit.record
        text = document_texts[record.chunk.doc_id]
        if index in best:
            _, _, ci = best[index]
            _, s, e, sentence = candidates[ci]
        else:  # a passage with no sentence boundary at all
            s, e, sentence = hit.start, hit.end, text[hit.start : hit.end]
        passages.append(
            Passage(
                rank=index + 1,
                score=round(float(hit.score), 6),
                text=text[hit.start : hit.end],
                doc_id=record.chunk.doc_id,
                title=record.title,
                author=record.author,
                source=record.source,
                start=hit.start,
                end=hit.end,
                page=record.chunk.page,
                highlight=Highlight(s, e, sentence),
                date=record.date,
                chunk_id=record.id,
                scores=dict(hit.scores),
            )
        )

    # The answer: the best sentences in rank order, each with its passage's marker.
    parts: list[str] = []
    seen: set[str] = set()
    top = max((b[0] for b in best.values()), default=0.0)
    for index, passage in enumerate(passages):
        if len(parts) == MAX_ANSWER_SENTENCES:
            break
        score, cosine, _ = best.get(index, (0.0, 0.0, -1))
        strong = query_vector is None or cosine >= min_similarity or score - cosine >= TERM_WEIGHT * 0.5
        sentence = " ".join(passage.highlight.text.split())
        if parts and score < ANSWER_MIN_SHARE * top:
            continue
        if (strong or not parts) and sentence not in seen:
            seen.add(sentence)
            parts.append(f"{sentence} [{passage.rank}]")
    return Answer(question, " ".join(parts), tuple(passages), mode, searched_query, notes)
