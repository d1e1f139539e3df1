"""Reading corpus files (.md, .txt, .html, .pdf; office files and e-books in qa.ingest.office) into Documents.

A file that cannot be read raises ReadError with a reason; the indexer reports it by
name and goes on with the rest. A sidecar `NAME.EXT.yaml` (or `.yml`) beside a file sets
its title, author, publisher, date or url, over anything the file says (see qa.ingest.metadata
for the order and for which of a file's own metadata is passed over).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qa.ingest import metadata
from qa.ingest.ocr import NeedsOCR, page_images
from qa.ingest.office import OFFICE_SUFFIXES, read_office
from qa.ingest.parsing import ParseLimits, ReadError, decode_text
from qa.types import Document, Heading

MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = MARKDOWN_SUFFIXES | {".txt"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | OFFICE_SUFFIXES
SIDECAR_SUFFIXES = (".yaml", ".yml")
SIDECAR_MAX_BYTES = 1_000_000
# What a sidecar may set; url and source are the same field, like author and authors.
SIDECAR_KEYS = ("title", "author", "authors", "publisher", "date", "url", "source")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
# pypdf logs what it repairs ("EOF marker not found") to stderr when nothing else handles its
# logs; a file it cannot read is reported with the reason anyway.
logging.getLogger("pypdf").addHandler(logging.NullHandler())

# CommonMark headings: ATX (`## Title ##`, up to three spaces of indent) and setext (a line
# underlined with === or ---); fenced code blocks hold no headings.
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```+|~~~+)")


# pypdf's per-stream output limits, each set to ParseLimits.stream_bytes.
_PDF_STREAM_LIMITS = (
    "maximum_declared_stream_length",
    "array_based_stream_maximum_output_length",
    "jbig2_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "zlib_maximum_output_length",
    "brotli_maximum_output_length",
)


@dataclass(frozen=True)
class CorpusFile:
    source: str  # corpus-relative POSIX path
    path: Path | None
    size: int
    mtime_ns: int
    data: bytes | None = None  # content held in memory (a benchmark corpus), instead of a path
    sidecar: Path | None = None  # NAME.EXT.yaml beside the file: metadata over the file's own


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
        names = sorted(n for n in filenames if not n.startswith("."))
        sidecars: dict[str, Path] = {}
        for name in names:
            target = sidecar_target(name)
            if target is None:
                continue
            path = Path(dirpath) / name
            source = path.relative_to(root).as_posix()
            if target not in names:
                skipped.append((source, f"metadata sidecar for {target}, which is not in this folder"))
            elif isinstance(problem := _checked(path, root), str):
                skipped.append((source, problem))
            elif target in sidecars:
                skipped.append((source, f"a second metadata sidecar for {target}; keep one"))
            else:
                sidecars[target] = path
        for name in names:
            if sidecar_target(name) is not None:
                continue
            path = Path(dirpath) / name
            source = path.relative_to(root).as_posix()
            suffix = path.suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                skipped.append((source, unsupported_reason(suffix or name)))
                continue
            stat = _checked(path, root)
            if isinstance(stat, str):
                skipped.append((source, stat))
                continue
            files.append(CorpusFile(source, path, stat.st_size, stat.st_mtime_ns, sidecar=sidecars.get(name)))
    return CorpusScan(tuple(files), tuple(skipped))


# Office's binary formats from before 2007, which a user can save in the format read here.
_LEGACY_OFFICE = {".doc": ".docx", ".xls": ".xlsx", ".ppt": ".pptx"}


def unsupported_reason(suffix: str) -> str:
    if suffix in _LEGACY_OFFICE:
        return f"unsupported file type '{suffix}' (an old binary Office format): save it as {_LEGACY_OFFICE[suffix]}"
    return f"unsupported file type '{suffix}' (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})"


def sidecar_target(name: str) -> str | None:
    """'report.pdf' for a sidecar name like 'report.pdf.yaml'; None for other names."""
    lower = name.lower()
    for suffix in SIDECAR_SUFFIXES:
        if lower.endswith(suffix):
            target = name[: -len(suffix)]
            if PurePosixPath(target).suffix.lower() in SUPPORTED_SUFFIXES:
                return target
    return None


def _checked(path: Path, root: Path) -> os.stat_result | str:
    """The file's stat, or why it must not be read (a symlink out of the corpus, not a file)."""
    try:
        if path.is_symlink():
            target = path.resolve(strict=True)
            if not target.is_relative_to(root):
                return "symlink points outside the corpus folder"
        stat = path.stat()
    except (OSError, RuntimeError) as exc:
        return f"cannot read: {_os_reason(exc)}"
    if not path.is_file():
        return "not a regular file"
    return stat


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


