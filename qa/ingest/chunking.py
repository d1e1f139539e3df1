"""Token-aware, overlapping chunks with exact character spans (langchain-text-splitters)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa.errors import QAError
from qa.types import Chunk, Document, text_hash

# Coarse to fine: paragraphs, lines, sentences, clauses, words, characters. Separators stay
# attached (keep_separator) so that chunks are contiguous slices of the text.
_SEPARATORS = [
    r"\n\s*\n",
    r"\n",
    r"(?<=[.!?…。！？])\s+",
    r"(?<=[;:])\s+",
    r"(?<=,)\s+",
    r"\s+",
    "",
]


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph (text between blank lines), without surrounding whitespace."""
    spans = []
    start = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        if match:
            start = match.end()
    return spans


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class Chunker:
    """Split documents into chunks of at most `chunk_size` model tokens.

    A paragraph longer than `chunk_size` but within `paragraph_size` tokens stays one chunk
    rather than being cut in two (the default `paragraph_size` = `chunk_size` cuts it).
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        chunk_size: int,
        chunk_overlap: int,
        max_tokens: int | None = None,
        paragraph_size: int | None = None,
    ) -> None:
        paragraph_size = chunk_size if paragraph_size is None else paragraph_size
        if max_tokens is not None and max(chunk_size, paragraph_size) > max_tokens:
            raise QAError(
                f"chunk size {max(chunk_size, paragraph_size)} is longer than the model's window of {max_tokens} "
                f"tokens; set QA_CHUNK_SIZE and QA_PARAGRAPH_SIZE to {max_tokens} or less"
            )
        self.paragraph_size = max(paragraph_size, chunk_size)
        # The splitter measures every piece twice (to split, then to merge): remember counts.
        self.count_tokens = functools.lru_cache(maxsize=16384)(count_tokens)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._splitter = RecursiveCharacterTextSplitter(
            separators=_SEPARATORS,
            is_separator_regex=True,
            keep_separator=True,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=self.count_tokens,
            strip_whitespace=True,
        )

    def chunk(self, document: Document) -> list[Chunk]:
        """Chunks in document order; each PDF page, slide, chapter or sheet is chunked separately,
        so each chunk knows the one place it cites."""
        text = document.text
        sections = document.section_starts()
        if sections:
            bounds = [*sections, len(text)]
            segments = [(bounds[i], bounds[i + 1]) for i in range(len(sections))]
        else:
            segments = [(0, len(text))]
        chunks: list[Chunk] = []
        for page_index, (seg_start, seg_end) in enumerate(segments):
            page = page_index + 1 if document.page_starts else None
            for start, end in self.spans(text[seg_start:seg_end]):
                piece = text[seg_start + start : seg_start + end]
                chunks.append(
                    Chunk(
                        doc_id=document.doc_id,
                        ordinal=len(chunks),
                        start=seg_start + start,
                        end=seg_start + end,
                        text=piece,
                        text_hash=text_hash(piece),
                        page=page,
                        place=None if page else document.place(seg_start + start, seg_start + end),
                    )
                )
        return chunks

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of each chunk of `text`; text[start:end] is the chunk, exactly."""
        if self.paragraph_size <= self.chunk_size:
            return self._split_spans(text)
        # Paragraphs the splitter would cut (as long as a chunk or longer, as it measures) but
        # that fit paragraph_size stay whole; the text between them is split as before.
        spans: list[tuple[int, int]] = []
        run = 0  # start of the text not yet chunked
        for start, end in paragraph_spans(text):
            if self.chunk_size <= self.count_tokens(text[start:end]) <= self.paragraph_size:
                spans += [(run + a, run + b) for a, b in self._split_spans(text[run:start])]
                spans.append((start, end))
                run = end
        spans += [(run + a, run + b) for a, b in self._split_spans(text[run:])]
        return spans

    def _split_spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        cursor = previous_end = 0
        for piece in self._splitter.split_text(text):
            start = self._locate(text, piece, cursor, previous_end)
            if start < 0:  # pragma: no cover - would mean the splitter rewrote text
                raise RuntimeError(f"chunk not found in its text: {piece[:60]!r}")
            for sub_start, sub_end in self._enforce_limit(piece):
                spans.append((start + sub_start, start + sub_end))
            cursor, previous_end = start + 1, max(previous_end, start + len(piece))
        return spans

    def _locate(self, text: str, piece: str, cursor: int, previous_end: int) -> int:
        """Where a chunk starts: after the previous chunk's start, overlapping only its tail.

        Each chunk repeats at most `chunk_overlap` tokens of the one before and ends after it, so
        in repetitive text an earlier copy of the same words is not where this chunk is.
        """
        first = text.find(piece, cursor)
        extending = -1
        at = first
        while 0 <= at <= previous_end:
            if at + len(piece) > previous_end:
                if self.count_tokens(text[at:previous_end]) <= self.chunk_overlap:
                    return at
                extending = at if extending < 0 else extending
            at = text.find(piece, at + 1)
        if extending >= 0:
            return extending
        return at if at >= 0 and first >= 0 and first + len(piece) <= previous_end else first

    def _enforce_limit(self, piece: str) -> list[tuple[int, int]]:
        # The splitter can only exceed the limit on a run without any separator; cut such a
        # run by characters so the encoder never truncates it silently.
        if self.count_tokens(piece) <= self.chunk_size:
            return [(0, len(piece))]
        out: list[tuple[int, int]] = []
        start = 0
        while start < len(piece):
            lo, hi = start + 1, len(piece)
            while lo < hi:  # longest prefix within the limit
                mid = (lo + hi + 1) // 2
                if self.count_tokens(piece[start:mid]) <= self.chunk_size:
                    lo = mid
                else:
                    hi = mid - 1
            out.append((start, lo))
            start = lo
        return out
