"""The manifest every index carries: format, model, chunker settings, versions, corpus files.

Both stores keep one (a JSON file in a snapshot folder, a row in the database) and refuse to
open an index built with another model, backend or chunker, naming the fix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qa.config import ENV_VARS, FLAGS, assignment
from qa.errors import EncoderRevisedError, IndexCorruptError, IndexMismatchError, SplitterRevisedError
from qa.versions import SPLITTER, __version__

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding.models import Embedder

FORMAT = 1
MANIFEST = "manifest.json"


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
        except FileNotFoundError:
            raise IndexCorruptError(f"{path} is missing; run `qa index --rebuild`") from None
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"{path} is unreadable ({exc}); run `qa index --rebuild`") from None
        return cls.checked(data, str(path))

    @classmethod
    def checked(cls, data: object, where: str) -> Manifest:
        """A manifest from stored data, refused (IndexCorruptError) when keys are missing."""
        try:
            for key in ("format", "model", "chunker", "corpus"):
                data[key]  # type: ignore[index]
        except (KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{where} is unreadable ({exc!r}); run `qa index --rebuild`") from None
        return cls(data)  # type: ignore[arg-type]

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(self.data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @property
    def chunk_context(self) -> str:
        """What chunk representations carry besides their text; indexes from before the setting carried nothing."""
        return str(self.chunker.get("context", "none"))

    @property
    def context_tokens(self) -> int | None:
        """The longest context prefix (in tokens) the index allowed; None without context.

        Indexes with context from before the setting allowed 64 tokens.
        """
        if self.chunk_context == "none":
            return None
        return int(self.chunker.get("context_tokens", 64))

    @property
    def paragraph_size(self) -> int:
        """Paragraphs up to this many tokens stay whole; indexes from before the setting cut at the chunk size."""
        return int(self.chunker.get("paragraph_size") or self.chunker.get("chunk_size") or 0)

    def check_settings(self, model_key: str, settings) -> None:
        """check_compatible against a qa.config.Settings."""
        self.check_compatible(
            model_key,
            settings.model,
            settings.chunk_size,
            settings.chunk_overlap,
            settings.chunk_context,
            settings.sentence_vectors,
            paragraph_size=settings.paragraph_size,
            context_tokens=settings.context_tokens,
        )

    def check_compatible(
        self,
        model_key: str,
        model_name: str,
        chunk_size: int,
        chunk_overlap: int,
        chunk_context: str = "none",
        sentence_vectors: str = "late",
        paragraph_size: int | None = None,
        context_tokens: int | None = None,
    ) -> None:
        """Refuse an index built with another format, model, chunker or representation settings."""
        if self.data["format"] != FORMAT:
            raise IndexMismatchError(
                f"the index was written by another version of qa (format {self.data['format']}, "
                f"this is {FORMAT}); run `qa index --rebuild`"
            )
        # Same model and backend, another key: an earlier qa's encoder. Raised once the settings
        # the user chose are found to match, as `qa index` may then rebuild on its own.
        revised = (
            self.model.get("cache_key") != model_key
            and str(self.model.get("cache_key")).split("|")[0] == (model_key.split("|")[0])
        )
        if self.model.get("cache_key") != model_key and not revised:
            built = str(self.model.get("cache_key", "?")).split(":", 1)[0]
            wanted = model_key.split(":", 1)[0]
            if self.model.get("name") == model_name and built != wanted:
                raise IndexMismatchError(
                    f"the index was built with the {built} backend, not {wanted}; "
                    f"run `qa index --rebuild`, or set {assignment('backend', built)}"
                )
            raise IndexMismatchError(
                f"the index was built with the model '{self.model.get('name')}', not '{model_name}'; "
                f"run `qa index --rebuild` to rebuild it with '{model_name}', "
                f"or use {FLAGS['model']} '{self.model.get('name')}' ({ENV_VARS['model']})"
            )
        size, overlap = self.chunker.get("chunk_size"), self.chunker.get("chunk_overlap")
        if (size, overlap) != (chunk_size, chunk_overlap):
            raise IndexMismatchError(
                f"the index was built with chunks of {size} tokens overlapping {overlap}, not "
                f"{chunk_size}/{chunk_overlap}; run `qa index --rebuild`, or set "
                f"{assignment('chunk_size', size)} {assignment('chunk_overlap', overlap)}"
            )
        paragraph_size = max(chunk_size, paragraph_size or 0)
        if self.paragraph_size != paragraph_size:
            raise IndexMismatchError(
                f"the index was built keeping paragraphs of up to {self.paragraph_size} tokens whole, not "
                f"{paragraph_size}; run `qa index --rebuild`, "
                f"or set {assignment('paragraph_size', self.paragraph_size)}"
            )
        if self.chunk_context != chunk_context:
            raise IndexMismatchError(
                f"the index was built with chunk context '{self.chunk_context}', not '{chunk_context}' "
                f"(what is embedded and indexed besides each chunk's text); run `qa index --rebuild`, "
                f"or set {assignment('chunk_context', self.chunk_context)} ({FLAGS['chunk_context']})"
            )
        if chunk_context != "none" and context_tokens is not None and self.context_tokens != context_tokens:
            raise IndexMismatchError(
                f"the index was built with at most {self.context_tokens} tokens of context per chunk, not "
                f"{context_tokens}; run `qa index --rebuild`, "
                f"or set {assignment('context_tokens', self.context_tokens)}"
            )
        built = self.data.get("sentences", {}).get("vectors")
        if built is None:
            raise IndexMismatchError(
                "the index holds no sentence evidence (it was built by an earlier version of qa); "
                "run `qa index --rebuild` (cached chunk embeddings are reused)"
            )
        if built != sentence_vectors:
            raise IndexMismatchError(
                f"the index holds sentence vectors made '{built}', not '{sentence_vectors}'; "
                f"run `qa index --rebuild`, or set {assignment('sentence_vectors', built)}"
            )
        split = self.data.get("sentences", {}).get("splitter")
        if split != SPLITTER:
            raise SplitterRevisedError(
                f"the index's sentences were split by an earlier version of qa ({split}, this is {SPLITTER}); "
                f"run `qa index` to split and embed them again"
            )
        if revised:
            raise EncoderRevisedError(
                f"the index's vectors were made by an earlier version of qa's {model_key.split(':')[0]} encoder "
                f"(made in batches, where each text is now embedded alone); run `qa index` to embed them again"
            )


class ChunkSizes(Protocol):
    """What the manifest records of the chunker (qa.ingest.chunking.Chunker)."""

    chunk_size: int
    chunk_overlap: int
    paragraph_size: int


def base_manifest(settings: Settings, embedder: Embedder, chunker: ChunkSizes | None = None) -> dict:
    """The manifest's common part: format, versions, model, chunker (each store adds its own parts).

    `chunker` is the one that cut the chunks; without one, the sizes the settings give it."""
    chunk_size, chunk_overlap = settings.chunk_size, settings.chunk_overlap
    paragraph_size = max(settings.paragraph_size, chunk_size)  # as the chunker keeps it
    if chunker is not None:
        chunk_size, chunk_overlap, paragraph_size = chunker.chunk_size, chunker.chunk_overlap, chunker.paragraph_size
    return {
        "format": FORMAT,
        "created": now_iso(),
        "versions": {**version_info(), "langchain_text_splitters": _dist_version("langchain-text-splitters")},
        "model": {
            "name": settings.model,
            "cache_key": embedder.cache_key,
            "dim": embedder.dim,
            "max_tokens": embedder.max_tokens,
            "normalized": True,
        },
        "chunker": {
            "unit": "model tokens",
            "chunk_size": chunk_size,
            "chunk_overlap": chunk_overlap,
            "paragraph_size": paragraph_size,
            "context": settings.chunk_context,
            "context_tokens": settings.context_tokens,
            "splitter": "langchain_text_splitters.RecursiveCharacterTextSplitter",
        },
        "sentences": {"vectors": settings.sentence_vectors, "splitter": SPLITTER},
        "corpus": {"dir": str(Path(settings.corpus_dir).resolve())},
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def version_info() -> dict:
    return {"qa": __version__, "python": sys.version.split()[0]}


def corpus_fingerprint(hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for source, file_hash in sorted(hashes.items()):
        digest.update(f"{source}\0{file_hash}\n".encode())
    return digest.hexdigest()
