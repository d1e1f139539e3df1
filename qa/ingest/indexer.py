"""`qa index`: bring the index in line with the corpus, embedding only new text."""

from __future__ import annotations

import errno
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embedding.models import Embedder, EmbeddingCache, embed_with_cache, load_embedder
from qa.errors import IndexCorruptError, IndexMismatchError, QAError
from qa.ingest.chunking import Chunker
from qa.ingest.readers import CorpusScan, ReadError, content_hash, doc_id_for, parse_document, read_bytes, scan_corpus
from qa.storage.local.catalog import Catalog
from qa.storage.local.lexical import Bm25Index
from qa.storage.local.snapshot import FORMAT, IndexLayout, Manifest, Snapshot, corpus_fingerprint, now_iso, version_info
from qa.storage.local.vectors import FaissFlatStore, fit_store
from qa.types import Document


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"path", "reason"}
    chunks_embedded: int = 0
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
            "chunks_total": self.chunks_total,
            "documents_total": self.documents_total,
            "seconds": round(self.seconds, 3),
            "snapshot": self.snapshot,
            "rebuilt": self.rebuilt,
            "notes": self.notes,
        }


def make_chunker(settings: Settings, embedder: Embedder) -> Chunker:
    return Chunker(embedder.count_tokens, settings.chunk_size, settings.chunk_overlap, embedder.max_tokens)


def update_index(
    settings: Settings,
    rebuild: bool = False,
    progress: bool = False,
    embedder: Embedder | None = None,
    wait: bool = False,
    scan: CorpusScan | None = None,
) -> IndexReport:
    """Compare corpus and index by content hash and write a new snapshot if anything changed.

    `scan` replaces reading settings.corpus_dir, e.g. with documents held in memory.
    """
    started = time.perf_counter()
    corpus = Path(settings.corpus_dir)
    if scan is None and not corpus.is_dir():
        raise QAError(
            f"corpus folder {corpus} not found; create it and put .md, .txt, .html or .pdf files "
            f"in it, or point QA_CORPUS (--corpus) at your corpus"
        )
    layout = IndexLayout(Path(settings.index_dir))
    embedder = embedder or load_embedder(settings.model, settings.backend)
    with layout.writer_lock(wait=wait):
        layout.clean_temporaries()
        report = IndexReport(rebuilt=rebuild)
        old = None if rebuild else _open_previous(layout, settings, embedder, report)
        if old is None:
            report.rebuilt = True
        try:
            _update(
                settings, layout, embedder, old, report, progress, scan if scan is not None else scan_corpus(corpus)
            )
        finally:
            if old is not None:
                old.close()
    report.seconds = time.perf_counter() - started
    return report


def _open_previous(layout: IndexLayout, settings: Settings, embedder: Embedder, report: IndexReport) -> Snapshot | None:
    try:
        return Snapshot.open_compatible(layout, embedder.cache_key, settings)
    except IndexMismatchError:
        raise
    except IndexCorruptError as exc:
        report.notes.append(f"the previous index could not be read ({exc}); rebuilt from scratch")
        return None
    except QAError:  # no index yet
        return None


