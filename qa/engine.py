"""The Python API: open an index and ask it questions."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from qa.answering.about import (
    AboutQuestion,
    author_sentence,
    date_sentence,
    documents_sentence,
    list_sentence,
    match_title,
    mention,
    parse_about,
)
from qa.answering.features import Analyser
from qa.answering.smalltalk import small_talk
from qa.config import Settings
from qa.embedding.models import Embedder, load_embedder
from qa.embedding.words import WordVectors
from qa.errors import EncoderRevisedError, IndexMissingError, QAError, check_text
from qa.ingest.sentences import split_sentences
from qa.retrieval.rerank import QueryTerms
from qa.retrieval.search import MODES, Searcher
from qa.storage.base import DocumentInfo, IndexReader, Store
from qa.storage.stores import open_store
from qa.types import Answer, Document, Filters, Highlight, Passage

if TYPE_CHECKING:
    from qa.answering.local import LocalFile, LocalModels
    from qa.ingest.indexer import IndexReport
    from qa.ingest.status import CorpusStatus
    from qa.storage.feedback import FeedbackStore

log = logging.getLogger("qa")

MAX_K = 50
# Candidates the answer models re-rank: the fused top 20 hold the answer for 99 % of squad-dev-a's
# questions (the top 5 for 96 %); 30 measured no better after re-ranking, and cost a third more.
POOL = 20
# A question about a document itself cites the document's opening: its first sentences.
OPENING_SENTENCES = 3
OPENING_CHARS = 1200
# Questions longer than this many characters are cut before tokenising, so that a
# pasted 100 KB text cannot make a query slow; the model's window is far shorter anyway.
MAX_QUESTION_CHARS = 2000
# A filter value (an author, a document id) longer than this is refused: none is that long.
MAX_FILTER_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class QA:
    """An opened index (any store). Thread-safe for concurrent `ask`; picks up a newly published index."""

    def __init__(self, settings: Settings, embedder: Embedder, reader: IndexReader, store: Store | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store if store is not None else open_store(settings)
        self._reader = reader
        self._searcher = Searcher(reader, embedder, settings)
        self._swap = threading.Lock()
        self._pinned = threading.local()  # (reader, searcher) of a thread inside consistent()
        self._unusable = ""  # a newer index version that could not be opened; reported once
        self._analysis: tuple[object, Analyser] | None = None
        # (reader, Combination) once looked up; False when the reader is off or has nothing to do.
        self._reading: tuple | bool | None = None
        # The corpus's own answer models (qa.answering.local) when set (False: none); None reads the index's file.
        self._local: LocalModels | bool | None = None
        self._local_file: LocalFile | None = None
        # Word vectors for soft coverage: indexing put the corpus's words in the embedding cache.
        self.word_vectors = WordVectors(embedder, self.store.embedding_cache)

    # -- state ------------------------------------------------------------------------
    @functools.cached_property
    def feedback(self) -> FeedbackStore | None:
        """Where readers' feedback and asked questions are kept (None with QA_FEEDBACK=off)."""
        from qa.storage.feedback import open_feedback

        return open_feedback(self.settings, self.store)

    @property
    def reader(self) -> IndexReader:
        return self._current()[0]

    @property
    def snapshot(self) -> IndexReader:
        """The opened index (its name from when there was only the snapshot store)."""
        return self._current()[0]

    @property
    def searcher(self) -> Searcher:
        """Retrieval over the current snapshot (rankings without the answer models)."""
        return self._current()[1]

    @property
    def manifest(self) -> dict:
        return self.reader.manifest.data

    def _current(self) -> tuple[IndexReader, Searcher]:
        pinned = getattr(self._pinned, "state", None)
        return pinned if pinned is not None else (self._reader, self._searcher)

    @contextlib.contextmanager
    def consistent(self) -> Iterator[None]:
        """Everything this thread reads inside (`ask`, `document`, `documents`) comes from one state
        of the index: its reads share one snapshot, and `ask` does not switch to an index published
        meanwhile (other threads do; this one does after the block)."""
        if getattr(self._pinned, "state", None) is not None:
            yield
            return
        state = (self._reader, self._searcher)
        with state[0].consistent():
            self._pinned.state = state
            try:
                yield
            finally:
                self._pinned.state = None

    def refresh(self) -> bool:
        """Switch to a newer published index if there is one; True if it switched."""
        name = self.store.current_name()
        if not name or name == self._reader.opened_for:
            return False
        with self._swap:
            if name in (self._reader.opened_for, self._unusable):
                return False
            try:
                reader = self.store.open(self.embedder.cache_key, self.settings)
            except QAError:
                self._unusable = name
                raise
            # Readers already holding the old searcher finish with it; new ones get the new one.
            self._reader, self._searcher = reader, Searcher(reader, self.embedder, self.settings)
        return True

    def corpus_status(self) -> CorpusStatus:
        """The corpus folder against this index: files changed since it was built, files that cannot be read."""
        from qa.ingest.status import corpus_status

        max_bytes = int(self.settings.max_file_mb * 1_000_000)
        return corpus_status(Path(self.settings.corpus_dir), self.manifest["corpus"], max_bytes)

    def stale_files(self) -> list[str]:
        """Corpus files added, changed or removed since this index was built (`qa index` takes them in)."""
        return list(self.corpus_status().changed)

    def failed_at_last_update(self) -> list[dict]:
        """{"path", "reason"} of the files the last update could not read (from the manifest, no scan)."""
        return [{"path": f["path"], "reason": f["reason"]} for f in self.manifest["corpus"].get("failed", [])]

    def documents(self) -> list[DocumentInfo]:
        return self.reader.documents()

    def document(self, doc_id: str) -> Document:
        check_text(doc_id, "the document id", MAX_FILTER_CHARS)
        doc = self.reader.document(doc_id)
        if doc is None:
            raise QAError(f"no document '{doc_id}' in the index; `qa docs` lists them")
        return doc

    def stats(self) -> dict:
        corpus = self.manifest["corpus"]
        return {
            "documents": corpus.get("documents", 0),
            "chunks": corpus.get("chunks", 0),
            "updated": self.manifest.get("created", ""),
            "model": self.manifest["model"]["name"],
            "snapshot": self.reader.name,
            "store": self.store.kind,
        }

    # -- actions ----------------------------------------------------------------------
    def update(self, rebuild: bool = False, progress: bool = False) -> IndexReport:
        from qa.ingest.indexer import update_index  # indexing imports the splitter: not needed to answer

        report = update_index(self.settings, rebuild=rebuild, progress=progress, embedder=self.embedder)
        self.refresh()
        return report

    def ask(
        self,
        question: str,
        k: int = 5,
        mode: str = "hybrid",
        *,
        doc: str | list[str] | None = None,
        author: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        searched_query: str | None = None,
        shown_before: Iterable[str] = (),
    ) -> Answer:
        """Ranked passages answering `question`, each with its citation, and a short answer.

        `searched_query` lets a caller search other text than the question shown (a chat
        follow-up carrying over context). `shown_before` are sentences the reader has just been shown
        (the previous answer of a conversation): the short answer leads with its best sentence even
        if it is one of them, but adds none of the others.
        """
        question, notes = self.clean_question(question)
        if mode not in MODES:
            raise QAError(f"unknown retrieval mode '{mode}'; choose one of {', '.join(MODES)}")
        if not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise QAError(f"the number of passages must be between 1 and {MAX_K} (got {k})")
        chat = small_talk(question)  # "thanks!", "are you a robot?": a reply, not a search
        if chat is not None:  # before the carried-over query is read: small talk searches nothing
            return Answer(question, chat.reply, (), mode, "", notes)
        query = question
        if searched_query is not None and searched_query.strip() and searched_query.strip() != question:
            query, more = self.clean_question(searched_query)
            notes = notes + more
        doc_ids = (doc,) if isinstance(doc, str) else tuple(doc or ())
        for i, value in enumerate(doc_ids):
            check_text(value, f"document id {i + 1}", MAX_FILTER_CHARS)
        for value, what in ((author, "the author filter"), (date_from, "date_from"), (date_to, "date_to")):
            check_text(value or "", what, MAX_FILTER_CHARS)
        filters = Filters(
            tuple(d for d in doc_ids if d), (author or "").strip(), (date_from or "").strip(), (date_to or "").strip()
        )
        pinned = getattr(self._pinned, "state", None) is not None  # inside consistent(): no switch
        try:
            if not pinned:
                self.refresh()
        except QAError as exc:  # e.g. rebuilt with another model meanwhile: this index still answers
            log.warning("a newer index cannot be used; answering from %s: %s", self._reader.name, exc)
        searcher = self.searcher
        follow_up = query != question
        spelt = searcher.correct(query)
        notes = notes + ((spelt.note,) if spelt.changes else ())
        return self._answer(searcher, question, spelt.text, k, mode, filters, notes, follow_up, frozenset(shown_before))

    def _answer(
        self,
        searcher: Searcher,
        question: str,
        query: str,
        k: int,
        mode: str,
        filters: Filters,
        notes: tuple[str, ...],
        follow_up: bool = False,
        shown_before: frozenset[str] = frozenset(),
    ) -> Answer:
        from qa.answering.answer import build_answer
        from qa.answering.features import question_terms
        from qa.answering.scorer import load_models, models_file, score

        models = load_models(models_file(self.settings.sentence_vectors))
        reader = searcher.reader
        about = None if follow_up else parse_about(query)  # the question, its spelling corrected
        if about is not None and about.kind != "documents":
            answer = self._about_catalog(searcher, question, about, k, mode, filters, notes)
            if answer is not None:
                return answer
            about = None
        if about is not None and about.subject:
            query = about.subject  # "which documents discuss Y": search for Y
        # The answer models weigh cosines in every mode: the question is embedded even for lexical search.
        vector = searcher.embed_query(query)
        with reader.consistent():  # the candidates and their evidence from one state of the index
            terms = QueryTerms.of(query, reader)  # one lookup of the terms' statistics, for both models
            candidates = searcher.candidates(query, mode, max(POOL, 2 * k), filters, vector, terms)
            q = question_terms(query, vector, reader, terms)
        scored = score(models, query, q, candidates, self._analyser(reader), self.reading(), self.local_models())
        answer = build_answer(
            question,
            scored,
            models,
            k,
            mode,
            threshold=self._gate_threshold(models),
            searched_query=query if query != question else "",
            notes=notes,
            shown_before=shown_before,
        )
        if about is not None and answer.passages:
            first: dict[str, Passage] = {}
            for passage in answer.passages:
                first.setdefault(passage.doc_id, passage)
            text = documents_sentence(about.subject, [(p.title or p.source, p.rank) for p in first.values()])
            answer = replace(answer, answer=text)
        return answer

    def _about_catalog(
        self,
        searcher: Searcher,
        question: str,
        about: AboutQuestion,
        k: int,
        mode: str,
        filters: Filters,
        notes: tuple[str, ...],
    ) -> Answer | None:
        """Who wrote X, when was X published, which documents are there: from the catalog."""
        reader = searcher.reader
        docs = [d for d in reader.documents() if filters.admits(d.doc_id, d.source, d.author, d.date)]
        if about.kind == "list":
            passages = tuple(self._document_passage(reader, d.doc_id, rank) for rank, d in enumerate(docs[:k], 1))
            text = list_sentence(len(docs), [(p.title or p.source, p.rank) for p in passages])
            return Answer(question, text, passages, mode, "", notes)
        doc_id = match_title(
            about.subject, [(d.doc_id, d.title) for d in docs], lambda t: reader.analyzer.terms([t])[0]
        )
        if doc_id is None:
            return None
        info = next(d for d in docs if d.doc_id == doc_id)
        title = info.title or info.source
        if about.kind == "author":
            text = author_sentence(title, info.author, info.publisher)
            named = info.author
        else:
            text = date_sentence(title, info.date)
            named = ""
        return Answer(question, f"{text} [1]", (self._document_passage(reader, doc_id, 1, named),), mode, "", notes)

    @staticmethod
    def _document_passage(reader: IndexReader, doc_id: str, rank: int, named: str = "") -> Passage:
        """A citation of the document itself: its opening (first sentences), or, where its text
        names `named` (the author), the sentence there with one on either side."""
        doc = reader.document(doc_id)
        at = mention(doc.text, named) if named else None
        if at is None:
            spans = split_sentences(doc.text[:OPENING_CHARS])
            end = max((e for _, e in spans[:OPENING_SENTENCES]), default=min(len(doc.text), OPENING_CHARS))
            start = 0
            s, e = spans[0] if spans else (0, end)
        else:
            spans = split_sentences(doc.text) or [(0, len(doc.text))]
            i = next((i for i, (_, e) in enumerate(spans) if at < e), len(spans) - 1)
            start, end = spans[max(0, i - 1)][0], spans[min(len(spans) - 1, i + 1)][1]
            s, e = spans[i]
        return Passage(
            rank=rank,
            score=1.0,
            text=doc.text[start:end],
            doc_id=doc_id,
            title=doc.title,
            author=doc.author,
            source=doc.source,
            start=start,
            end=end,
            page=doc.page_at(start),
            highlight=Highlight(s, e, doc.text[s:e]),
            date=doc.date,
            locator=place.label() if (place := doc.place(start, end)) else "",
            scores={"catalog": 1.0},
        )

    def _gate_threshold(self, models) -> float:
        """The gate's logit threshold: the fitted one, or QA_MIN_RELEVANCE's probability."""
        p = self.settings.min_relevance
        if p is None:
            return models.gate_threshold
        if p <= 0.0:
            return -math.inf
        if p >= 1.0:
            return math.inf
        return math.log(p / (1.0 - p))

    def _analyser(self, reader: IndexReader) -> Analyser:
        """Facts of chunks kept across questions, for the index whose analysis stemmed them."""
        analyzer = reader.analyzer
        if self._analysis is None or self._analysis[0] is not analyzer:
            self._analysis = (analyzer, Analyser(analyzer, self.word_vectors))
        return self._analysis[1]

    def reading(self):
        """(the reader, how its scores join the sentence model's), or None with QA_READER=off.

        Set `_reading` to another pair to answer with another reader or combination (evaluation).
        """
        if self._reading is None:
            if self.settings.reader != "on":
                self._reading = False
            else:
                from qa.answering.reader import shared_reader
                from qa.answering.reading import Combination

                reader = shared_reader()
                combination = Combination.of(reader)
                self._reading = (reader, combination) if combination.active else False
        return self._reading or None

    def local_models(self) -> LocalModels | None:
        """This index's own correction of the answer models (`qa fit feedback`), or None: with
        QA_LOCAL_MODELS=off, a database store, no file, or one that does not fit (warned of once).

        Set `_local` to other LocalModels (or False for none) to answer with them (evaluation).
        """
        if self._local is not None:
            return self._local or None
        if self.settings.local_models != "on" or self.store.kind != "local":
            return None
        if self._local_file is None:
            from qa.answering.local import LocalFile, local_path
            from qa.answering.scorer import models_file

            self._local_file = LocalFile(
                local_path(self.store.location), models_file(self.settings.sentence_vectors), self.embedder.cache_key
            )
        return self._local_file.current()

    def clean_question(self, question: str) -> tuple[str, tuple[str, ...]]:
        """Normalise a question; refuse an empty one; cut a long one to the model's window."""
        if not isinstance(question, str):
            raise QAError("the question must be text")
        check_text(question, "the question")
        notes: list[str] = []
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
            notes.append(f"the question was cut to its first {MAX_QUESTION_CHARS} characters")
        text = unicodedata.normalize("NFC", _CONTROL.sub(" ", question))
        text = " ".join(text.split())
        if not text:
            raise QAError('the question is empty: type a question, e.g. "what did Russia deploy to the Kurils?"')
        limit = self.embedder.max_tokens
        if self.embedder.count_tokens(text) > limit:
            # Keep the longest prefix that fits: the encoder would drop the rest silently.
            words = text.split(" ")
            lo, hi = 1, len(words)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.embedder.count_tokens(" ".join(words[:mid])) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            text = " ".join(words[:lo])
            notes.append(f"the question was cut to the model's window of {limit} tokens")
        return text, tuple(notes)


def open_index(
    index_dir: str | os.PathLike | None = None,
    corpus_dir: str | os.PathLike | None = None,
    *,
    model: str | None = None,
    settings: Settings | None = None,
    build: bool = True,
    progress: bool = False,
    embedder: Embedder | None = None,
) -> QA:
    """Open the index (QA_STORE: the folder QA_INDEX or index/, or a database), building it first if there is none."""
    settings = (settings or Settings.from_env()).with_(
        index_dir=Path(index_dir) if index_dir is not None else None,
        corpus_dir=Path(corpus_dir) if corpus_dir is not None else None,
        model=model,
    )
    store = open_store(settings)
    embedder = embedder or load_embedder(settings.model, settings.backend)
    try:
        reader = store.open(embedder.cache_key, settings)
    except (IndexMissingError, EncoderRevisedError):
        # No index yet, or one whose vectors an earlier qa made: built (again) on first use.
        if not build:
            raise
        from qa.ingest.indexer import update_index

        update_index(settings, progress=progress, embedder=embedder, wait=True)
        reader = store.open(embedder.cache_key, settings)
    return QA(settings, embedder, reader, store)
