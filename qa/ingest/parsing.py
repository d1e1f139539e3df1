"""What reading one untrusted corpus file may cost (ParseLimits), how it fails (ReadError), and
text files' bytes as text: shared by the readers (qa.ingest.readers, qa.ingest.office)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ReadError(Exception):
    """A corpus file that cannot be read; str(error) is the reason."""


@dataclass(frozen=True)
class ParseLimits:
    """What reading one untrusted file may cost (settings QA_MAX_PAGES, QA_PARSE_MEMORY_MB and
    QA_PARSE_SECONDS; memory and time are enforced by qa.ingest.isolation's worker)."""

    pages: int = 2000
    memory_mb: int = 512
    seconds: float = 60.0
    # Decompressed bytes of any one PDF stream: a page's text is never near this, a bomb is.
    stream_bytes: int = 16_000_000
    # Spreadsheet cells (XLSX, CSV) and, for zip-based files, the entries and their total
    # uncompressed size, checked before anything is inflated.
    cells: int = 1_000_000
    zip_bytes: int = 256_000_000
    zip_entries: int = 10_000
    # OCR of PDF pages without text (qa.ingest.ocr): on or off, the OCR worker's memory and
    # time per page, where its results are cached, and the texts already read for this file
    # ((page index, text) pairs, filled in by IsolatedParser between the two reads of a scan).
    ocr: bool = False
    ocr_memory_mb: int = 2048
    ocr_seconds: float = 120.0
    ocr_cache: str = ""
    ocr_texts: tuple[tuple[int, str], ...] = ()

    @classmethod
    def from_settings(cls, settings) -> ParseLimits:
        from qa.ingest import ocr

        return cls(
            settings.max_pages,
            settings.parse_memory_mb,
            settings.parse_seconds,
            cells=settings.max_cells,
            zip_bytes=int(settings.max_zip_mb * 1_000_000),
            ocr=settings.ocr == "on" and ocr.available(),
            ocr_memory_mb=settings.ocr_memory_mb,
            ocr_seconds=settings.ocr_seconds,
            ocr_cache=str(Path(settings.index_dir) / "ocr-cache"),
        )


def decode_text(data: bytes) -> str:
    """A text file's bytes as text (UTF-8, newlines made \\n); ReadError for what is not text."""
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