def read_sidecar(file: CorpusFile) -> bytes | None:
    """The bytes of the file's metadata sidecar, or None if it has none."""
    if file.sidecar is None:
        return None
    name = file.sidecar.name
    try:
        with open(file.sidecar, "rb") as fh:
            data = fh.read(SIDECAR_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ReadError(f"its metadata sidecar {name} disappeared while indexing") from None
    except OSError as exc:
        raise ReadError(f"cannot read its metadata sidecar {name}: {_os_reason(exc)}") from None
    if len(data) > SIDECAR_MAX_BYTES:
        raise ReadError(f"its metadata sidecar {name} is over {SIDECAR_MAX_BYTES // 1_000_000} MB")
    return data


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_hash(digest: str, sidecar: bytes | None) -> str:
    """What the index compares to tell a changed document: the file's hash, or one of file and sidecar.

    A file without a sidecar keeps its plain content hash, so adding sidecars changes nothing else.
    """
    if sidecar is None:
        return digest
    return hashlib.sha256(digest.encode() + b"\0sidecar\0" + sidecar).hexdigest()


def file_version(file: CorpusFile, max_bytes: int) -> str:
    """version_hash of a corpus file as it is now (ReadError if it cannot be read)."""
    return version_hash(content_hash(read_bytes(file, max_bytes)), read_sidecar(file))


def parse_document(
    source: str,
    data: bytes,
    doc_id: str | None = None,
    sidecar: bytes | None = None,
    sidecar_name: str = "",
    limits: ParseLimits = ParseLimits(),
) -> Document:
    """Turn a file's bytes into a Document, choosing the reader by suffix.

    `sidecar` is the content of its NAME.EXT.yaml: the fields it sets replace the file's own.
    Untrusted files go through `qa.ingest.isolation.IsolatedParser`, which runs this in a
    worker process that also enforces the memory and time of `limits`.
    """
    suffix = PurePosixPath(source).suffix.lower()
    digest = version_hash(content_hash(data), sidecar)
    doc_id = doc_id or doc_id_for(source)
    name = sidecar_name or f"{PurePosixPath(source).name}.yaml"
    overrides = _sidecar_fields(sidecar, name) if sidecar is not None else {}
    if not data.strip():
        raise ReadError("file is empty")
    if suffix in TEXT_SUFFIXES:
        fields = _read_text(data, source)
        if suffix in MARKDOWN_SUFFIXES:
            fields["headings"] = markdown_headings(fields["text"])
    elif suffix in HTML_SUFFIXES:
        fields = _read_html(data)
    elif suffix in PDF_SUFFIXES:
        fields = _read_pdf(data, limits)
    elif suffix in OFFICE_SUFFIXES:
        fields = read_office(suffix, data, limits)
    else:
        raise ReadError(f"unsupported file type '{suffix}'")
    if not fields["text"].strip():
        raise ReadError("no text found in the file")
    fields.update(overrides)
    if any("\x00" in value for value in fields.values() if isinstance(value, str)):
        # Past the first 8 KB checked for binary content, or out of a PDF: no store keeps NUL in text.
        raise ReadError("binary content (NUL characters) in the text")
    if not fields.get("title"):
        fields["title"] = _title_from_name(source)
    return Document(doc_id=doc_id, source=source, content_hash=digest, **fields)


def _sidecar_fields(data: bytes, name: str) -> dict:
    """The fields a sidecar sets (a key given empty clears the file's own value)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReadError(f"its metadata sidecar {name} is not UTF-8 text") from None
    meta = _parse_front_matter(text, f"its metadata sidecar {name}")
    unknown = sorted(str(k) for k in meta if k not in SIDECAR_KEYS)
    if unknown:
        raise ReadError(
            f"its metadata sidecar {name} has unknown keys ({', '.join(unknown)}); "
            f"it may set {', '.join(k for k in SIDECAR_KEYS if k not in ('authors', 'source'))}"
        )
    fields: dict = {}
    if "title" in meta:
        fields["title"] = _str(meta["title"])
    if "author" in meta or "authors" in meta:
        fields["author"] = _author(meta.get("author", meta.get("authors")))
    if "publisher" in meta:
        fields["publisher"] = _str(meta["publisher"])
    if "url" in meta or "source" in meta:
        fields["url"] = _str(meta.get("url", meta.get("source")))
    if "date" in meta:
        raw = meta["date"]
        fields["date"] = metadata.normalise_date(raw)
        if raw not in (None, "") and not fields["date"]:
            raise ReadError(
                f"its metadata sidecar {name} has date {str(raw)!r}; write it as YYYY, YYYY-MM or YYYY-MM-DD"
            )
    return fields


def _read_text(data: bytes, source: str) -> dict:
    text = decode_text(data)
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
        "date": metadata.normalise_date(meta.get("date")),
        "url": _str(meta.get("source") or meta.get("url")),
    }


def markdown_headings(text: str) -> tuple[Heading, ...]:
    """The ATX and setext headings of Markdown text, each spanning its title (no # or underline)."""
    headings: list[Heading] = []
    fence = ""
    offset = 0
    previous: tuple[int, str] | None = None  # (offset, line) of a paragraph line a setext rule may underline
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        start, offset = offset, offset + len(line)
        opened = _FENCE.match(body)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
            continue
        if opened:
            fence, previous = opened.group(1), None
            continue
        atx = _ATX.match(body)
        if atx:
            title = atx.group(2).strip()
            if title:
                at = start + body.index(title, atx.start(2))
                headings.append(Heading(at, at + len(title), len(atx.group(1))))
            previous = None
            continue
        underline = _SETEXT.match(body)
        if underline and previous is not None:
            at, above = previous
            title = above.strip()
            first = at + above.index(title)
            headings.append(Heading(first, first + len(title), 1 if underline.group(1)[0] == "=" else 2))
            previous = None
            continue
        previous = (start, body) if body.strip() and not body.startswith(("    ", "\t")) else None
    return tuple(headings)


def _parse_front_matter(block: str, what: str = "YAML front matter") -> dict:
    import yaml

    try:
        # libyaml's C loader when PyYAML has it: ~10x faster than the pure-Python one.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        meta = yaml.load(block, Loader=loader) if block.strip() else {}
    except yaml.YAMLError as exc:
        raise ReadError(f"invalid YAML in {what}: {str(exc).splitlines()[0]}") from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ReadError(f"{what} must be a mapping of keys to values (title: …, author: …)")
    return meta


# How trafilatura extracts an article, the same for its text and for the headings found in it.
_EXTRACTION = {"include_comments": False, "include_tables": True, "favor_precision": True, "deduplicate": False}


def _read_html(data: bytes) -> dict:
    html = data.decode("utf-8", errors="replace")
    try:
        import trafilatura

        text = trafilatura.extract(html, output_format="txt", **_EXTRACTION)
        meta = trafilatura.extract_metadata(html)
    except ImportError as exc:
        # E.g. lxml_html_clean missing: the environment, not the file, is at fault.
        raise ReadError(
            f"the HTML reader is missing a package ({exc}); install it (`pip install .` in qa's folder "
            f"installs everything), then `qa index` reads the file"
        ) from None
    if not text or not text.strip():
        raise ReadError("no article text found in the HTML")
    title = _str(getattr(meta, "title", ""))
    author = _str(getattr(meta, "author", ""))
    return {
        "text": text,
        "headings": _html_headings(html, text),
        "title": "" if metadata.is_placeholder_title(title) else title,
        "author": "" if metadata.is_placeholder_author(author) else author,
        "publisher": _str(getattr(meta, "sitename", "")),
        "date": metadata.normalise_date(getattr(meta, "date", "")),
        "url": _str(getattr(meta, "url", "")),
    }


def _html_headings(html: str, text: str) -> tuple[Heading, ...]:
    """The headings trafilatura kept (`<head rend="h2">` in its XML output), found as lines of `text`."""
    import trafilatura
    from lxml import etree

    xml = trafilatura.extract(html, output_format="xml", **_EXTRACTION)
    if not xml:
        return ()
    try:
        root = etree.fromstring(xml.encode("utf-8"))
    except etree.XMLSyntaxError:
        return ()
    headings: list[Heading] = []
    cursor = 0
    for head in root.iter("head"):
        title = " ".join("".join(head.itertext()).split())
        rend = head.get("rend", "")
        level = int(rend[1]) if len(rend) == 2 and rend[0] == "h" and rend[1] in "123456" else 2
        # The text output puts each heading on a line of its own, in document order.
        for match in re.finditer(r"^[ \t]*(.+?)[ \t]*$", text[cursor:], re.M):
            if " ".join(match.group(1).split()) == title:
                start = cursor + match.start(1)
                headings.append(Heading(start, start + len(match.group(1)), level))
                cursor = cursor + match.end()
                break
    return tuple(headings)


def _read_pdf(data: bytes, limits: ParseLimits) -> dict:
    import pypdf
    from pypdf.errors import LimitReachedError, PdfReadError

    try:
        with pypdf.apply_configuration(**dict.fromkeys(_PDF_STREAM_LIMITS, limits.stream_bytes)):
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                try:
                    unlocked = reader.decrypt("")
                except Exception:
                    unlocked = 0
                if not unlocked:
                    raise ReadError("PDF is encrypted with a password; save an unencrypted copy")
            if len(reader.pages) > limits.pages:
                raise ReadError(
                    f"PDF has {len(reader.pages)} pages; the limit is {limits.pages} (set QA_MAX_PAGES to change it)"
                )
            pages = [(page.extract_text() or "").strip() for page in reader.pages]
            if limits.ocr and not all(pages):
                _ocr_pages(reader, pages, limits)
            info = reader.metadata or {}
            first = next((i for i, text in enumerate(pages) if text), None)
            runs = _text_runs(reader.pages[first]) if first is not None else []
    except (ReadError, NeedsOCR):
        raise
    except LimitReachedError as exc:
        raise ReadError(
            f"PDF exceeds a safety limit ({str(exc)[:120]}): a decompression bomb or a damaged file"
        ) from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise ReadError(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:120]})") from None
    except MemoryError:
        raise
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
        if limits.ocr:
            raise ReadError("PDF has no extractable text, and OCR found none in its images")
        raise ReadError("PDF has no extractable text (a scan: OCR reads it with `pip install 'qa[ocr]'` and QA_OCR=on)")
    title = _info(info, "/Title")
    if metadata.is_placeholder_title(title):
        title = metadata.heading(runs) or metadata.first_line(pages[first])
    author = _info(info, "/Author")
    printed = metadata.printed_by_browser(_info(info, "/Producer"), _info(info, "/Creator"))
    return {
        "text": text,
        "title": title,
        "author": "" if metadata.is_placeholder_author(author) else author,
        "publisher": "",
        # A browser stamps the day it printed the page: no date is better than that one.
        "date": "" if printed else metadata.pdf_date(_info(info, "/CreationDate")),
        "url": "",
        "page_starts": tuple(starts),
    }


