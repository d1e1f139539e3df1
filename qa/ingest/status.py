"""How the corpus folder stands against the index: files changed since, and files that cannot be read.

Two different things, told apart because they need different acts: a file added, changed or
removed since the index was built is taken in by `qa index`; a file that could not be read at
the last update (and is still the same) is not, whatever `qa index` does: it needs fixing,
a missing package installed, or removing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa.ingest.parsing import ReadError
from qa.ingest.readers import file_version, scan_corpus


@dataclass(frozen=True)
class CorpusStatus:
    changed: tuple[str, ...] = ()  # added, changed or removed since the index was built
    failed: tuple[dict, ...] = ()  # {"path", "reason"}: cannot be read, so not in the index

    def to_dict(self) -> dict:
        return {"changed": list(self.changed), "failed": [dict(f) for f in self.failed]}


def corpus_status(corpus_dir: Path, corpus: dict, max_bytes: int) -> CorpusStatus:
    """Compare the corpus folder with a manifest's corpus section ("files", "failed")."""
    indexed: dict[str, str] = corpus.get("files", {})
    recorded = {item["path"]: item for item in corpus.get("failed", []) if isinstance(item, dict) and "path" in item}
    scan = scan_corpus(Path(corpus_dir))
    changed: set[str] = set()
    failed: dict[str, str] = {}
    present: set[str] = set()
    for file in scan.files:
        present.add(file.source)
        before = recorded.get(file.source)
        try:
            version = file_version(file, max_bytes)
        except ReadError as exc:
            # Unreadable now (too large, unreadable sidecar, no permission): no update can read it either.
            failed[file.source] = before["reason"] if before and not before.get("hash") else str(exc)
            continue
        if version == indexed.get(file.source):
            continue  # what the index holds (also a failed change since undone)
        if before is not None and before.get("hash") == version:
            failed[file.source] = before["reason"]
        else:
            changed.add(file.source)
    for source, reason in scan.skipped:  # unsupported types, symlinks out of the corpus: known at once
        present.add(source)
        failed[source] = reason
    changed |= set(indexed) - present
    return CorpusStatus(
        tuple(sorted(changed)), tuple({"path": path, "reason": failed[path]} for path in sorted(failed))
    )
