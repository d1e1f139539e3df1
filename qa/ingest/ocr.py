"""Reading scanned PDF pages (pages without a text layer) with OCR: rapidocr-onnxruntime.

The package ships its detection and recognition models (ONNX), so it works offline. The work is
split across two worker processes (qa.ingest.isolation): the PDF worker takes the images out
of each page that has no text (`page_images`), and an OCR worker with a larger memory cap reads
them (`recognise`), one page at a time with a deadline each. What a page's images read as is
cached by their content hash (`OcrCache`), so re-indexing a scanned PDF reads nothing again.
`QA_OCR=off` turns it off; without the package, a page without text stays empty.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("qa.ingest.ocr")

# Images smaller than this on either side are decorations (rules, bullets), not scanned text.
MIN_SIDE = 32
# A page's images are read at most this large (pixels); a scan at 300 dpi of a large page is below it.
MAX_PIXELS = 60_000_000
MAX_IMAGES_PER_PAGE = 16
# Bumped when the OCR's settings or post-processing change, so that the cache is not reused.
OCR_VERSION = "rapidocr-onnxruntime/2"


@dataclass(frozen=True)
class Scan:
    """A page without a text layer: its index and its images (PNG bytes), with their digest."""

    page: int
    digest: str
    images: tuple[bytes, ...]


class NeedsOCR(Exception):
    """Raised by the PDF reader in its worker: these pages need OCR before the document is whole."""

    def __init__(self, scans: tuple[Scan, ...]) -> None:
        super().__init__(f"{len(scans)} page(s) need OCR")
        self.scans = scans

    def __reduce__(self):
        return (NeedsOCR, (self.scans,))


def available() -> bool:
    """Whether the OCR package is installed (`pip install 'qa[ocr]'`)."""
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def page_images(page, page_index: int) -> Scan | None:
    """The images drawn on a PDF page, as PNG bytes; None when it has none worth reading."""
    from PIL import Image

    images: list[bytes] = []
    digest = hashlib.sha256(OCR_VERSION.encode())
    try:
        found = list(page.images)
    except Exception as exc:  # an image pypdf cannot decode: the page stays without text
        log.info("cannot take the images out of page %d: %s", page_index + 1, exc)
        return None
    for item in found[:MAX_IMAGES_PER_PAGE]:
        try:
            image = item.image
            if image is None or min(image.size) < MIN_SIDE or image.size[0] * image.size[1] > MAX_PIXELS:
                continue
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            raw = image.tobytes()
        except (Image.DecompressionBombError, OSError, ValueError) as exc:
            log.info("cannot read an image of page %d: %s", page_index + 1, exc)
            continue
        digest.update(f"{image.mode}{image.size}".encode() + hashlib.sha256(raw).digest())
        out = io.BytesIO()
        image.save(out, format="PNG")
        images.append(out.getvalue())
    if not images:
        return None
    return Scan(page_index, digest.hexdigest(), tuple(images))


_ENGINE = None


def recognise(images: tuple[bytes, ...], binarise: bool = True) -> str:
    """The text of a page's images, in reading order: lines of words, a blank line between blocks."""
    global _ENGINE
    import numpy as np
    from PIL import Image

    if _ENGINE is None:
        from rapidocr_onnxruntime import RapidOCR

        # No angle classifier: on upright pages it turned some lines upside down before reading
        # them, losing the whole line (bench/ocr.py); a page scanned upside down is the price.
        _ENGINE = RapidOCR(use_cls=False)
    texts: list[str] = []
    for data in images:
        with Image.open(io.BytesIO(data)) as image:
            gray = np.asarray(image.convert("L"))
        # Black text on white: JPEG's ringing around letters otherwise fills the gaps between
        # words, and the recogniser runs them together.
        if binarise:
            gray = np.where(gray <= otsu_threshold(gray), 0, 255).astype(np.uint8)
        pixels = np.repeat(gray[:, :, None], 3, axis=2)
        result, _ = _ENGINE(pixels)
        if result:
            texts.append(lines_of(result))
    return "\n\n".join(t for t in texts if t.strip())


def otsu_threshold(gray) -> int:
    """The grey level that best separates a page's ink from its paper (Otsu's method)."""
    import numpy as np

    counts = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * levels)
    total, total_mean = weight[-1], mean[-1]
    background = total - weight
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * background)
    between[~np.isfinite(between)] = 0
    return int(np.argmax(between))


def lines_of(result) -> str:
    """Boxes of recognised text ([corners, text, score], any order) as lines read top to bottom.

    Boxes whose vertical centres lie within half a line's height of each other are one line,
    read left to right; a gap of more than a line's height between lines starts a new paragraph.
    """
    boxes = []
    for corners, text, _score in result:
        ys = [p[1] for p in corners]
        xs = [p[0] for p in corners]
        if text.strip():
            boxes.append((min(ys), max(ys), min(xs), text.strip()))
    boxes.sort(key=lambda b: ((b[0] + b[1]) / 2, b[2]))
    lines: list[list[tuple]] = []
    for box in boxes:
        centre, height = (box[0] + box[1]) / 2, box[1] - box[0]
        if lines:
            line = lines[-1]
            top = min(b[0] for b in line)
            bottom = max(b[1] for b in line)
            if abs(centre - (top + bottom) / 2) <= max(height, bottom - top) / 2:
                line.append(box)
                continue
        lines.append([box])
    out: list[str] = []
    previous_bottom = None
    for line in lines:
        top, bottom = min(b[0] for b in line), max(b[1] for b in line)
        if previous_bottom is not None and top - previous_bottom > (bottom - top):
            out.append("")
        out.append(" ".join(b[3] for b in sorted(line, key=lambda b: b[2])))
        previous_bottom = bottom
    return "\n".join(out)


class OcrCache:
    """What each page's images read as, by their digest: one small text file each."""

    def __init__(self, folder: Path | str | None) -> None:
        self.folder = Path(folder) if folder else None

    def _path(self, digest: str) -> Path | None:
        return self.folder / digest[:2] / f"{digest}.txt" if self.folder else None

    def get(self, digest: str) -> str | None:
        path = self._path(digest)
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            return None

    def put(self, digest: str, text: str) -> None:
        path = self._path(digest)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)  # readers never see half a file
        except OSError as exc:
            log.warning("cannot cache OCR text in %s: %s", self.folder, exc)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference's length (words compared as written)."""
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return float(bool(hyp))
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hyp, start=1):
            above = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
            diagonal = above
    return row[-1] / len(ref)
