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
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa import __version__
from qa.config import Settings
from qa.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexMissingError, QAError
from qa.storage.local.catalog import Catalog
from qa.storage.local.lexical import Bm25Index
from qa.storage.local.vectors import load_store

FORMAT = 1
MANIFEST = "manifest.json"
TMP_SUFFIX = ".tmp"
KEEP_SNAPSHOTS = 2  # the live one and the one before it, which a slow reader may still be opening
OPEN_ATTEMPTS = 5  # readers opening a snapshot that updates removed meanwhile try the newer one


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


@dataclass(frozen=True)
class Manifest:
    data: dict

    @property
    def model(self) -> dict:
        return self.data["model"]

    @property
    def chunker(self) -> dict:
        return self.data["chunker"]

    @property
    def corpus(self) -> dict:
        return self.data["corpus"]

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for key in ("format", "model", "chunker", "corpus"):
                data[key]
        except FileNotFoundError:
            raise IndexCorruptError(f"{path} is missing; run `qa index --rebuild`") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{path} is unreadable ({exc}); run `qa index --rebuild`") from None
        return cls(data)

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(self.data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def check_compatible(self, model_key: str, model_name: str, chunk_size: int, chunk_overlap: int) -> None:
        """Refuse an index built with another format, model or chunker settings."""
        if self.data["format"] != FORMAT:
            raise IndexMismatchError(
                f"the index was written by another version of qa (format {self.data['format']}, "
                f"this is {FORMAT}); run `qa index --rebuild`"
            )
        if self.model.get("cache_key") != model_key:
            built = str(self.model.get("cache_key", "?")).split(":", 1)[0]
            wanted = model_key.split(":", 1)[0]
            if self.model.get("name") == model_name and built != wanted:
                raise IndexMismatchError(
                    f"the index was built with the {built} backend, not {wanted}; "
                    f"run `qa index --rebuild`, or set QA_BACKEND={built}"
                )
            raise IndexMismatchError(
                f"the index was built with the model '{self.model.get('name')}', not '{model_name}'; "
                f"run `qa index --rebuild` to rebuild it with '{model_name}', "
                f"or use --model '{self.model.get('name')}' (QA_MODEL)"
            )
        size, overlap = self.chunker.get("chunk_size"), self.chunker.get("chunk_overlap")
        if (size, overlap) != (chunk_size, chunk_overlap):
            raise IndexMismatchError(
                f"the index was built with chunks of {size} tokens overlapping {overlap}, not "
                f"{chunk_size}/{chunk_overlap}; run `qa index --rebuild`, or set "
                f"QA_CHUNK_SIZE={size} QA_CHUNK_OVERLAP={overlap}"
            )


class Snapshot:
    """One published index, opened for reading."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name
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
    def open_current(cls, layout: IndexLayout) -> Snapshot:
        for attempt in range(OPEN_ATTEMPTS):
            name = layout.current_name()
            try:
                folder = layout.current()
                if folder is None:
                    raise IndexMissingError(f"there is no index in {layout.root} yet; run `qa index`")
                return cls(folder)
            except IndexCorruptError:
                # Writers keep only KEEP_SNAPSHOTS snapshots: if CURRENT moved on while this one
                # was being opened, it may be gone already; the one now named is whole.
                if attempt == OPEN_ATTEMPTS - 1 or layout.current_name() == name:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def open_compatible(cls, layout: IndexLayout, model_key: str, settings: Settings) -> Snapshot:
        """The live snapshot, refused (and closed) if built with another model or chunker."""
        snapshot = cls.open_current(layout)
        try:
            snapshot.manifest.check_compatible(model_key, settings.model, settings.chunk_size, settings.chunk_overlap)
        except QAError:
            snapshot.close()
            raise
        return snapshot

    def close(self) -> None:
        self.catalog.close()


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def version_info() -> dict:
    return {"qa": __version__, "python": sys.version.split()[0]}


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


def corpus_fingerprint(hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for source, file_hash in sorted(hashes.items()):
        digest.update(f"{source}\0{file_hash}\n".encode())
    return digest.hexdigest()
