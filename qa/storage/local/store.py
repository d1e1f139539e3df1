"""The local store: an index folder of immutable snapshots (see qa.storage.local.snapshot).

A writer copies the live snapshot's catalog into a temporary folder, applies every change
there, and publishes the result as the new live snapshot in one atomic step: readers see the
whole update or none of it, and an interrupted writer leaves the previous snapshot live.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.errors import EncoderRevisedError, IndexCorruptError, IndexMismatchError, IndexMissingError, QAError
from qa.storage.base import IndexedChunk
from qa.storage.local.catalog import Catalog
from qa.storage.local.lexical import Bm25Index
from qa.storage.local.snapshot import IndexLayout, Snapshot, _remove
from qa.storage.local.vectors import FaissFlatStore, fit_store
from qa.storage.manifest import Manifest, base_manifest, corpus_fingerprint, now_iso
from qa.types import Document

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding.models import Embedder, EmbeddingCache


class LocalStore:
    kind = "local"

    def __init__(self, root: str | Path) -> None:
        self.layout = IndexLayout(Path(root))
        self.location = str(self.layout.root)

    def open(self, model_key: str, settings: Settings) -> Snapshot:
        return Snapshot.open_compatible(self.layout, model_key, settings)

    def current_name(self) -> str:
        return self.layout.current_name()

    def embedding_cache(self) -> EmbeddingCache:
        from qa.embedding.models import EmbeddingCache

        return EmbeddingCache(self.layout.cache_path)

    @contextlib.contextmanager
    def writer(
        self, embedder: Embedder, settings: Settings, rebuild: bool = False, wait: bool = False
    ) -> Iterator[LocalWriter]:
        with self.layout.writer_lock(wait=wait):
            self.layout.clean_temporaries()
            writer = LocalWriter(self, embedder, settings, rebuild)
            try:
                yield writer
            except BaseException as exc:
                writer.abort()
                if _is_write_error(exc):
                    raise _write_error(exc, self.layout.root) from None
                raise
            finally:
                writer.close()


class LocalWriter:
    """One update of a local index: changes go to a temporary snapshot, published by `finish`."""

    embed_group = 0  # nothing is visible before `finish`: embed everything in one pass

    def __init__(self, store: LocalStore, embedder: Embedder, settings: Settings, rebuild: bool) -> None:
        self.layout = store.layout
        self.embedder = embedder
        self.settings = settings
        self.notes: list[str] = []
        self._damaged = ""  # a live snapshot that could not be read, removed once a new one is live
        self.old = None if rebuild else self._open_previous()
        self.rebuilt = self.old is None
        # Other BM25 parameters than the live index's: its lexical index is rebuilt with them.
        self.relexed = self.old is not None and self.old.lexical.set_parameters(
            settings.bm25_k1, settings.bm25_b, settings.bm25_pairs
        )
        if self.relexed:
            self.notes.append(
                f"the lexical index is rebuilt with BM25 k1={settings.bm25_k1:g}, b={settings.bm25_b:g}, "
                f"term pairs {settings.bm25_pairs:g} (nothing is re-embedded)"
            )
        self._previous = self.old.catalog.sources() if self.old else {}
        self._cache: EmbeddingCache | None = None
        self._temp: Path | None = None
        self._catalog: Catalog | None = None
        self._vectors = None
        self._lexical: Bm25Index | None = None
        self._published: tuple[int, int] | None = None  # (chunks, documents) once finished

    def _open_previous(self) -> Snapshot | None:
        try:
            snapshot = Snapshot.open_compatible(self.layout, self.embedder.cache_key, self.settings)
        except EncoderRevisedError as exc:
            self.notes.append(f"{str(exc).split(';')[0]}: every chunk is embedded again")
            return None
        except IndexMismatchError:
            raise
        except IndexCorruptError as exc:
            self.notes.append(f"the previous index could not be read ({exc}); rebuilt from scratch")
            return None
        except IndexMissingError:
            return None
        if snapshot.warning:
            self._damaged = self.layout.current_name()
            self.notes.append(f"the live index {self._damaged} was damaged; updated from {snapshot.name} instead")
        return snapshot

    # -- IndexWriter ---------------------------------------------------------------------
    def sources(self) -> dict[str, tuple[str, str]]:
        if self._catalog is not None:
            return self._catalog.sources()
        return dict(self._previous)

    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            from qa.embedding.models import EmbeddingCache

            self._cache = EmbeddingCache(self.layout.cache_path)
        return self._cache

    def put_document(self, doc: Document, chunks: Sequence[IndexedChunk]) -> bool:
        catalog = self._begin()
        self.remove_document(doc.doc_id)  # a changed document replaces its indexed version
        start = catalog.next_chunk_id()
        ids = list(range(start, start + len(chunks)))
        catalog.add_document(doc, [c.chunk for c in chunks], ids, [c.evidence for c in chunks])
        if chunks:
            self._vectors.add(np.array(ids, dtype=np.int64), np.vstack([c.vector for c in chunks]))
            self._lexical.add(ids, [c.lexical_text for c in chunks])
        return True

    def remove_document(self, doc_id: str) -> None:
        catalog = self._begin()
        ids = catalog.remove_document(doc_id)
        self._vectors.remove(np.array(ids, dtype=np.int64))
        self._lexical.remove(ids)

    def counts(self) -> tuple[int, int]:
        if self._published is not None:
            return self._published
        catalog = self._catalog if self._catalog is not None else (self.old.catalog if self.old else None)
        if catalog is None:
            return 0, 0
        return catalog.count_chunks(), len(catalog.sources())

    def unchanged(self, failed: list[dict]) -> str:
        if self.old is None:  # an empty corpus and no index yet: publish an empty one
            return self.finish({**_common_manifest(self), "corpus": {"failed": failed}})
        if not self._damaged and self.old.manifest.corpus.get("failed", []) == failed:
            return self.old.name
        # The same index under a manifest naming this update's failed files (and live again, if the
        # live snapshot was damaged): published snapshots never change, so it shares their files.
        data = json.loads(json.dumps(self.old.manifest.data))
        data["created"] = now_iso()
        data["corpus"]["failed"] = failed
        name = self.layout.republish(self.old.folder, Manifest(data)).name
        self._remove_damaged(name)
        return name

    def finish(self, manifest: dict | None) -> str:
        catalog = self._begin()
        catalog.commit()
        vectors = fit_store(self._vectors, self.settings.ann_threshold)
        vectors.save(self._temp)
        self._lexical.save(self._temp)
        data = dict(manifest or _common_manifest(self))
        hashes = {source: digest for source, (_, digest) in sorted(catalog.sources().items())}
        import faiss

        data["versions"] = {**data.get("versions", {}), "faiss": faiss.__version__}
        data["vectors"] = vectors.params
        data["lexical"] = self._lexical.params
        data["corpus"] = {
            **data.get("corpus", {}),
            "dir": str(Path(self.settings.corpus_dir).resolve()),
            "fingerprint": corpus_fingerprint(hashes),
            "documents": len(hashes),
            "chunks": catalog.count_chunks(),
            "files": hashes,
        }
        self._published = (data["corpus"]["chunks"], data["corpus"]["documents"])
        catalog.close()
        self._catalog = None
        Manifest(data).write(self._temp)  # last: a snapshot without a manifest is never published
        name = self.layout.publish(self._temp).name
        self._temp = None
        self._remove_damaged(name)
        return name

    def _remove_damaged(self, live: str) -> None:
        if self._damaged and self._damaged != live:
            _remove(self.layout.snapshots / self._damaged)

    # -- internals -------------------------------------------------------------------------
    def _begin(self) -> Catalog:
        """The temporary snapshot every change goes to, made on the first change."""
        if self._catalog is None:
            self._temp = self.layout.new_temp()  # inside: a full disk can refuse even the folder
            if self.old is not None:
                self._catalog = self.old.catalog.copy_to(self._temp)
                # This snapshot is the writer's own (readers open theirs): update its stores in place.
                self._vectors, self._lexical = self.old.vectors, self.old.lexical
            else:
                self._catalog = Catalog.create(self._temp)
                self._vectors = FaissFlatStore(self.embedder.dim)
                self._lexical = Bm25Index(
                    k1=self.settings.bm25_k1, b=self.settings.bm25_b, pairs=self.settings.bm25_pairs
                )
        return self._catalog

    def abort(self) -> None:
        """Ctrl-C or an error: the previous snapshot stays live; the temporary one goes."""
        if self._catalog is not None:
            with contextlib.suppress(Exception):
                self._catalog.close()
            self._catalog = None
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if self.old is not None:
            self.old.close()


def _common_manifest(writer: LocalWriter) -> dict:
    return base_manifest(writer.settings, writer.embedder)


def _is_write_error(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, sqlite3.OperationalError)) and not isinstance(exc, FileNotFoundError)


def _write_error(exc: BaseException, root: Path) -> QAError:
    """A full disk or another write error, as one line that says nothing was lost."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "full" in reason.lower():
        reason = "the disk is full"
    return QAError(
        f"could not write the new index in {root} ({reason}); the previous index is "
        f"untouched and still answers. Fix that, then run `qa index` again"
    )
