"""Reading corpus files (.md, .txt, .html, .pdf) into Documents.

A file that cannot be read raises ReadError with a reason; the indexer reports it by
name and goes on with the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qa.types import Document

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class ReadError(Exception):
    """A corpus file that cannot be read; str(error) is the reason."""


@dataclass(frozen=True)
class CorpusFile:
    source: str  # corpus-relative POSIX path
    path: Path | None
    size: int
    mtime_ns: int
    data: bytes | None = None  # content held in memory (a benchmark corpus), instead of a path


@dataclass(frozen=True)
class CorpusScan:
    files: tuple[CorpusFile, ...]
    skipped: tuple[tuple[str, str], ...]  # (source, reason)


def scan_corpus(root: Path) -> CorpusScan:
    """List readable-looking files under root, sorted; report the ones passed over and why."""
    files: list[CorpusFile] = []
    skipped: list[tuple[str, str]] = []
    root = root.resolve()
    # os.walk does not follow symlinked folders, so a symlink loop cannot trap it.
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            source = path.relative_to(root).as_posix()
            suffix = path.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                skipped.append(
                    (
                        source,
                        f"unsupported file type '{suffix or name}' "
                        f"(supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})",
                    )
                )
                continue
            try:
                if path.is_symlink():
                    target = path.resolve(strict=True)
                    if not target.is_relative_to(root):
                        skipped.append((source, "symlink points outside the corpus folder"))
                        continue
                stat = path.stat()
            except (OSError, RuntimeError) as exc:
                skipped.append((source, f"cannot read: {_os_reason(exc)}"))
                continue
            if not path.is_file():
                skipped.append((source, "not a regular file"))
                continue
            files.append(CorpusFile(source, path, stat.st_size, stat.st_mtime_ns))
    return CorpusScan(tuple(files), tuple(skipped))


def doc_id_for(source: str) -> str:
    """Deterministic document id: the corpus-relative path without its suffix."""
    return str(PurePosixPath(source).with_suffix(""))


def read_bytes(file: CorpusFile, max_bytes: int) -> bytes:
    if file.data is not None:
        return file.data
    if file.size > max_bytes:
        raise ReadError(
            f"file is too large ({file.size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB, "
            f"set QA_MAX_FILE_MB to change it)"
        )
    try:
        # Never more than the limit in memory, even if the file grew since the scan.
        with open(file.path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ReadError("file disappeared while indexing") from None
    except OSError as exc:
        raise ReadError(f"cannot read: {_os_reason(exc)}") from None
    if len(data) > max_bytes:
        raise ReadError(f"file is too large (over {max_bytes / 1e6:.0f} MB)")
    return data


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_document(source: str, data: bytes, doc_id: str | None = None) -> Document:
    """Turn a file's bytes into a Document, choosing the reader by suffix."""
    suffix = PurePosixPath(source).suffix.lower()
    digest = content_hash(data)
    doc_id = doc_id or doc_id_for(source)
    if not data.strip():
        raise ReadError("file is empty")
    if suffix in TEXT_SUFFIXES:
        fields = _read_text(data, source)
    elif suffix in HTML_SUFFIXES:
        fields = _read_html(data)
    elif suffix in PDF_SUFFIXES:
        fields = _read_pdf(data)
    else:
        raise ReadError(f"unsupported file type '{suffix}'")
    if not fields["text"].strip():
        raise ReadError("no text found in the file")
    if any("\x00" in value for value in fields.values() if isinstance(value, str)):
        # Past the first 8 KB checked for binary content, or out of a PDF: no store keeps NUL in text.
        raise ReadError("binary content (NUL characters) in the text")
    if not fields.get("title"):
        fields["title"] = _title_from_name(source)
    return Document(doc_id=doc_id, source=source, content_hash=digest, **fields)


