"""Labelled question sets: parsing JSONL, answer strings and gold spans, judging chunks relevant."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from qa.errors import QAError
from qa.evaluation.metrics import MAX_REPORTED_ERRORS

T = TypeVar("T")


@dataclass(frozen=True)
class SpanRef:
    """A gold span as written: a document (doc_id or corpus-relative source) and offsets into its text."""

    doc: str
    start: int
    end: int
    text: str = ""  # optional: the expected text, checked against the document


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    answers: tuple[str, ...] = ()
    spans: tuple[SpanRef, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Skipped:
    """A question left out of the scores, and why."""

    qid: str
    line: int
    reason: str

    def to_dict(self) -> dict:
        return {"id": self.qid, "line": self.line, "reason": self.reason}


def question_id(text: str) -> str:
    """A stable id for a question without one: it survives reordering the file."""
    return "q" + hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()[:10]


def parse_questions(lines: Iterable[str], name: str = "questions") -> list[Question]:
    """Questions from JSONL lines; every bad line is reported, with its number, in one QAError."""
    return parse_jsonl(
        lines,
        _parse_line,
        key=lambda question: question.qid,
        name=name,
        shape='{"question": ..., "answers": [...]} and/or "spans": [{"doc_id" or "source", "start", "end"}]',
        duplicate="the same question (or id)",
        nothing="questions",
    )


def parse_jsonl(
    lines: Iterable[str],
    parse: Callable[[str, int], T],
    *,
    key: Callable[[T], str],
    name: str,
    shape: str,
    duplicate: str,
    nothing: str,
) -> list[T]:
    """Items from JSONL lines, each by `parse(line, number)` (ValueError for a bad one); every bad
    line and every repeated `key` is reported, with its number, in one QAError."""
    items: list[T] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = parse(line, number)
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if key(item) in first_line:
            errors.append(f"line {number}: {duplicate} as line {first_line[key(item)]}")
            continue
        first_line[key(item)] = number
        items.append(item)
    if errors:
        shown = "\n  ".join(errors[:MAX_REPORTED_ERRORS])
        more = len(errors) - MAX_REPORTED_ERRORS
        raise QAError(
            f"{name}: {len(errors)} bad line(s); each line must be {shape}\n  "
            + shown
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    if not items:
        raise QAError(f"{name} holds no {nothing}")
    return items


def json_object(line: str) -> dict:
    """A JSONL line's object; ValueError saying what is wrong with it."""
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(item, dict):
        raise ValueError("expected a JSON object")
    return item


def _parse_line(line: str, number: int) -> Question:
    item = json_object(line)
    text, answers, spans = question_parts(item)
    qid = item.get("id")
    if qid is not None and (not isinstance(qid, (str, int)) or not str(qid).strip() or re.search(r"\s", str(qid))):
        raise ValueError('"id" must be a string or number without spaces')
    qid = str(qid) if qid is not None else question_id(text)
    return Question(qid, text, answers, spans, number)


def question_parts(item: dict) -> tuple[str, tuple[str, ...], tuple[SpanRef, ...]]:
    """The question text, answer strings and gold spans of one JSON object; ValueError says what is wrong."""
    text = item.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('"question" must be a non-empty string')
    answers = item.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise ValueError('"answers" must be a list of non-empty strings')
    raw_spans = item.get("spans", [])
    if not isinstance(raw_spans, list):
        raise ValueError('"spans" must be a list of {"doc_id" or "source", "start", "end"}')
    spans = []
    for i, span in enumerate(raw_spans, start=1):
        if not isinstance(span, dict):
            raise ValueError(f"span {i} must be an object")
        doc = span.get("doc_id", span.get("source"))
        start, end = span.get("start"), span.get("end")
        if not isinstance(doc, str) or not doc.strip():
            raise ValueError(f'span {i} needs "doc_id" or "source"')
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)) or not 0 <= start < end:
            raise ValueError(f'span {i} needs integer offsets with 0 <= "start" < "end"')
        expected = span.get("text", "")
        if not isinstance(expected, str):
            raise ValueError(f'span {i}: "text" must be a string')
        spans.append(SpanRef(doc.strip(), start, end, expected))
    if not answers and not spans:
        raise ValueError('give "answers" or "spans" (or both)')
    return " ".join(text.split()), tuple(answers), tuple(spans)


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path).expanduser()
    lines = read_lines(path, "question set", "a .jsonl file (or use --beir for a BEIR folder)")
    return parse_questions(lines, str(path))


def read_lines(path: Path, what: str, expected: str) -> list[str]:
    """The lines of a UTF-8 text file, or one QAError that says what is wrong with it."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise QAError(f"{what} {path} not found") from None
    except UnicodeDecodeError as exc:
        raise QAError(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from None
    except IsADirectoryError:
        raise QAError(f"{path} is a folder; give {expected}") from None


# -- judging ------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive form of a text."""
    return " ".join(text.casefold().split())


def answer_pattern(answer: str) -> re.Pattern:
    """Matches the answer anywhere, ignoring case and treating any whitespace run as one space."""
    return re.compile(r"\s+".join(re.escape(word) for word in answer.split()), re.IGNORECASE)


