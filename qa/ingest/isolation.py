"""Reading untrusted files in a worker process with a memory cap and a time limit.

A hostile PDF (a decompression bomb, a page tree that never ends) must cost the indexer one
skipped file, never its memory or its afternoon. `IsolatedParser` parses the formats that inflate
(PDF; the zip-based office files and e-books; spreadsheets, whose rows repeat their header) in a
separate process whose address space is capped (RLIMIT_AS) and whose every file has a deadline.
Text, Markdown and HTML, which cannot grow past the file size limit (QA_MAX_FILE_MB), are read in
this process. A file over a limit raises ReadError with the reason, and the next file gets a
fresh worker. `PageRenderer` draws pictures of PDF pages (for the web chat) in the same kind
of worker. Scanned PDF pages are read by OCR in a second worker with a larger memory cap and
a deadline per page (qa.ingest.ocr).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import multiprocessing
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import PurePosixPath

from qa.ingest.ocr import NeedsOCR, OcrCache, Scan, recognise
from qa.ingest.office import OFFICE_SUFFIXES
from qa.ingest.pages import PageImage, PageLimits, render_page
from qa.ingest.parsing import ParseLimits, ReadError
from qa.ingest.readers import PDF_SUFFIXES, parse_document
from qa.types import Document

log = logging.getLogger("qa.ingest.isolation")

# The formats whose readers decompress (a small file can become gigabytes): PDFs, the zip-based
# office files and e-books, and CSV, whose rows each repeat the header's names.
ISOLATED_SUFFIXES = frozenset(PDF_SUFFIXES | OFFICE_SUFFIXES)


class IsolatedParser:
    """`parse_document` with limits: a context manager owning (at most) one worker process."""

    def __init__(
        self,
        limits: ParseLimits = ParseLimits(),
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.limits = limits
        # Called with (source, pages read, pages to read) as a scanned PDF's pages are read.
        self.progress = progress
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._ocr_pool: concurrent.futures.ProcessPoolExecutor | None = None

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
        try:
            return self._parse(source, data, doc_id, sidecar, sidecar_name, self.limits)
        except NeedsOCR as needs:
            # A scanned PDF: its pages' images are read in the OCR worker, then the PDF again with their text.
            texts = self._recognise(source, needs.scans)
            limits = dataclasses.replace(self.limits, ocr_texts=texts)
            return self._parse(source, data, doc_id, sidecar, sidecar_name, limits)

    def _parse(self, source, data, doc_id, sidecar, sidecar_name, limits: ParseLimits) -> Document:
        pool = self._pool or self._start()
        future = pool.submit(parse_document, source, data, doc_id, sidecar, sidecar_name, limits)
        try:
            return future.result(timeout=limits.seconds)
        except concurrent.futures.TimeoutError:
            self._stop()
            raise ReadError(
                f"reading it took longer than {limits.seconds:g} s (set QA_PARSE_SECONDS to allow more)"
            ) from None
        except (MemoryError, BrokenProcessPool):
            self._stop()
            raise ReadError(
                f"reading it needed more than {limits.memory_mb} MB of memory (set QA_PARSE_MEMORY_MB to allow more)"
            ) from None

    def _recognise(self, source: str, scans: tuple[Scan, ...]) -> tuple[tuple[int, str], ...]:
        """The OCR text of each scanned page: from the cache, else from the OCR worker (a deadline per page)."""
        cache = OcrCache(self.limits.ocr_cache)
        texts: list[tuple[int, str]] = []
        for done, scan in enumerate(scans, start=1):
            text = cache.get(scan.digest)
            if text is None:
                log.info("OCR: %s page %d (%d of %d)", source, scan.page + 1, done, len(scans))
                pool = self._ocr_pool or self._start_ocr()
                future = pool.submit(recognise, scan.images)
                try:
                    text = future.result(timeout=self.limits.ocr_seconds)
                except concurrent.futures.TimeoutError:
                    self._stop_ocr()
                    raise ReadError(
                        f"OCR of page {scan.page + 1} took longer than {self.limits.ocr_seconds:g} s "
                        "(set QA_OCR_SECONDS to allow more, or QA_OCR=off)"
                    ) from None
                except (MemoryError, BrokenProcessPool):
                    self._stop_ocr()
                    raise ReadError(
                        f"OCR of page {scan.page + 1} needed more than {self.limits.ocr_memory_mb} MB of memory "
                        "(set QA_OCR_MEMORY_MB to allow more, or QA_OCR=off)"
                    ) from None
                except (ImportError, OSError) as exc:
                    # E.g. OpenCV without the system's libGL: the environment, not the file, is at fault.
                    raise ReadError(
                        f"OCR is unavailable here ({str(exc)[:120]}); "
                        "see the OCR notes in docs/indexing.md, or set QA_OCR=off"
                    ) from None
                cache.put(scan.digest, text)
            if self.progress is not None:
                self.progress(source, done, len(scans))
            texts.append((scan.page, text))
        return tuple(texts)

    def close(self) -> None:
        for pool in (self._pool, self._ocr_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._ocr_pool = None

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        self._pool = _worker(self.limits.memory_mb)
        return self._pool

    def _start_ocr(self) -> concurrent.futures.ProcessPoolExecutor:
        self._ocr_pool = _worker(self.limits.ocr_memory_mb)
        return self._ocr_pool

    def _stop_ocr(self) -> None:
        pool, self._ocr_pool = self._ocr_pool, None
        _kill(pool)

    def _stop(self) -> None:
        """End the worker at once (it may be stuck in a parse): the next file starts another."""
        pool, self._pool = self._pool, None
        _kill(pool)


class PageRenderer:
    """`render_page` in a worker process with the parser's memory cap and a deadline, one page at a
    time (a web server's requests wait their turn); the last pages rendered are kept."""

    def __init__(self, limits: PageLimits = PageLimits(), keep: int = 32) -> None:  # noqa: B008  (frozen)
        self.limits = limits
        self.keep = keep
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple, PageImage] = OrderedDict()

    def __enter__(self) -> PageRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def render(self, data: bytes, page: int, sentence: str = "", near: float = 0.0, key: tuple = ()) -> PageImage:
        """The page as PNG with the sentence marked (`key` names the file's version, for keeping
        the result); ReadError with the reason when it cannot be rendered within the limits."""
        kept_as = (key, page, sentence, round(near, 3)) if key else None
        with self._lock:
            if kept_as is not None and kept_as in self._kept:
                self._kept.move_to_end(kept_as)
                return self._kept[kept_as]
            pool = self._pool or self._start()
            future = pool.submit(render_page, data, page, sentence, near, self.limits)
            try:
                image = future.result(timeout=self.limits.seconds)
            except concurrent.futures.TimeoutError:
                self._stop()
                raise ReadError(f"rendering page {page} took longer than {self.limits.seconds:g} s") from None
            except (MemoryError, BrokenProcessPool):
                self._stop()
                raise ReadError(
                    f"rendering page {page} needed more than {self.limits.memory_mb} MB of memory "
                    "(set QA_PARSE_MEMORY_MB to allow more)"
                ) from None
            if kept_as is not None:
                self._kept[kept_as] = image
                while len(self._kept) > self.keep:
                    self._kept.popitem(last=False)
            return image

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        self._pool = _worker(self.limits.memory_mb)
        return self._pool

    def _stop(self) -> None:
        pool, self._pool = self._pool, None
        _kill(pool)


def _worker(memory_mb: int) -> concurrent.futures.ProcessPoolExecutor:
    # spawn: a fresh interpreter, not a fork of this one with its models and threads.
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_limit_worker,
        initargs=(memory_mb * 1024 * 1024,),
    )


def _kill(pool: concurrent.futures.ProcessPoolExecutor | None) -> None:
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
