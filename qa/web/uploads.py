"""Adding uploaded files to the corpus folder: safe names, size limit, nothing overwritten silently.

Every upload ends in exactly one status, reported per file:
  added      written to the corpus under its (sanitised) name
  replaced   a different file of that name was there and replacing was asked for
  unchanged  a file with the same name and the same bytes is already there
  rejected   not written; the detail says why (type, size, unreadable, name taken, duplicate…)
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from qa.ingest.isolation import IsolatedParser
from qa.ingest.parsing import ParseLimits, ReadError
from qa.ingest.readers import SUPPORTED_SUFFIXES, content_hash

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 200  # file systems allow 255 bytes: 120 CJK characters would not fit
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CLOCK$"} | {f"{p}{i}" for p in ("COM", "LPT") for i in [*range(10), *"¹²³"]}
_UNSAFE = re.compile(r"[^\w\s.\-()+,]", re.UNICODE)
TEMP_PREFIX = ".upload-"


class UploadError(ValueError):
    """An upload that cannot be accepted; str(error) is the reason."""


@dataclass(frozen=True)
class UploadResult:
    name: str  # the name as uploaded
    saved_as: str  # corpus-relative name written (or that would have been), "" if none
    status: str  # added | replaced | unchanged | rejected
    detail: str = ""

    def row(self) -> tuple[str, str, str]:
        shown = self.name if not self.saved_as or self.saved_as == self.name else f"{self.name} → {self.saved_as}"
        return (shown, self.status, self.detail)


def sanitize_filename(name: str) -> str:
    """A safe plain file name for the corpus folder, or UploadError.

    Keeps only the last path component (either slash), drops control characters, replaces
    characters outside letters, digits and ` ._-()+,` with "_", removes leading dots
    (no hidden files), renames Windows device names, shortens long names, lower-cases the
    suffix and requires a supported one.
    """
    if not isinstance(name, str):
        raise UploadError("the file has no name")
    name = unicodedata.normalize("NFC", name.replace("\x00", ""))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        raise UploadError(f"no file type suffix; upload {_supported()}")
    suffix = "." + suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UploadError(f"unsupported file type '{suffix}'; upload {_supported()}")
    stem = re.sub(r"[ _]*_[ _]*", "_", stem).strip(" ._").lstrip("-.") or "upload"
    first, dot, rest = stem.partition(".")
    if first.upper() in _RESERVED:  # Windows reserves CON.md and CON.tar.md alike
        stem = f"{first}_{dot}{rest}"
    stem = stem[: MAX_NAME_CHARS - len(suffix)]
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem.rstrip(" .") + suffix


def store_uploads(
    corpus_dir: Path,
    files: Iterable[tuple[str, Path]],
    *,
    max_bytes: int,
    replace: bool = False,
    known_hashes: Mapping[str, str] | None = None,
    limits: ParseLimits = ParseLimits(),
) -> list[UploadResult]:
    """Copy uploaded files (name as uploaded, path of the received bytes) into the corpus.

    `known_hashes` maps corpus-relative sources to content hashes (the index manifest's),
    so a file already indexed under another name is refused as a duplicate.
    """
    root = Path(corpus_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    by_hash = {digest: source for source, digest in (known_hashes or {}).items()}
    taken: set[str] = set()
    results = []
    with IsolatedParser(limits) as parser:  # each file read as the indexer will, within the same limits
        for name, path in files:
            try:
                result = _store_one(parser, root, name, Path(path), max_bytes, replace, by_hash, taken)
            except UploadError as exc:
                result = UploadResult(name, "", "rejected", str(exc))
            except OSError as exc:  # one odd file must not cost the others their upload
                result = UploadResult(name, "", "rejected", f"could not be saved ({exc.strerror or exc})")
            results.append(result)
    return results


def _store_one(
    parser: IsolatedParser,
    root: Path,
    name: str,
    path: Path,
    max_bytes: int,
    replace: bool,
    by_hash: dict[str, str],
    taken: set[str],
) -> UploadResult:
    safe = sanitize_filename(name)
    if safe.lower() in taken:
        return UploadResult(name, safe, "rejected", "another file in this upload has the same name")
    taken.add(safe.lower())
    target = root / safe
    if target.parent != root or not target.resolve().is_relative_to(root):
        raise UploadError("the name points outside the corpus folder (a symbolic link is in the way)")
    data = _read_limited(path, max_bytes)
    if not data.strip():
        raise UploadError("the file is empty")
    digest = content_hash(data)
    try:
        parser.parse(safe, data)
    except ReadError as exc:
        raise UploadError(f"cannot be read: {exc}") from None
    except Exception as exc:  # a reader bug must not take the upload handler down
        raise UploadError(f"cannot be read ({type(exc).__name__})") from None

    existing = _existing(target)
    if existing is not None:
        if content_hash(existing) == digest:
            return UploadResult(name, safe, "unchanged", "the same file is already in the corpus")
        if not replace:
            return UploadResult(
                name,
                safe,
                "rejected",
                "a different file with this name is already in the corpus; tick “Replace files "
                "with the same name” to overwrite it",
            )
    duplicate = by_hash.get(digest)
    if duplicate and duplicate != safe:
        return UploadResult(name, safe, "rejected", f"the same content is already in the corpus as {duplicate}")
    _write_atomically(root, target, data, overwrite=existing is not None)
    by_hash[digest] = safe
    if existing is not None:
        return UploadResult(name, safe, "replaced", "the previous version stays indexed until the index is updated")
    return UploadResult(name, safe, "added", "")


def _read_limited(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UploadError(f"too large ({size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:g} MB)")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise UploadError(f"the upload could not be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise UploadError(f"too large (over {max_bytes / 1e6:g} MB)")
    return data


def _existing(target: Path) -> bytes | None:
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise UploadError("the name is taken by something that is not a regular file")
    try:
        return target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UploadError(f"the existing file cannot be read ({exc.strerror or exc})") from None


def _write_atomically(root: Path, target: Path, data: bytes, overwrite: bool) -> None:
    """Write beside the target under a hidden name (the indexer skips it), then rename."""
    temp = root / f"{TEMP_PREFIX}{uuid.uuid4().hex}.tmp"
    try:
        with open(temp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(temp, target)
        else:
            try:
                os.link(temp, target)  # fails instead of overwriting a file that appeared meanwhile
            except FileExistsError:
                raise UploadError("a file with this name appeared meanwhile; upload it again") from None
            except OSError:  # a file system without hard links
                if target.exists():
                    raise UploadError("a file with this name appeared meanwhile; upload it again") from None
                os.replace(temp, target)
    except OSError as exc:
        raise UploadError(f"could not be saved ({exc.strerror or exc})") from None
    finally:
        temp.unlink(missing_ok=True)


def _supported() -> str:
    return ", ".join(sorted(s for s in SUPPORTED_SUFFIXES)) + " files"
