"""Reading untrusted files in a worker process with a memory cap and a time limit.

A hostile PDF (a decompression bomb, a page tree that never ends) or HTML file must cost the
indexer one skipped file, never its memory or its afternoon. `IsolatedParser` parses PDFs, HTML,
office files, e-books and CSV in a separate process whose address space is capped (RLIMIT_AS)
and whose every file has a deadline; plain text and Markdown, which cannot expand, are read in this process. A file over
a limit raises ReadError with the reason, and the next file gets a fresh worker.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import PurePosixPath

from qa.ingest.office import OFFICE_SUFFIXES
from qa.ingest.readers import HTML_SUFFIXES, PDF_SUFFIXES, ParseLimits, ReadError, parse_document
from qa.types import Document

log = logging.getLogger("qa.ingest.isolation")

# The formats whose readers decompress or build large trees from small inputs: PDFs, HTML,
# and the zip-based office files and e-books (CSV too: a spreadsheet's rows can be many).
ISOLATED_SUFFIXES = frozenset(PDF_SUFFIXES | HTML_SUFFIXES | OFFICE_SUFFIXES)


class IsolatedParser:
    """`parse_document` with limits: a context manager owning (at most) one worker process."""

    def __init__(self, limits: ParseLimits = ParseLimits()) -> None:  # noqa: B008  (frozen)
        self.limits = limits
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> IsolatedParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parse(
        self,
        source: str,
        data: bytes,
        doc_id: str | None = None,
        sidecar: bytes | None = None,
        sidecar_name: str = "",
    ) -> Document:
        """The Document of one file; ReadError with the reason when it cannot be read within the limits."""
        if PurePosixPath(source).suffix.lower() not in ISOLATED_SUFFIXES:
            return parse_document(source, data, doc_id, sidecar, sidecar_name, self.limits)
        pool = self._pool or self._start()
        future = pool.submit(parse_document, source, data, doc_id, sidecar, sidecar_name, self.limits)
        try:
            return future.result(timeout=self.limits.seconds)
        except concurrent.futures.TimeoutError:
            self._stop()
            raise ReadError(
                f"reading it took longer than {self.limits.seconds:g} s (set QA_PARSE_SECONDS to allow more)"
            ) from None
        except (MemoryError, BrokenProcessPool):
            self._stop()
            raise ReadError(
                f"reading it needed more than {self.limits.memory_mb} MB of memory "
                "(set QA_PARSE_MEMORY_MB to allow more)"
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn: a fresh interpreter, not a fork of this one with its models and threads.
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_limit_worker,
            initargs=(self.limits.memory_mb * 1024 * 1024,),
        )
        return self._pool

    def _stop(self) -> None:
        """End the worker at once (it may be stuck in a parse): the next file starts another."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
        if terminate is not None:
            terminate()
        else:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def _limit_worker(memory_bytes: int) -> None:
    """In the worker: cap its address space, so an allocation past it fails there, not here."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError) as exc:  # e.g. a platform without RLIMIT_AS: the deadline still holds
        log.warning("cannot cap the parsing worker's memory: %s", exc)