def _ocr_pages(reader, pages: list[str], limits: ParseLimits) -> None:
    """Fill in the pages without text from the OCR texts given, or ask for them (NeedsOCR)."""
    given = dict(limits.ocr_texts)
    scans = []
    for i, text in enumerate(pages):
        if text:
            continue
        if i in given:
            pages[i] = given[i].strip()
        elif (scan := page_images(reader.pages[i], i)) is not None:
            scans.append(scan)
    if scans:
        raise NeedsOCR(tuple(scans))


def _info(info, key: str) -> str:
    value = info.get(key)
    if hasattr(value, "get_object"):  # an indirect reference to the string
        value = value.get_object()
    return metadata.clean(value)


def _text_runs(page) -> list[tuple[str, float]]:
    """(text, font size in points) of each piece of text on a PDF page, in reading order."""
    runs: list[tuple[str, float]] = []

    def visit(text, cm, tm, font, size) -> None:
        if text and text.strip() and size:
            # The size set by Tf is scaled by the text and the graphics matrices.
            scale = abs(tm[0] * tm[3] - tm[1] * tm[2]) ** 0.5 * abs(cm[0] * cm[3] - cm[1] * cm[2]) ** 0.5
            runs.append((text, float(size) * (scale or 1.0)))

    try:
        page.extract_text(visitor_text=visit)
    except Exception:  # a heading is a nicety: the text itself was read already
        return []
    return runs


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
