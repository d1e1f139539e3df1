"""Indexes `qa eval` builds for benchmark corpora, one folder per dataset and index settings.

A BEIR folder or a question-set folder (questions.jsonl beside a corpus/ folder) is indexed
through the same reader, chunker, embedder and index as a real corpus, into
`<cache>/<name>-<hash>` (QA_EVAL_CACHE, else ~/.cache/qa/beir). The indexer only embeds text
whose hash its embedding cache lacks, so a second run embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from qa.config import Settings
from qa.embedding.models import Embedder
from qa.errors import IndexMismatchError
from qa.ingest.readers import CorpusScan
from qa.storage.manifest import FORMAT


def default_cache_root() -> Path:
    """QA_EVAL_CACHE, else $XDG_CACHE_HOME/qa/beir, else ~/.cache/qa/beir."""
    configured = os.environ.get("QA_EVAL_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or "~/.cache"
    return Path(base).expanduser() / "qa" / "beir"


def index_folder(folder: Path, settings: Settings, embedder: Embedder, root: Path | None = None) -> Path:
    """One index folder per dataset location, model and chunker settings."""
    parts = [str(Path(folder).resolve()), embedder.cache_key, settings.chunk_size, settings.chunk_overlap, FORMAT]
    # Settings added later join the key only when they differ from what indexes did before them.
    if settings.chunk_context != "none":
        parts.append(settings.chunk_context)
    if settings.paragraph_size > settings.chunk_size:
        parts.append(["paragraph", settings.paragraph_size])
    if settings.chunk_context != "none":
        parts.append(["context tokens", settings.context_tokens])
    parts.append(f"sentences:{settings.sentence_vectors}")  # indexes without sentence evidence are not reused
    key = json.dumps(parts)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(folder).resolve().name).strip("-") or "beir"
    return (root or default_cache_root()) / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def schema_for(target: Path) -> str:
    """A PostgreSQL schema name for a dataset's index folder: beir_<slug>_<hash>."""
    slug, _, digest = target.name.rpartition("-")
    slug = re.sub(r"[^a-z0-9_]+", "_", slug.lower()).strip("_")[:40] or "beir"
    return f"beir_{slug}_{digest[:12]}"


def cached_index(
    folder: Path,
    settings: Settings,
    embedder: Embedder,
    scan: CorpusScan,
    corpus_dir: Path,
    cache_root: Path | None = None,
    progress: bool = False,
):
    """Bring the dataset's cached index up to date with `scan`; returns (settings pointing at it, IndexReport)."""
    from qa.ingest.indexer import update_index

    target = index_folder(folder, settings, embedder, cache_root)
    target.mkdir(parents=True, exist_ok=True)
    about = target / "dataset.json"
    if not about.exists():
        about.write_text(
            json.dumps(
                {
                    "dataset": str(Path(folder).resolve()),
                    "model": settings.model,
                    "backend": settings.backend,
                    "chunk_size": settings.chunk_size,
                    "chunk_overlap": settings.chunk_overlap,
                    "chunk_context": settings.chunk_context,
                    "paragraph_size": max(settings.paragraph_size, settings.chunk_size),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    index_settings = settings.with_(index_dir=target, corpus_dir=corpus_dir)
    if settings.store == "postgres":  # a schema of its own in the same database, named like the folder
        index_settings = index_settings.with_(pg_schema=schema_for(target))
    try:
        report = update_index(index_settings, progress=progress, embedder=embedder, wait=True, scan=scan)
    except IndexMismatchError:  # a cache: an index made by another version of qa is made again
        report = update_index(index_settings, rebuild=True, progress=progress, embedder=embedder, wait=True, scan=scan)
    return index_settings, report
