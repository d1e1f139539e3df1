"""The reader's part in an answer: it re-reads the sentences the cheap scorer ranks highest.

The fitted sentence model (qa.answering.scorer) scores every candidate sentence from word overlap
and bi-encoder cosines; the cross-encoder reader (qa.answering.reader) reads a question and a
sentence together, which is slower and better. So only the `depth` best distinct sentences are
read, and each one's logit gains `weight` times the reader's relevance logit. A sentence not read
gains what the worst sentence read gained: it stays below those the reader vouched for unless the
cheap scorer put it far ahead. The reader also marks the answer phrase of the sentences it read.

`depth` and `weight` come from the reader's reader.json ("combination"), chosen on held-out
articles (`qa fit reader --combine`); QA_READER=off skips all of this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qa.answering.features import SentenceTable
from qa.answering.reader import Context, Phrase, Reader
from qa.retrieval.search import Candidate

DEFAULT_DEPTH = 6
DEFAULT_WEIGHT = 0.0


@dataclass(frozen=True)
class Combination:
    """How the reader's logits join the sentence model's."""

    depth: int = DEFAULT_DEPTH
    weight: float = DEFAULT_WEIGHT
    # Whether the passages are ranked again from the sentence scores with the reader's say added.
    passages: bool = False

    @classmethod
    def of(cls, reader: Reader) -> Combination:
        combined = reader.settings.get("combination") or {}
        return cls(
            int(combined.get("depth", DEFAULT_DEPTH)),
            float(combined.get("weight", DEFAULT_WEIGHT)),
            bool(combined.get("passages", False)),
        )

    @property
    def active(self) -> bool:
        """Whether anything is read (with weight 0 the reader only marks answer phrases)."""
        return self.depth > 0


@dataclass(frozen=True)
class Read:
    """What the reader said of the sentences it read: table rows to relevance logits and phrases."""

    relevance: dict[int, float] = field(default_factory=dict)
    phrases: dict[int, Phrase] = field(default_factory=dict)


def distinct_best(table: SentenceTable, logits: np.ndarray, depth: int) -> list[list[int]]:
    """The `depth` best sentences by `logits`, each as all the table rows holding that same sentence
    (overlapping chunks repeat sentences), best first."""
    groups: dict[tuple[int, int], list[int]] = {}
    for row in np.argsort(-logits, kind="stable"):
        key = (int(table.spans[row][0]), int(table.spans[row][1]))
        if key in groups:
            groups[key].append(int(row))
        elif len(groups) < depth:
            groups[key] = [int(row)]
    return list(groups.values())


def context_of(table: SentenceTable, candidates: list[Candidate], row: int) -> Context:
    """The sentence of a row with its neighbours in the same chunk and its document's title."""
    owner = int(table.candidate[row])
    before = table.texts[row - 1] if row > 0 and int(table.candidate[row - 1]) == owner else ""
    after = table.texts[row + 1] if row + 1 < len(table.texts) and int(table.candidate[row + 1]) == owner else ""
    return Context(table.texts[row], before, after, candidates[owner].title)


def read_best(
    reader: Reader,
    question: str,
    candidates: list[Candidate],
    table: SentenceTable,
    logits: np.ndarray,
    combination: Combination,
) -> tuple[np.ndarray, Read]:
    """The sentence logits with the reader's say added, and what it read."""
    if not len(logits) or combination.depth < 1:
        return logits, Read()
    groups = distinct_best(table, logits, combination.depth)
    reading = reader.score(question, [context_of(table, candidates, rows[0]) for rows in groups])
    relevance = reading.relevance.astype(np.float64)
    adjusted = logits + combination.weight * float(relevance.min())
    read = Read()
    for rows, value, phrase in zip(groups, relevance, reading.phrases, strict=True):
        for row in rows:
            adjusted[row] = logits[row] + combination.weight * float(value)
            read.relevance[row] = float(value)
            if phrase is not None:
                read.phrases[row] = phrase
    return adjusted, read
