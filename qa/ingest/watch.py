"""Keeping the index up to date as the corpus folder changes (`qa index --watch`, `qa serve --watch`).

Each batch of changes runs the same `update_index` as `qa index`: the same per-file report,
the same atomic publication of a new index, on either store. A file is read only once it has
settled: no change under the corpus for `settle` seconds, and then the changed files' sizes
and modification times the same twice in a row, so a file still being copied in is not read
half-written. A removed file's passages go with the next update; a renamed file is a removal
and an addition whose chunks come from the embedding cache, so nothing is embedded again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings
from qa.errors import QAError
from qa.ingest.indexer import IndexReport, update_index

log = logging.getLogger("qa.ingest.watch")

# Longest a batch of changes may keep growing before it is indexed (a folder being filled
# for minutes still gets indexed as it goes; each file is still checked to have settled).
MAX_BATCH_SECONDS = 60.0


class CorpusWatcher:
    """Watch the corpus folder and update the index after each settled batch of changes."""

    def __init__(
        self,
        settings: Settings,
        on_report: Callable[[IndexReport], None],
        on_error: Callable[[Exception], None] | None = None,
        embedder=None,
        settle: float = 1.0,
    ) -> None:
        self.settings = settings
        self.corpus = Path(settings.corpus_dir).resolve()
        self.index = Path(settings.index_dir).resolve()
        self.on_report = on_report
        self.on_error = on_error or (lambda exc: log.warning("updating the index failed: %s", exc))
        self.embedder = embedder
        self.settle = settle
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: list | None = None  # the failures last reported

    def update(self) -> IndexReport | None:
        """One `qa index` run, reported unless it changed nothing; an error is reported and the watch goes on."""
        try:
            if self.embedder is None:
                from qa.embedding.models import load_embedder

                self.embedder = load_embedder(self.settings.model, self.settings.backend)
            report = update_index(self.settings, embedder=self.embedder, wait=True)
        except (QAError, OSError) as exc:
            self.on_error(exc)
            return None
        except Exception as exc:  # a bug: logged in full, and the watch goes on (the previous index stays)
            log.exception("updating the index failed")
            self.on_error(exc)
            return None
        if report.modified or report.failed != self._failed:
            self.on_report(report)
        self._failed = report.failed
        return report

    def run(self, initial: bool = True) -> None:
        """Update once (unless `initial` is False), then after every settled batch until stop()."""
        import watchfiles

        if not self.corpus.is_dir():
            raise QAError(f"corpus folder {self.corpus} not found; create it or point QA_CORPUS (--corpus) at it")
        if initial:
            self.update()
        for changes in watchfiles.watch(
            self.corpus,
            watch_filter=self._wanted,
            # Yielded after `settle` seconds without a change, or after MAX_BATCH_SECONDS of them.
            step=int(self.settle * 1000),
            debounce=int(MAX_BATCH_SECONDS * 1000),
            stop_event=self.stop_event,
            rust_timeout=500,
            yield_on_timeout=False,
            raise_interrupt=False,
        ):
            if self.stop_event.is_set():
                break
            self._wait_until_settled({Path(path) for _, path in changes})
            if self.stop_event.is_set():
                break
            self.update()

    def start(self, initial: bool = False) -> CorpusWatcher:
        """Run in a daemon thread (what `qa serve --watch` does); stop() ends it."""
        self._thread = threading.Thread(target=self.run, args=(initial,), name="qa-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _wanted(self, change, path: str) -> bool:
        """Corpus files and sidecars: not hidden files (partial downloads, editors' swap files), not the index."""
        target = Path(path)
        try:
            relative = target.relative_to(self.corpus)
        except ValueError:
            return False
        if target == self.index or self.index in target.parents:
            return False
        return not any(part.startswith(".") or part.endswith("~") for part in relative.parts)

    def _wait_until_settled(self, paths: set[Path]) -> None:
        """Return once every changed file that still exists keeps its size and mtime for `settle` seconds."""

        def state() -> dict[Path, tuple[int, int] | None]:
            out: dict[Path, tuple[int, int] | None] = {}
            for path in paths:
                try:
                    stat = os.stat(path)
                    out[path] = (stat.st_size, stat.st_mtime_ns)
                except OSError:
                    out[path] = None
            return out

        before = state()
        deadline = time.monotonic() + MAX_BATCH_SECONDS
        while not self.stop_event.wait(min(self.settle, 0.5)):
            now = state()
            if now == before or time.monotonic() > deadline:
                return
            before = now
