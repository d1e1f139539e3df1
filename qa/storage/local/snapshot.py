"""The index folder: snapshots, the CURRENT pointer, the manifest, the writer lock.

    index/
      CURRENT                 name of the live snapshot (replaced atomically)
      snapshots/<name>/       manifest.json, catalog.sqlite, vectors.faiss, bm25/
      cache/embeddings.sqlite vectors by (model, text hash), shared by all snapshots
      .lock                   held by the one process that is writing

A writer builds a new snapshot in a temporary folder, then renames it and swaps
CURRENT, so a crash at any moment leaves the previous snapshot whole and readers
never see a half-written one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.errors import IndexCorruptError, IndexLockedError, IndexMissingError, QAError
from qa.storage.base import ChunkEvidence, ChunkRecord, DocumentInfo
from qa.storage.local.catalog import Catalog
from qa.storage.local.lexical import Bm25Index
from qa.storage.local.vectors import load_store

# FORMAT, now_iso, version_info and corpus_fingerprint lived here before the manifest had its own module.
from qa.storage.manifest import FORMAT, MANIFEST, Manifest, corpus_fingerprint, now_iso, version_info  # noqa: F401
from qa.types import Document, Filters

TMP_SUFFIX = ".tmp"
KEEP_SNAPSHOTS = 2  # the live one and the one before it, which a slow reader may still be opening
OPEN_ATTEMPTS = 5  # readers opening a snapshot that updates removed meanwhile try the newer one

log = logging.getLogger("qa")


class IndexLayout:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.pointer = self.root / "CURRENT"
        self.snapshots = self.root / "snapshots"
        self.cache_path = self.root / "cache" / "embeddings.sqlite"
        self.lock_path = self.root / ".lock"

    def current(self) -> Path | None:
        """The live snapshot folder, or None when there is no index yet."""
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"cannot read {self.pointer}: {exc}; run `qa index --rebuild`") from None
        folder = self.snapshots / name
        if not name or "/" in name or not folder.is_dir():
            raise IndexCorruptError(
                f"{self.pointer} names a snapshot that does not exist ({name!r}); run `qa index --rebuild`"
            )
        return folder

    def current_name(self) -> str:
        try:
            return self.pointer.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return ""

    def new_temp(self) -> Path:
        # Microseconds: snapshot names sort in the order they were made (see clean_temporaries).
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        folder = self.snapshots / f"{stamp}-{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
        folder.mkdir(parents=True)
        return folder

    def publish(self, temp: Path) -> Path:
        """Make a fully written temporary snapshot the live one, atomically."""
        final = temp.with_name(temp.name[: -len(TMP_SUFFIX)])
        _fsync_tree(temp)
        os.rename(temp, final)
        staged = self.root / f"CURRENT.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}"
        try:
            _fsync_dir(self.snapshots)
            with open(staged, "w", encoding="utf-8") as fh:
                fh.write(final.name + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(staged, self.pointer)
            _fsync_dir(self.root)
        except BaseException:
            # E.g. a full disk while writing the pointer: the previous snapshot stays live.
            _remove(staged)
            if self.current_name() != final.name:
                _remove(final)
            raise
        self._collect(keep=final.name)
        return final

    def republish(self, snapshot: Path, manifest: Manifest) -> Path:
        """Publish a snapshot's index files again under another manifest (hard links, not copies).

        Published snapshots never change, so the new one can share their files.
        """
        temp = self.new_temp()
        try:
            for path in sorted(snapshot.rglob("*")):
                target = temp / path.relative_to(snapshot)
                if path.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif path != snapshot / MANIFEST:
                    try:
                        os.link(path, target)
                    except OSError:  # a file system without hard links
                        shutil.copy2(path, target)
            manifest.write(temp)
            return self.publish(temp)
        except BaseException:
            _remove(temp)
            raise

    def clean_temporaries(self) -> None:
        """Remove what interrupted writers left behind (call with the lock held)."""
        for folder in (self.snapshots, self.root):
            if folder.is_dir():
                for item in folder.iterdir():
                    if item.name.endswith(TMP_SUFFIX):
                        _remove(item)
        # A writer killed between renaming its snapshot and swapping CURRENT leaves a snapshot
        # newer than the live one that nothing names: never published, so nobody reads it.
        current = self.current_name()
        if current and (self.snapshots / current).is_dir():
            for item in self.snapshots.iterdir():
                if item.is_dir() and item.name > current:
                    _remove(item)
            # A writer killed after swapping CURRENT but before removing old snapshots leaves one too many.
            self._collect(keep=current)

    def _collect(self, keep: str) -> None:
        names = sorted(p.name for p in self.snapshots.iterdir() if p.is_dir() and not p.name.endswith(TMP_SUFFIX))
        old = [n for n in names if n != keep]
        for name in old[: max(0, len(old) - (KEEP_SNAPSHOTS - 1))]:
            _remove(self.snapshots / name)

    @contextlib.contextmanager
    def writer_lock(self, wait: bool = False) -> Iterator[None]:
        """Exclusive right to write; fails at once (or waits) if another process holds it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held across the yield
        except OSError as exc:
            raise QAError(
                f"cannot write in the index folder {self.root} ({exc.strerror or exc}); "
                f"point QA_INDEX (--index) at a folder you can write to"
            ) from None
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                if not wait:
                    raise IndexLockedError(
                        f"another process (pid {holder}) is updating the index in {self.root}; "
                        f"wait for it to finish, then run the command again"
                    ) from None
                print(f"waiting for another process (pid {holder}) to finish updating the index…", file=sys.stderr)
                fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


