"""`qa feedback export`: readers' feedback as a labelled question set and an unanswerable list.

A question a reader marked as answered by a passage becomes a line of `qa eval`'s question
set format, with that passage's span (document id and offsets) as gold; the passages shown with
an answer the reader thumbed down are kept beside it as `non_answers` (known not to answer it;
`qa eval` ignores the key). A follow-up is exported as the text that was searched for it, since
`qa eval` asks each question on its own. A question that found nothing, and that no reader
rated, goes to the unanswerable list (one a line, for `qa eval --unanswerable`); one rated
thumbs-down after nothing was found is left out of both: the reader expected an answer.

Spans are offsets into a document's text, so they stay valid across rebuilds; a span whose
document is no longer in the index, or is now shorter, is left out and reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError
from qa.evaluation.questions import normalise, parse_questions, question_id
from qa.storage.feedback import FeedbackRecord, ShownPassage


@dataclass(frozen=True)
class Export:
    lines: tuple[dict, ...]  # the question set, one JSON object a line
    unanswerable: tuple[str, ...]
    dropped: tuple[str, ...]  # spans left out, and why

    def jsonl(self) -> str:
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines)

    def text(self) -> str:
        return "".join(q + "\n" for q in self.unanswerable)


def _asked_as(record: FeedbackRecord) -> str:
    """The question as `qa eval` should ask it: a follow-up's searched text carries its context."""
    text = record.searched if record.history and record.searched.strip() else record.question
    return " ".join(text.split())


def export_feedback(
    records: Sequence[FeedbackRecord],
    doc_length: Callable[[str], int | None],
    answers_now: Callable[[FeedbackRecord], bool] | None = None,
) -> Export:
    """The labelled questions and the unanswerable ones; `doc_length` is a document's length now
    (None: gone); `answers_now` re-asks a refused question, which is not unanswerable if it now finds passages."""
    gold: dict[str, dict] = {}
    rated: set[str] = set()
    dropped: list[str] = []

    def span(p: ShownPassage, question: str) -> dict | None:
        length = doc_length(p.doc_id)
        if length is None or p.end > length or p.start >= p.end:
            why = "is no longer in the index" if length is None else f"is now {length} characters long"
            dropped.append(f"{question!r}: {p.doc_id} {p.start}:{p.end} left out (the document {why})")
            return None
        return {"doc_id": p.doc_id, "start": p.start, "end": p.end}

    for r in records:
        if r.kind in ("good", "bad", "answered"):
            rated.add(normalise(r.question))
            rated.add(normalise(_asked_as(r)))
    for r in records:
        text = _asked_as(r)
        if r.kind == "answered":
            passage = next(p for p in r.passages if p.rank == r.rank)
            entry = gold.setdefault(normalise(text), {"question": text, "spans": [], "non_answers": []})
            kept = span(passage, text)
            if kept and kept not in entry["spans"]:
                entry["spans"].append(kept)
    for r in records:
        if r.kind == "bad":
            entry = gold.get(normalise(_asked_as(r)))
            if entry is None:
                continue
            for p in r.passages:
                kept = span(p, entry["question"])
                if kept and kept not in entry["spans"] and kept not in entry["non_answers"]:
                    entry["non_answers"].append(kept)
    lines = []
    for entry in gold.values():
        if not entry["spans"]:
            continue
        line = {"id": question_id(entry["question"]), "question": entry["question"], "spans": entry["spans"]}
        if entry["non_answers"]:
            line["non_answers"] = entry["non_answers"]
        lines.append(line)
    if lines:  # what is written must read back as a question set
        parse_questions([json.dumps(line) for line in lines], "the exported question set")
    unanswerable: dict[str, str] = {}
    for r in records:
        key = normalise(_asked_as(r))
        if r.kind == "asked" and r.refused and normalise(r.question) not in rated and key not in unanswerable:
            if answers_now is not None and answers_now(r):
                dropped.append(
                    f"{_asked_as(r)!r} found nothing then, but the current index answers it: not unanswerable"
                )
                unanswerable[key] = ""
            else:
                unanswerable[key] = _asked_as(r)
    return Export(tuple(lines), tuple(q for q in unanswerable.values() if q), tuple(dropped))


def write_export(export: Export, questions: str | Path | None, unanswerable: str | Path | None) -> list[Path]:
    """Write the files asked for; QAError when one cannot be written."""
    written = []
    for path, text in ((questions, export.jsonl()), (unanswerable, export.text())):
        if path is None:
            continue
        path = Path(path).expanduser()
        if path.is_dir():
            raise QAError(f"{path} is a folder; give a file name")
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise QAError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    return written
