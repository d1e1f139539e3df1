"""BEIR-format benchmarks: reading corpus, queries and qrels, and indexing the corpus in a cache folder.

A BEIR folder holds corpus.jsonl ({"_id", "title", "text"}), queries.jsonl ({"_id", "text"})
and qrels/<split>.tsv (header, then query-id, corpus-id, score). Each corpus document is
indexed as a small Markdown file held in memory, so the benchmark goes through the same
reader, chunker, embedder and index as a real corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings
from qa.embedding.models import Embedder
from qa.errors import QAError
from qa.ingest.readers import CorpusFile, CorpusScan
from qa.storage.manifest import FORMAT

SUFFIX = ".md"
MAX_REPORTED_ERRORS = 10


@dataclass(frozen=True)
class BeirDataset:
    """The queries of one split that have judgements, and those judgements."""

    name: str
    folder: Path
    split: str
    queries: dict[str, str]  # query id -> text, in the file's order
    qrels: dict[str, dict[str, int]]  # query id -> {document id: grade > 0}


def source_for(doc_id: str) -> str:
    """The corpus-relative name a BEIR document is indexed under; its index doc_id is doc_id."""
    return doc_id + SUFFIX


def beir_id(source: str) -> str:
    return source[: -len(SUFFIX)] if source.endswith(SUFFIX) else source


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; all bad lines are reported together."""
    if not path.is_file():
        raise QAError(f"{path} not found: a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    errors: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                errors.append(f"line {number}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(item, dict) or not isinstance(item.get("_id"), (str, int)) or str(item["_id"]) == "":
                errors.append(f'line {number}: expected an object with a non-empty "_id"')
                continue
            yield number, item
    if errors:
        raise QAError(f"{path}: {_summarise(errors)}")


def _summarise(errors: list[str]) -> str:
    shown = "; ".join(errors[:MAX_REPORTED_ERRORS])
    more = len(errors) - MAX_REPORTED_ERRORS
    return shown + (f"; and {more} more bad lines" if more > 0 else "")


def read_corpus(folder: Path) -> Iterator[tuple[str, str, str]]:
    """(doc id, title, text) for each document of corpus.jsonl."""
    seen: set[str] = set()
    for number, item in _jsonl(folder / "corpus.jsonl"):
        doc_id = str(item["_id"])
        if doc_id in seen:
            raise QAError(f"{folder / 'corpus.jsonl'} line {number}: document id {doc_id!r} appears twice")
        seen.add(doc_id)
        yield doc_id, str(item.get("title") or ""), str(item.get("text") or "")


def read_queries(folder: Path) -> dict[str, str]:
    return {str(item["_id"]): str(item.get("text") or "") for _, item in _jsonl(folder / "queries.jsonl")}


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {document id: grade}; grades of 0 or less (judged not relevant) are dropped."""
    if not path.is_file():
        splits = sorted(p.stem for p in path.parent.glob("*.tsv")) if path.parent.is_dir() else []
        hint = f" (this folder has: {', '.join(splits)})" if splits else ""
        raise QAError(f"{path} not found{hint}")
    qrels: dict[str, dict[str, int]] = {}
    errors: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if number == 1 and not parts[-1].lstrip("-").isdigit():
                continue  # the header
            if len(parts) == 4:  # TREC qrels: query-id iteration doc-id grade
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
                errors.append(f"line {number}: expected 'query-id corpus-id score' with an integer score")
                continue
            if int(parts[2]) > 0:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    if errors:
        raise QAError(f"{path}: {_summarise(errors)}")
    return qrels


def load_beir(folder: str | os.PathLike, split: str = "test") -> BeirDataset:
    """Queries with at least one relevant document in qrels/<split>.tsv, and their judgements."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise QAError(f"BEIR folder {folder} not found")
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    queries = read_queries(folder)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise QAError(
            f"{folder / 'qrels' / (split + '.tsv')} judges {len(missing)} queries that queries.jsonl lacks "
            f"(e.g. {', '.join(missing[:5])})"
        )
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    return BeirDataset(folder.name, folder, split, judged, {qid: qrels[qid] for qid in judged})


def document_bytes(doc_id: str, title: str, text: str) -> bytes:
    """A BEIR document as Markdown: the title in front matter (for citations) and in the body (for search)."""
    import yaml

    meta = yaml.safe_dump({"title": title, "beir_id": doc_id}, allow_unicode=True, width=1_000_000, sort_keys=False)
    # The id in the front matter keeps two documents with equal text from being merged as duplicates.
    body = "\n\n".join(part for part in (title.strip(), text.strip()) if part)
    return f"---\n{meta}---\n\n{body}\n".encode()


def corpus_scan(folder: Path) -> CorpusScan:
    files = []
    for doc_id, title, text in read_corpus(folder):
        data = document_bytes(doc_id, title, text)
        files.append(CorpusFile(source_for(doc_id), None, len(data), 0, data=data))
    return CorpusScan(tuple(files), ())


def default_cache_root() -> Path:
    """QA_EVAL_CACHE, else $XDG_CACHE_HOME/qa/beir, else ~/.cache/qa/beir."""
    configured = os.environ.get("QA_EVAL_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or "~/.cache"
    return Path(base).expanduser() / "qa" / "beir"


def index_folder(folder: Path, settings: Settings, embedder: Embedder, root: Path | None = None) -> Path:
    """One index folder per dataset location, model and chunker settings."""
    key = json.dumps(
        [str(Path(folder).resolve()), embedder.cache_key, settings.chunk_size, settings.chunk_overlap, FORMAT]
    )
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(folder).resolve().name).strip("-") or "beir"
    return (root or default_cache_root()) / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def schema_for(target: Path) -> str:
    """A PostgreSQL schema name for a dataset's index folder: beir_<slug>_<hash>."""
    slug, _, digest = target.name.rpartition("-")
    slug = re.sub(r"[^a-z0-9_]+", "_", slug.lower()).strip("_")[:40] or "beir"
    return f"beir_{slug}_{digest[:12]}"


def index_beir(
    folder: str | os.PathLike,
    settings: Settings,
    embedder: Embedder,
    cache_root: Path | None = None,
    progress: bool = False,
):
    """Bring the dataset's cached index up to date; returns (settings pointing at it, IndexReport).

    The indexer only embeds text whose hash its embedding cache lacks, so a second run
    embeds nothing.
    """
    from qa.ingest.indexer import update_index

    folder = Path(folder).expanduser()
    target = index_folder(folder, settings, embedder, cache_root)
    target.mkdir(parents=True, exist_ok=True)
    about = target / "dataset.json"
    if not about.exists():
        about.write_text(
            json.dumps(
                {
                    "dataset": str(folder.resolve()),
                    "model": settings.model,
                    "backend": settings.backend,
                    "chunk_size": settings.chunk_size,
                    "chunk_overlap": settings.chunk_overlap,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    index_settings = settings.with_(index_dir=target, corpus_dir=folder)
    if settings.store == "postgres":  # a schema of its own in the same database, named like the folder
        index_settings = index_settings.with_(pg_schema=schema_for(target))
    report = update_index(index_settings, progress=progress, embedder=embedder, wait=True, scan=corpus_scan(folder))
    return index_settings, report
