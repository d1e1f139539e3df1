"""`qa index`: bring the index in line with the corpus, embedding only new text."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embedding.evidence import embed_with_evidence
from qa.embedding.models import Embedder, load_embedder
from qa.embedding.words import embed_words
from qa.errors import QAError
from qa.ingest.chunking import Chunker
from qa.ingest.isolation import IsolatedParser
from qa.ingest.readers import (
    CorpusFile,
    CorpusScan,
    ParseLimits,
    ReadError,
    content_hash,
    doc_id_for,
    read_bytes,
    read_sidecar,
    scan_corpus,
    version_hash,
)
from qa.ingest.representation import Representer
from qa.ingest.sentences import split_sentences
from qa.storage.base import ChunkEvidence, IndexedChunk, IndexWriter
from qa.storage.manifest import base_manifest
from qa.storage.stores import open_store
from qa.types import Document, text_hash
from qa.vocabulary import words_of


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"path", "reason"}
    failed_versions: dict[str, str] = field(default_factory=dict)  # path -> version hash, when it was read
    chunks_embedded: int = 0
    words_embedded: int = 0  # single words, for the answer scorer's soft coverage (qa.embedding.words)
    chunks_total: int = 0
    documents_total: int = 0
    seconds: float = 0.0
    snapshot: str = ""
    rebuilt: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def modified(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "chunks_embedded": self.chunks_embedded,
            "words_embedded": self.words_embedded,
            "chunks_total": self.chunks_total,
            "documents_total": self.documents_total,
            "seconds": round(self.seconds, 3),
            "snapshot": self.snapshot,
            "rebuilt": self.rebuilt,
            "notes": self.notes,
        }


def make_chunker(settings: Settings, embedder: Embedder) -> Chunker:
    return Chunker(
        embedder.count_tokens,
        settings.chunk_size,
        settings.chunk_overlap,
        embedder.max_tokens,
        settings.paragraph_size,
    )


def make_representer(settings: Settings, chunker: Chunker, embedder: Embedder) -> Representer:
    """What is embedded and indexed for each chunk (its context prefix, then its text)."""
    return Representer(settings.chunk_context, chunker.count_tokens, embedder.max_tokens, settings.context_tokens)


def update_index(
    settings: Settings,
    rebuild: bool = False,
    progress: bool = False,
    embedder: Embedder | None = None,
    wait: bool = False,
    scan: CorpusScan | None = None,
) -> IndexReport:
    """Compare corpus and index by content hash and store what changed (QA_STORE's store).

    `scan` replaces reading settings.corpus_dir, e.g. with documents held in memory.
    """
    started = time.perf_counter()
    corpus = Path(settings.corpus_dir)
    if scan is None and not corpus.is_dir():
        raise QAError(
            f"corpus folder {corpus} not found; create it and put documents in it (Markdown, text, HTML, PDF, "
            f"Office files, CSV, EPUB), or point QA_CORPUS (--corpus) at your corpus"
        )
    store = open_store(settings)
    embedder = embedder or load_embedder(settings.model, settings.backend)
    with store.writer(embedder, settings, rebuild=rebuild, wait=wait) as writer:
        report = IndexReport(rebuilt=writer.rebuilt, notes=list(writer.notes))
        _update(settings, writer, embedder, report, progress, scan if scan is not None else scan_corpus(corpus))
    report.seconds = time.perf_counter() - started
    return report


def _update(
    settings: Settings,
    writer: IndexWriter,
    embedder: Embedder,
    report: IndexReport,
    progress: bool,
    scan: CorpusScan,
) -> None:
    report.failed.extend({"path": s, "reason": r} for s, r in scan.skipped)
    previous = writer.sources()
    max_bytes = int(settings.max_file_mb * 1_000_000)

    seen_hashes: dict[str, str] = {}
    keep: set[str] = set()  # sources whose indexed version stays
    fresh: list[Document] = []
    taken_ids = {doc_id for doc_id, _ in previous.values()}
    # Indexed files first: when a new file copies an indexed one, the copy is the duplicate.
    files = sorted(scan.files, key=lambda f: f.source not in previous)
    if progress and len(files) > 50:
        from tqdm import tqdm

        files = tqdm(files, desc="reading", unit="file", file=sys.stderr, dynamic_ncols=True)
    with IsolatedParser(ParseLimits.from_settings(settings), _ocr_progress if progress else None) as parser:
        for file in files:
            _read_one(parser, file, max_bytes, previous, report, keep, fresh, seen_hashes, taken_ids)

    gone = [s for s in previous if s not in keep and s not in report.changed]
    report.removed.extend(gone)
    if not writer.rebuilt and not report.modified and not writer.relexed:
        report.snapshot = writer.unchanged(failure_records(report))
        report.chunks_total, report.documents_total = writer.counts()
        return

    for source in gone:
        writer.remove_document(previous[source][0])
    chunker = make_chunker(settings, embedder)
    representer = make_representer(settings, chunker, embedder)
    chunked = [(doc, chunker.chunk(doc)) for doc in fresh]
    bar = _progress_bar(sum(len(chunks) for _, chunks in chunked), progress)
    try:
        for group in _groups(chunked, writer.embed_group or sys.maxsize):
            flat = [c for _, chunks in group for c in chunks]
            # What is embedded and indexed: the chunk's context prefix, then its text. Cached by the
            # hash of that text: a new context re-embeds, an unchanged chunk does not.
            texts = [t for doc, chunks in group for t in representer.texts(doc, chunks)]
            matrix, evidence, embedded = embed_with_evidence(
                embedder,
                writer.cache,
                texts,
                [text_hash(t) for t in texts],
                [_sentence_spans(t, c) for t, c in zip(texts, flat, strict=True)],
                settings.sentence_vectors,
                bar=bar,
            )
            report.chunks_embedded += embedded
            # The new words of these chunks, each embedded alone once (the cache keeps it), so
            # that answering finds their vectors instead of embedding them (qa.embedding.words).
            report.words_embedded += embed_words(embedder, writer.cache, words_of(texts))
            row = 0
            for doc, chunks in group:
                indexed = [
                    IndexedChunk(c, matrix[row + j], texts[row + j], _evidence(c, texts[row + j], *evidence[row + j]))
                    for j, c in enumerate(chunks)
                ]
                if not writer.put_document(doc, indexed):
                    _stored_by_another(report, doc.source)
                row += len(chunks)
    finally:
        bar.close()
    manifest = base_manifest(settings, embedder, chunker)
    manifest["corpus"]["failed"] = failure_records(report)
    report.snapshot = writer.finish(manifest)
    report.chunks_total, report.documents_total = writer.counts()


def _read_one(
    parser: IsolatedParser,
    file: CorpusFile,
    max_bytes: int,
    previous: dict,
    report: IndexReport,
    keep: set[str],
    fresh: list[Document],
    seen_hashes: dict[str, str],
    taken_ids: set[str],
) -> None:
    """Read one corpus file into `fresh`, or record it as unchanged, a duplicate or failed."""
    try:
        data = read_bytes(file, max_bytes)
        sidecar = read_sidecar(file)
    except ReadError as exc:
        _failed(report, file.source, str(exc), previous, keep)
        return
    digest = content_hash(data)
    version = version_hash(digest, sidecar)  # a changed sidecar changes the document
    if digest in seen_hashes:
        _failed(report, file.source, f"exact duplicate of {seen_hashes[digest]}", previous, keep, version)
        return
    seen_hashes[digest] = file.source
    if file.source in previous and previous[file.source][1] == version:
        report.unchanged.append(file.source)
        keep.add(file.source)
        return
    doc_id = previous[file.source][0] if file.source in previous else _new_doc_id(file.source, taken_ids)
    try:
        doc = parser.parse(file.source, data, doc_id, sidecar, file.sidecar.name if file.sidecar else "")
    except ReadError as exc:
        _failed(report, file.source, str(exc), previous, keep, version)
        return
    except Exception as exc:
        reason = f"unexpected error reading it ({type(exc).__name__}: {exc})"
        _failed(report, file.source, reason, previous, keep, version)
        return
    taken_ids.add(doc_id)
    (report.changed if file.source in previous else report.added).append(file.source)
    fresh.append(doc)


def _sentence_spans(text: str, chunk) -> list[tuple[int, int]]:
    """The chunk's sentences as spans of its embedded text (`prefix + chunk.text`)."""
    offset = len(text) - len(chunk.text)
    return [(offset + s, offset + e) for s, e in split_sentences(chunk.text)]


def _evidence(chunk, text: str, spans: np.ndarray, vectors: np.ndarray) -> ChunkEvidence:
    """Sentence spans moved from the embedded text to document offsets, like every span of the index."""
    shift = chunk.start - (len(text) - len(chunk.text))
    return ChunkEvidence(tuple((int(s) + shift, int(e) + shift) for s, e in spans), vectors)


def _stored_by_another(report: IndexReport, source: str) -> None:
    """Another writer stored this very version meanwhile (postgres): it counts as unchanged."""
    for items in (report.added, report.changed):
        if source in items:
            items.remove(source)
    report.unchanged.append(source)
    note = "document(s) stored by another writer meanwhile (counted as unchanged)"
    previous = [n for n in report.notes if n.endswith(note)]
    count = int(previous[0].split()[0]) if previous else 0
    report.notes = [n for n in report.notes if not n.endswith(note)] + [f"{count + 1} {note}"]


def _groups(chunked: list[tuple[Document, list]], size: int) -> Iterator[list[tuple[Document, list]]]:
    group: list[tuple[Document, list]] = []
    count = 0
    for item in chunked:
        group.append(item)
        count += len(item[1])
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _ocr_progress(source: str, done: int, total: int) -> None:
    """A line on stderr as each scanned page of a PDF has been read by OCR."""
    print(f"OCR  {source}: page {done} of {total}", file=sys.stderr, flush=True)


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="embedding", unit="chunk", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _failed(report: IndexReport, source: str, reason: str, previous: dict, keep: set[str], version: str = "") -> None:
    if source in previous:
        reason += "; the previously indexed version is kept"
        keep.add(source)
    report.failed.append({"path": source, "reason": reason})
    if version:
        report.failed_versions[source] = version


def failure_records(report: IndexReport) -> list[dict]:
    """What the manifest keeps of the files that could not be read: path, reason, and the
    version hash that failed ("" when the file could not even be read), so that `qa ask` can
    tell a file that failed and is still the same from one changed since."""
    return [
        {"path": item["path"], "reason": item["reason"], "hash": report.failed_versions.get(item["path"], "")}
        for item in sorted(report.failed, key=lambda item: item["path"])
    ]


def _new_doc_id(source: str, taken: set[str]) -> str:
    doc_id = doc_id_for(source)
    return doc_id if doc_id not in taken else source