def answer_spans(text: str, answers: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) of every occurrence of every answer in text (plain substring match)."""
    spans = []
    for answer in answers:
        pattern = answer_pattern(answer)
        position = 0
        while (match := pattern.search(text, position)) is not None:
            spans.append((match.start(), match.end()))
            position = match.start() + 1  # occurrences may overlap
    return sorted(set(spans))


@dataclass(frozen=True)
class ChunkSpan:
    id: int
    doc_id: str
    start: int
    end: int

    @property
    def passage_id(self) -> str:
        """Stable across re-indexing with the same chunker; no whitespace (TREC run files)."""
        return f"{quote(self.doc_id, safe='/-_.~')}:{self.start}-{self.end}"


def relevant_chunks(
    chunks: Sequence[ChunkSpan],
    contained: Mapping[str, Sequence[tuple[int, int]]],
    overlapped: Mapping[str, Sequence[tuple[int, int]]],
) -> list[ChunkSpan]:
    """Chunks that wholly contain one of the `contained` spans or overlap one of the `overlapped` spans.

    Both map doc_id -> [(start, end)] in document offsets: answer-string occurrences must
    lie inside a chunk, gold spans only need to share a character with it.
    """
    out = []
    for chunk in chunks:
        inside = any(chunk.start <= s and e <= chunk.end for s, e in contained.get(chunk.doc_id, ()))
        if inside or any(chunk.start < e and s < chunk.end for s, e in overlapped.get(chunk.doc_id, ())):
            out.append(chunk)
    return out


@dataclass(frozen=True)
class Targets:
    """Where a question's answer stands in the corpus (document offsets), for judging any span."""

    contained: dict[str, list[tuple[int, int]]]  # answer-string occurrences: must lie inside
    overlapped: dict[str, list[tuple[int, int]]]  # gold spans: need only share a character
    span_texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Judgements:
    """Passage-level qrels of a question set over one index."""

    qrels: dict[str, dict[str, int]]
    questions: list[Question]  # the judged ones, in file order
    skipped: list[Skipped]
    targets: dict[str, Targets] = field(default_factory=dict)


def judge_questions(
    questions: Sequence[Question],
    chunks: Sequence[ChunkSpan],
    document: Callable[[str], tuple[str, str] | None],
) -> Judgements:
    """Relevant passages of each question; questions that cannot be judged are skipped with a reason.

    `document(doc_id_or_source)` gives (doc_id, text) or None.
    """
    by_doc: dict[str, list[ChunkSpan]] = {}
    for chunk in chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    texts: dict[str, str] = {}
    folded: dict[str, str] = {}  # normalised texts: a cheap test before the regex finds offsets

    def text_of(doc_id: str) -> str:
        if doc_id not in texts:
            found = document(doc_id)
            texts[doc_id] = found[1] if found else ""
        return texts[doc_id]

    def folded_of(doc_id: str) -> str:
        if doc_id not in folded:
            folded[doc_id] = normalise(text_of(doc_id))
        return folded[doc_id]

    qrels: dict[str, dict[str, int]] = {}
    judged: list[Question] = []
    skipped: list[Skipped] = []
    targets: dict[str, Targets] = {}
    for question in questions:
        overlapped: dict[str, list[tuple[int, int]]] = {}
        span_texts: list[str] = []
        problem = ""
        for i, span in enumerate(question.spans, start=1):
            found = document(span.doc)
            if found is None:
                problem = f"span {i}: no document '{span.doc}' in the index (`qa docs` lists them)"
                break
            doc_id, text = found
            texts[doc_id] = text
            if span.end > len(text):
                problem = f"span {i}: {span.start}:{span.end} is outside '{doc_id}' (0:{len(text)})"
                break
            if span.text and normalise(text[span.start : span.end]) != normalise(span.text):
                problem = f"span {i}: '{doc_id}' no longer has the given text at {span.start}:{span.end}"
                break
            overlapped.setdefault(doc_id, []).append((span.start, span.end))
            span_texts.append(text[span.start : span.end])
        if problem:
            skipped.append(Skipped(question.qid, question.line, problem))
            continue
        contained: dict[str, list[tuple[int, int]]] = {}
        if question.answers:
            wanted = [normalise(a) for a in question.answers]
            for doc_id in by_doc:
                if not any(w in folded_of(doc_id) for w in wanted):
                    continue
                found_spans = answer_spans(text_of(doc_id), question.answers)
                if found_spans:
                    contained[doc_id] = found_spans
        relevant = relevant_chunks(
            [c for d in {*contained, *overlapped} for c in by_doc.get(d, ())], contained, overlapped
        )
        if not relevant:
            reason = (
                "none of the answers occurs within a passage of the indexed corpus"
                if question.answers and not question.spans
                else "no indexed passage contains an answer or overlaps a gold span"
            )
            skipped.append(Skipped(question.qid, question.line, reason))
            continue
        qrels[question.qid] = {c.passage_id: 1 for c in relevant}
        targets[question.qid] = Targets(contained, overlapped, tuple(span_texts))
        judged.append(question)
    return Judgements(qrels, judged, skipped, targets)
