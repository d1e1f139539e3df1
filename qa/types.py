"""Typed data passed between every layer: documents, chunks, passages, answers."""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Heading:
    """A section heading of a document: its title is `document.text[start:end]`, without markup."""

    start: int
    end: int
    level: int  # 1 for a top-level heading (Markdown `#`, HTML h1), up to 6


@dataclass(frozen=True)
class Locator:
    """Where a part of a document begins: slide 7, chapter 3, row 12 of sheet Budget.

    Its part runs from `start` to the next locator's start (or the end of the text).
    """

    start: int
    unit: str  # "slide", "chapter", "row" (PDF pages stay in Document.page_starts)
    number: int
    within: str = ""  # the sheet a row belongs to, "" when the file has one table


# Units whose parts a chunk never crosses; rows of one sheet run on into each other.
SECTION_UNITS = ("page", "slide", "chapter")


@dataclass(frozen=True)
class Place:
    """What a span's citation names: "page 4", "slide 7", "sheet Budget, rows 12–18"."""

    unit: str
    first: int
    last: int
    within: str = ""

    def label(self) -> str:
        many = f"{self.unit}s {self.first}\u2013{self.last}"
        where = f"{self.unit} {self.first}" if self.first == self.last else many
        return f"sheet {self.within}, {where}" if self.within else where

    def merged(self, other: Place | None) -> Place:
        """This place widened to cover `other` when both count the same unit of the same sheet."""
        if other is None or (other.unit, other.within) != (self.unit, self.within):
            return self
        return Place(self.unit, min(self.first, other.first), max(self.last, other.last), self.within)

    def to_json(self) -> str:
        return json.dumps([self.unit, self.first, self.last, self.within], ensure_ascii=False)

    @classmethod
    def from_json(cls, value: str | None) -> Place | None:
        if not value:
            return None
        unit, first, last, within = json.loads(value)
        return cls(str(unit), int(first), int(last), str(within))


@dataclass(frozen=True)
class Document:
    """One corpus file as read: its text is what every span indexes."""

    doc_id: str
    source: str  # corpus-relative POSIX path
    text: str
    content_hash: str  # sha256 of the file's bytes
    title: str = ""
    author: str = ""
    publisher: str = ""
    date: str = ""  # ISO 8601 prefix (YYYY, YYYY-MM or YYYY-MM-DD), or "" when unknown
    url: str = ""
    # Character offset where each page starts (PDF only); page n (1-based) is
    # text[page_starts[n-1]:page_starts[n]].
    page_starts: tuple[int, ...] = ()
    # Section headings in text order (Markdown and HTML), as found by the reader; chunk
    # representations carry the headings above a chunk (qa.ingest.representation).
    headings: tuple[Heading, ...] = ()
    # Where each slide, chapter or spreadsheet row begins (PPTX, EPUB, XLSX, CSV), in text order.
    locators: tuple[Locator, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """Id, source and the front matter fields, as `qa show --json` and the API print them."""
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "author": self.author,
            "publisher": self.publisher,
            "date": self.date,
            "url": self.url,
        }

    def page_at(self, offset: int) -> int | None:
        """1-based page holding character `offset`, or None for unpaged documents."""
        if not self.page_starts:
            return None
        page = 0
        for i, start in enumerate(self.page_starts):
            if start <= offset:
                page = i + 1
            else:
                break
        return page or 1

    def place(self, start: int, end: int) -> Place | None:
        """The page, slides, chapter or rows that text[start:end] lies on; None when the file has none."""
        if self.page_starts:
            first = self.page_at(start) or 1
            return Place("page", first, self.page_at(max(start, end - 1)) or first)
        if not self.locators:
            return None
        starts = [loc.start for loc in self.locators]
        lo = max(0, bisect.bisect_right(starts, start) - 1)
        hi = max(lo, bisect.bisect_left(starts, max(start + 1, end)) - 1)
        first = self.locators[lo]
        numbers = [
            loc.number for loc in self.locators[lo : hi + 1] if (loc.unit, loc.within) == (first.unit, first.within)
        ]
        return Place(first.unit, min(numbers), max(numbers), first.within)

    def section_starts(self) -> tuple[int, ...]:
        """Offsets where a page, slide, chapter or sheet begins: chunks never run across one."""
        if self.page_starts:
            return self.page_starts
        starts: list[int] = []
        previous: Locator | None = None
        for loc in self.locators:
            if (
                loc.unit in SECTION_UNITS
                or previous is None
                or (loc.unit, loc.within)
                != (
                    previous.unit,
                    previous.within,
                )
            ):
                starts.append(loc.start)
            previous = loc
        if starts and starts[0] != 0:
            starts.insert(0, 0)
        return tuple(starts)