def _read_text(data: bytes, source: str) -> dict:
    text = _decode(data)
    meta: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        meta = _parse_front_matter(match.group(1) or "")
        text = text[match.end() :].lstrip("\n")
    title = _str(meta.get("title"))
    if not title:
        heading = _HEADING.search(text)
        title = heading.group(1).strip() if heading else ""
    return {
        "text": text,
        "title": title,
        "author": _author(meta.get("author") or meta.get("authors")),
        "publisher": _str(meta.get("publisher")),
        "date": normalise_date(meta.get("date")),
        "url": _str(meta.get("source") or meta.get("url")),
    }


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ReadError("binary content (NUL bytes) in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not valid UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8") from None
    # Other control characters mean the file is not really text.
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 8:
        raise ReadError("binary content (control characters) in a text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_front_matter(block: str) -> dict:
    import yaml

    try:
        # libyaml's C loader when PyYAML has it: ~10x faster than the pure-Python one.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        meta = yaml.load(block, Loader=loader) if block.strip() else {}
    except yaml.YAMLError as exc:
        raise ReadError(f"invalid YAML front matter: {str(exc).splitlines()[0]}") from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ReadError("YAML front matter must be a mapping of keys to values")
    return meta


def _read_html(data: bytes) -> dict:
    import trafilatura

    html = data.decode("utf-8", errors="replace")
    text = trafilatura.extract(
        html,
        output_format="txt",
        include_comments=False,
        include_tables=True,
        favor_precision=True,
        deduplicate=False,
    )
    if not text or not text.strip():
        raise ReadError("no article text found in the HTML")
    meta = trafilatura.extract_metadata(html)
    return {
        "text": text,
        "title": _str(getattr(meta, "title", "")),
        "author": _str(getattr(meta, "author", "")),
        "publisher": _str(getattr(meta, "sitename", "")),
        "date": normalise_date(getattr(meta, "date", "")),
        "url": _str(getattr(meta, "url", "")),
    }


def _read_pdf(data: bytes) -> dict:
    import pypdf
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception:
                unlocked = 0
            if not unlocked:
                raise ReadError("PDF is encrypted with a password; save an unencrypted copy")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info = reader.metadata or {}
    except ReadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise ReadError(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:120]})") from None
    except Exception as exc:
        raise ReadError(f"corrupt or unreadable PDF ({type(exc).__name__})") from None
    starts: list[int] = []
    parts: list[str] = []
    offset = 0
    for page_text in pages:
        starts.append(offset)
        parts.append(page_text)
        offset += len(page_text) + 2  # the "\n\n" that joins pages
    text = "\n\n".join(parts)
    if not text.strip():
        raise ReadError("PDF has no extractable text (scanned images need OCR first)")
    return {
        "text": text,
        "title": _str(info.get("/Title")),
        "author": _str(info.get("/Author")),
        "publisher": "",
        "date": _pdf_date(_str(info.get("/CreationDate"))),
        "url": "",
        "page_starts": tuple(starts),
    }


def normalise_date(value: object) -> str:
    """ISO 8601 prefix (YYYY, YYYY-MM, YYYY-MM-DD) from a YAML date or string; "" if unknown."""
    if value is None or value == "":
        return ""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()[:10]
    text = str(value).strip()
    head = text[:10]
    if _ISO_DATE.match(head):
        return head
    if _ISO_DATE.match(text[:7]):
        return text[:7]
    if _ISO_DATE.match(text[:4]):
        return text[:4]
    return ""


def _pdf_date(raw: str) -> str:
    digits = raw[2:] if raw.startswith("D:") else raw
    if len(digits) >= 8 and digits[:8].isdigit():
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    return ""


def _author(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_str(v) for v in value if v)
    return _str(value)


def _str(value: object) -> str:
    return "" if value is None else str(value).strip()


def _title_from_name(source: str) -> str:
    stem = PurePosixPath(source).stem
    return re.sub(r"[_\-]+", " ", stem).strip() or stem


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, RuntimeError):
        return "symlink loop"
    return str(exc)