def _update(
    settings: Settings,
    layout: IndexLayout,
    embedder: Embedder,
    old: Snapshot | None,
    report: IndexReport,
    progress: bool,
    scan: CorpusScan,
) -> None:
    report.failed.extend({"path": s, "reason": r} for s, r in scan.skipped)
    previous = old.catalog.sources() if old else {}
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
    for file in files:
        try:
            data = read_bytes(file, max_bytes)
        except ReadError as exc:
            _failed(report, file.source, str(exc), previous, keep)
            continue
        digest = content_hash(data)
        if digest in seen_hashes:
            _failed(report, file.source, f"exact duplicate of {seen_hashes[digest]}", previous, keep)
            continue
        seen_hashes[digest] = file.source
        if file.source in previous and previous[file.source][1] == digest:
            report.unchanged.append(file.source)
            keep.add(file.source)
            continue
        doc_id = previous[file.source][0] if file.source in previous else _new_doc_id(file.source, taken_ids)
        try:
            doc = parse_document(file.source, data, doc_id)
        except ReadError as exc:
            _failed(report, file.source, str(exc), previous, keep)
            continue
        except Exception as exc:
            _failed(report, file.source, f"unexpected error reading it ({type(exc).__name__}: {exc})", previous, keep)
            continue
        taken_ids.add(doc_id)
        (report.changed if file.source in previous else report.added).append(file.source)
        fresh.append(doc)

    gone = [s for s in previous if s not in keep and s not in report.changed]
    report.removed.extend(gone)
    replaced = set(gone) | set(report.changed)
    if old is not None and not report.modified:
        report.snapshot = old.name
        report.chunks_total = old.catalog.count_chunks()
        report.documents_total = len(previous)
        return

    chunker = make_chunker(settings, embedder)
    temp = None
    try:
        temp = layout.new_temp()  # inside: a full disk can refuse even the folder
        if old is not None:
            catalog = old.catalog.copy_to(temp)
            # This snapshot is the indexer's own (readers open theirs): update its stores in place.
            vectors, lexical = old.vectors, old.lexical
        else:
            catalog = Catalog.create(temp)
            vectors = FaissFlatStore(embedder.dim)
            lexical = Bm25Index()
        for source in replaced:
            ids = catalog.remove_document(previous[source][0])
            vectors.remove(np.array(ids, dtype=np.int64))
            lexical.remove(ids)

        next_id = catalog.next_chunk_id()
        new_chunks, new_ids = [], []
        for doc in fresh:
            chunks = chunker.chunk(doc)
            ids = list(range(next_id, next_id + len(chunks)))
            next_id += len(chunks)
            catalog.add_document(doc, chunks, ids)
            new_chunks.extend(chunks)
            new_ids.extend(ids)
        cache = EmbeddingCache(layout.cache_path)
        try:
            matrix, embedded = embed_with_cache(
                embedder, cache, [c.text for c in new_chunks], [c.text_hash for c in new_chunks], progress=progress
            )
        finally:
            cache.close()
        ids_array = np.array(new_ids, dtype=np.int64)
        vectors.add(ids_array, matrix)
        lexical.add(new_ids, [c.text for c in new_chunks])
        catalog.commit()

        report.chunks_embedded = embedded
        report.chunks_total = catalog.count_chunks()
        report.documents_total = len(catalog.documents())
        vectors = fit_store(vectors, settings.ann_threshold)
        vectors.save(temp)
        lexical.save(temp)
        manifest = _manifest(settings, embedder, chunker, catalog, vectors, lexical, scan_sources(catalog))
        catalog.close()
        manifest.write(temp)  # last: a snapshot without a manifest is never published
        report.snapshot = layout.publish(temp).name
    except BaseException as exc:
        # Ctrl-C or an error: the previous snapshot stays live; the temporary one goes.
        import shutil

        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        if isinstance(exc, (OSError, sqlite3.OperationalError)) and not isinstance(exc, FileNotFoundError):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "full" in reason.lower():
                reason = "the disk is full"
            raise QAError(
                f"could not write the new index in {layout.root} ({reason}); the previous index is "
                f"untouched and still answers. Fix that, then run `qa index` again"
            ) from None
        raise


def _failed(report: IndexReport, source: str, reason: str, previous: dict, keep: set[str]) -> None:
    if source in previous:
        reason += "; the previously indexed version is kept"
        keep.add(source)
    report.failed.append({"path": source, "reason": reason})


def _new_doc_id(source: str, taken: set[str]) -> str:
    doc_id = doc_id_for(source)
    return doc_id if doc_id not in taken else source


def scan_sources(catalog: Catalog) -> dict[str, str]:
    return {source: digest for source, (_, digest) in sorted(catalog.sources().items())}


def _manifest(
    settings: Settings,
    embedder: Embedder,
    chunker: Chunker,
    catalog: Catalog,
    vectors,
    lexical: Bm25Index,
    hashes: dict[str, str],
) -> Manifest:
    import faiss

    return Manifest(
        {
            "format": FORMAT,
            "created": now_iso(),
            "versions": {
                **version_info(),
                "faiss": faiss.__version__,
                "langchain_text_splitters": _dist_version("langchain-text-splitters"),
            },
            "model": {
                "name": settings.model,
                "cache_key": embedder.cache_key,
                "dim": embedder.dim,
                "max_tokens": embedder.max_tokens,
                "normalized": True,
            },
            "chunker": {
                "unit": "model tokens",
                "chunk_size": chunker.chunk_size,
                "chunk_overlap": chunker.chunk_overlap,
                "splitter": "langchain_text_splitters.RecursiveCharacterTextSplitter",
            },
            "vectors": vectors.params,
            "lexical": lexical.params,
            "corpus": {
                "dir": str(Path(settings.corpus_dir).resolve()),
                "fingerprint": corpus_fingerprint(hashes),
                "documents": len(hashes),
                "chunks": catalog.count_chunks(),
                "files": hashes,
            },
        }
    )


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""
