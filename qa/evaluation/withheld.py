"""Near-subject refusal: questions asked of the corpus without the one document that answers them.

A question whose answer strings stand in one document only becomes, once that document is gone,
an off-topic question as near the corpus's subjects as an off-topic question can be: it is
worded like the questions readers ask of it, about things the other documents may well mention.
`ask` should refuse it. This measures the relevance gate where written off-topic questions
("how do I bake bread?") are too easy, and needs no questions beyond the labelled set.

Each document's index is a copy of the collection's local index brought up to date without it
(qa.ingest.indexer.update_index over the other files), so nothing is embedded again and the
index itself is left as it was. `qa eval --withheld` reports the share refused
(`withheld_refused`); `qa fit answers` fits the gate on such questions too.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from qa.errors import QAError
from qa.evaluation.questions import Question, Targets
from qa.ingest.readers import CorpusScan, doc_id_for, scan_corpus

MIN_DOCUMENTS = 2  # withholding the only document leaves nothing to ask


def sole_documents(questions: Sequence[Question], targets: Mapping[str, Targets]) -> dict[str, list[Question]]:
    """The questions whose answer strings stand in exactly one document, by that document.

    Questions judged by gold spans alone are left out: another document may answer them in other
    words, so withholding the span's document does not make them unanswerable."""
    out: dict[str, list[Question]] = {}
    for question in questions:
        target = targets.get(question.qid)
        if target is None or not question.answers or question.spans:
            continue
        holding = set(target.contained) | set(target.overlapped)
        if len(holding) == 1:
            out.setdefault(next(iter(holding)), []).append(question)
    return out


def indexes_without(settings, embedder, doc_ids: Iterable[str], scan: CorpusScan | None = None) -> Iterator:
    """For each document in turn: (doc_id, an opened index of the corpus without it).

    `settings` point at a local index of the corpus (its index_dir and corpus_dir). Each index is
    made in a temporary folder, and closed and removed when the next one is made and at the end."""
    from qa.engine import open_index
    from qa.ingest.indexer import update_index

    if settings.store != "local":
        raise QAError("withholding documents works on a local index (QA_STORE=local), not on a database")
    index = Path(settings.index_dir)
    if not index.is_dir():
        raise QAError(f"no index in {index}; run `qa index` first")
    scan = scan if scan is not None else scan_corpus(Path(settings.corpus_dir))
    with tempfile.TemporaryDirectory(prefix="qa-withheld-") as tmp:
        for doc_id in doc_ids:
            rest = CorpusScan(tuple(f for f in scan.files if doc_id_for(f.source) != doc_id), scan.skipped)
            if len(rest.files) != len(scan.files) - 1:
                raise QAError(
                    f"{settings.corpus_dir}: no one file holds document {doc_id!r}; "
                    "the index is older than the corpus: run `qa index`"
                )
            copy = Path(tmp) / "index"
            shutil.copytree(index, copy, ignore=shutil.ignore_patterns(".lock"))  # the writer's lock stays
            without = settings.with_(index_dir=copy)
            update_index(without, embedder=embedder, wait=True, scan=rest)
            engine = open_index(settings=without, embedder=embedder, build=False)
            try:
                yield doc_id, engine
            finally:
                engine.snapshot.close()
            shutil.rmtree(copy)


def withheld_questions(
    engine, questions: Sequence[Question], targets: Mapping[str, Targets]
) -> dict[str, list[Question]]:
    """`sole_documents`, or {} when the corpus has fewer than MIN_DOCUMENTS documents."""
    return sole_documents(questions, targets) if len(engine.documents()) >= MIN_DOCUMENTS else {}


def without_their_document(
    engine, by_document: Mapping[str, list[Question]]
) -> Iterator[tuple[list[Question], object]]:
    """For each document of `by_document` in turn: (its questions, an opened index of the corpus without it)."""
    for doc_id, without in indexes_without(engine.settings, engine.embedder, sorted(by_document)):
        yield by_document[doc_id], without


def evaluate_withheld(
    engine,
    questions: Sequence[Question],
    targets: Mapping[str, Targets],
    progress: bool = False,
) -> dict:
    """Ask each question that one document alone answers of the corpus without that document.

    Returns {"documents", "questions", "refused", "per_query": {qid: 1.0 refused / 0.0 answered}},
    or {} when the corpus has fewer than MIN_DOCUMENTS documents or no such question."""
    from tqdm import tqdm

    by_document = withheld_questions(engine, questions, targets)
    if not by_document:
        return {}
    refused: dict[str, float] = {}
    bar = tqdm(
        total=sum(map(len, by_document.values())),
        desc=" withheld",
        unit="question",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:
        for asked, without in without_their_document(engine, by_document):
            for question in asked:
                refused[question.qid] = 0.0 if without.ask(question.text).passages else 1.0
                bar.update()
    return {
        "documents": len(by_document),
        "questions": len(refused),
        "refused": round(float(np.mean(list(refused.values()))), 4),
        "per_query": refused,
    }