class Snapshot:
    """One published index, opened for reading: the local store's IndexReader."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name
        self.warning = ""  # set when this is an older snapshot opened because the live one is damaged
        self.opened_for = folder.name
        self.manifest = Manifest.read(folder)
        self.catalog = Catalog.open(folder)
        self.vectors = load_store(folder, int(self.manifest.model["dim"]))
        self.lexical = Bm25Index.load(folder)
        chunks = self.catalog.count_chunks()
        if not (chunks == len(self.vectors) == len(self.lexical)):
            raise IndexCorruptError(
                f"index parts in {folder} disagree ({chunks} chunks, {len(self.vectors)} vectors, "
                f"{len(self.lexical)} lexical entries); run `qa index --rebuild`"
            )

    @classmethod
    def open_current(cls, layout: IndexLayout, fallback: bool = True) -> Snapshot:
        """The live snapshot; if its files are damaged, the newest intact older one, with a warning.

        A pointer (CURRENT) that cannot be read or names nothing is not worked around: which
        snapshot was live is then unknown.
        """
        for attempt in range(OPEN_ATTEMPTS):
            name = layout.current_name()
            try:
                folder = layout.current()
            except IndexCorruptError:
                if layout.current_name() != name and attempt < OPEN_ATTEMPTS - 1:
                    continue  # swapped meanwhile
                raise
            if folder is None:
                raise IndexMissingError(f"there is no index in {layout.root} yet; run `qa index`")
            try:
                return cls(folder)
            except IndexCorruptError as exc:
                # Writers keep only KEEP_SNAPSHOTS snapshots: if CURRENT moved on while this one
                # was being opened, it may be gone already; the one now named is whole.
                if layout.current_name() != name and attempt < OPEN_ATTEMPTS - 1:
                    continue
                older = cls._open_older(layout, folder.name, exc) if fallback else None
                if older is None:
                    raise
                return older
        raise AssertionError("unreachable")

    @classmethod
    def _open_older(cls, layout: IndexLayout, damaged: str, reason: Exception) -> Snapshot | None:
        """The newest published snapshot older than `damaged` that opens, or None."""
        if not layout.snapshots.is_dir():
            return None
        names = sorted(
            (p.name for p in layout.snapshots.iterdir() if p.is_dir() and not p.name.endswith(TMP_SUFFIX)),
            reverse=True,
        )
        for name in names:
            if name >= damaged:  # the damaged one, or newer: never published
                continue
            try:
                snapshot = cls(layout.snapshots / name)
            except (IndexCorruptError, OSError):
                continue
            snapshot.opened_for = damaged
            snapshot.warning = (
                f"the live index is damaged ({reason}); answering from the previous snapshot {name}, "
                f"which lacks the last update: run `qa index` to repair"
            )
            log.warning("%s", snapshot.warning)
            return snapshot
        return None

    @classmethod
    def open_compatible(cls, layout: IndexLayout, model_key: str, settings: Settings) -> Snapshot:
        """The live snapshot, refused (and closed) if built with another model or chunker."""
        snapshot = cls.open_current(layout)
        try:
            snapshot.manifest.check_settings(model_key, settings)
        except QAError:
            snapshot.close()
            raise
        return snapshot

    @property
    def analyzer(self):
        return self.lexical.analyzer

    def term_stats(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        return self.lexical.term_stats(terms)

    def similar_words(self, word: str, max_edits: int) -> list[tuple[str, int]]:
        return self.lexical.similar_words(word, max_edits)

    def close(self) -> None:
        self.catalog.close()

    # -- IndexReader ---------------------------------------------------------------------
    def documents(self) -> list[DocumentInfo]:
        return self.catalog.documents()

    def document(self, doc_id: str) -> Document | None:
        return self.catalog.document(doc_id)

    def sources(self) -> dict[str, tuple[str, str]]:
        return self.catalog.sources()

    def count_chunks(self) -> int:
        return self.catalog.count_chunks()

    def chunk_records(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return self.catalog.chunk_records(ids)

    def chunk_spans(self) -> list[tuple[int, str, int, int]]:
        return self.catalog.chunk_spans()

    def evidence(self, ids: Sequence[int]) -> dict[int, ChunkEvidence]:
        return self.catalog.evidence(ids)

    def consistent(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # a published snapshot never changes

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not filters.active:
            return None
        return self.catalog.filtered_chunk_ids(filters.doc_ids, filters.author, filters.date_from, filters.date_to)

    def search_dense(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        allowed = self._allowed(filters)
        if allowed is not None and len(allowed) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, ids = self.vectors.search(np.asarray(vector)[None, :], k, allowed)
        if not scores.size:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def search_lexical(self, query: str, k: int, filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        allowed = self._allowed(filters)
        if allowed is not None and len(allowed) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        return self.lexical.search(query, k, allowed)

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        return self.vectors.vectors(np.asarray(ids, dtype=np.int64))

    def coverage(self, query: str) -> Callable[[str], float]:
        return self.lexical.coverage(query)

    @property
    def lexical_params(self) -> dict:
        return self.lexical.params


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    for attempt in range(3):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05 * (attempt + 1))