def text_hash(text: str) -> str:
    """The hash of a text that identifies it: a chunk's `text_hash`, and the key of its cached vectors."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A span of a document: `document.text[start:end] == text`, always."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    text_hash: str
    page: int | None = None
    place: Place | None = None  # the slides, chapter or rows it lies on (page alone for PDFs)


@dataclass(frozen=True)
class Filters:
    """Which documents a search may return: every given condition must hold."""

    doc_ids: tuple[str, ...] = ()  # document ids or corpus-relative paths
    author: str = ""  # contained in the author, ignoring case
    date_from: str = ""  # ISO prefixes; documents without a date are excluded by either
    date_to: str = ""

    @property
    def active(self) -> bool:
        return bool(self.doc_ids or self.author or self.date_from or self.date_to)

    def admits(self, doc_id: str, source: str, author: str, date: str) -> bool:
        """Whether a document with this metadata passes (as the stores' searches apply the filters)."""
        if self.doc_ids and doc_id not in self.doc_ids and source not in self.doc_ids:
            return False
        if self.author and self.author.lower() not in author.lower():
            return False
        if self.date_from and (not date or date < self.date_from):
            return False
        # "2020" as an upper bound includes all of 2020.
        return not (self.date_to and (not date or date > self.date_to + "\uffff"))


@dataclass(frozen=True)
class Highlight:
    """The sentence of a passage that best answers the question (document offsets), and the
    phrase in it that answers, when the reader marked one it is confident of."""

    start: int
    end: int
    text: str
    answer: AnswerPhrase | None = None

    def to_dict(self) -> dict[str, Any]:
        answer = self.answer.to_dict() if self.answer is not None else None
        return {"start": self.start, "end": self.end, "text": self.text, "answer": answer}


@dataclass(frozen=True)
class AnswerPhrase:
    """The words that answer, inside a highlighted sentence (document offsets)."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Passage:
    """A ranked chunk with everything a citation needs."""

    rank: int
    score: float
    text: str
    doc_id: str
    title: str
    author: str
    source: str
    start: int
    end: int
    page: int | None
    highlight: Highlight
    date: str = ""
    chunk_id: int = -1
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever scores
    locator: str = ""  # "slide 7", "sheet Budget, rows 12–18"; "page N" for PDFs

    @property
    def where(self) -> str:
        """What a citation says after the source: its locator, or its page in an older index."""
        return self.locator or (f"page {self.page}" if self.page else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": self.score,
            "text": self.text,
            "doc_id": self.doc_id,
            "title": self.title,
            "author": self.author,
            "date": self.date,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "locator": self.where,
            "highlight": self.highlight.to_dict(),
            "scores": dict(self.scores),
        }


@dataclass(frozen=True)
class Answer:
    """What `ask` returns: a short extractive answer and the passages it cites."""

    question: str
    answer: str
    passages: tuple[Passage, ...]
    mode: str = "hybrid"
    searched_query: str = ""  # the text actually searched, when it differs from question
    notes: tuple[str, ...] = ()  # e.g. "question cut to the model's window"
    # Further sentences that also bear on the question, with their markers: kept out of the short
    # answer, a click (web), `/more` (qa chat) or this field (JSON) away.
    more: str = ""

    @property
    def found(self) -> bool:
        return bool(self.passages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "more": self.more,
            "passages": [p.to_dict() for p in self.passages],
            "mode": self.mode,
            "searched_query": self.searched_query or self.question,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Turn:
    """One question of a conversation: as read, what was searched, and its answer."""

    question: str
    searched: str  # the question itself when it stood on its own
    answer: Answer | None = None  # None for a turn rebuilt from a history of questions
    version: str = ""  # the index version that answered (a snapshot, a database generation)
