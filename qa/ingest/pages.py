"""Pictures of PDF pages with a cited sentence marked on them: pypdfium2 renders, PIL marks.

A corpus PDF is untrusted: `render_page` runs in a worker process with a memory cap and a
deadline (qa.ingest.isolation.PageRenderer), and the picture's size is bounded here whatever
size the page claims to be. The sentence is found in PDFium's text of the page by its letters
and digits alone, because the index's text (read by pypdf) spaces, breaks and hyphenates lines
differently; PDFium then gives the boxes of those characters on the page.
"""

from __future__ import annotations

import ctypes
import io
import math
import unicodedata
from dataclasses import dataclass

from qa.ingest.parsing import ReadError

# The highlighter's yellow, multiplied into the page: paper turns yellow, ink stays dark.
MARK_RGB = (253, 230, 120)
# A sentence drawn across more boxes than this is marked with its first ones.
MAX_MARKS = 200
# What may close a sentence after its last letter or digit.
_CLOSING = ".!?;:\"'»”’)]…"
# Occurrences of a (short) sentence considered when choosing the one nearest where it should be.
MAX_MATCHES = 50


@dataclass(frozen=True)
class PageLimits:
    """How large a page picture may be, and what rendering one may cost (the parser's limits)."""

    width: int = 1000  # pixels across, for a page of ordinary size
    max_scale: float = 4.0  # pixels per point: a tiny page is not blown up past this
    max_side: int = 4000  # pixels, either side
    max_pixels: int = 4_000_000
    memory_mb: int = 512
    seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings) -> PageLimits:
        return cls(memory_mb=settings.parse_memory_mb, seconds=min(float(settings.parse_seconds), 30.0))


@dataclass(frozen=True)
class PageImage:
    """A rendered page as PNG, and the boxes (pixels: left, top, right, bottom) marked on it."""

    png: bytes
    page: int  # 1-based
    pages: int
    width: int
    height: int
    marks: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def marked(self) -> bool:
        return bool(self.marks)


def page_scale(width: float, height: float, limits: PageLimits = PageLimits()) -> float:
    """Pixels per point for a page of width x height points: `limits.width` across, within every cap."""
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ReadError(f"the page has no usable size ({width} x {height} points)")
    scale = min(
        limits.width / width,
        limits.max_scale,
        limits.max_side / max(width, height),
        math.sqrt(limits.max_pixels / (width * height)),
    )
    if width * scale < 1 or height * scale < 1:
        raise ReadError(f"the page is too long and thin to show ({width:g} x {height:g} points)")
    return scale


def find_text(haystack: str, needle: str, near: float = 0.0) -> tuple[int, int] | None:
    """Where `needle` is in `haystack` comparing letters and digits only (ignoring case, spacing,
    punctuation and ligatures): (start, end) in `haystack`, or None. Of several places, the one
    nearest `near` (a fraction of the text's length) is taken."""
    letters, where = _letters(haystack)
    wanted, _ = _letters(needle)
    if not wanted:
        return None
    found: list[int] = []
    at = letters.find(wanted)
    while at >= 0 and len(found) < MAX_MATCHES:
        found.append(at)
        at = letters.find(wanted, at + 1)
    if not found:
        return None
    target = near * len(letters)
    best = min(found, key=lambda i: abs(i - target))
    start, end = where[best], where[best + len(wanted) - 1] + 1
    # The sentence's closing punctuation ("." or ".»") is marked too, when the page has it there.
    closing = needle.rstrip()[len(needle.rstrip().rstrip(_CLOSING)) :]
    if closing and haystack.startswith(closing, end):
        end += len(closing)
    return start, end


def _letters(text: str) -> tuple[str, list[int]]:
    """The letters and digits of `text` (NFKC, case-folded), and each one's index in `text`."""
    out: list[str] = []
    where: list[int] = []
    for i, char in enumerate(text):
        for part in unicodedata.normalize("NFKC", char).casefold():
            if part.isalnum():
                out.append(part)
                where.append(i)
    return "".join(out), where


def render_page(
    data: bytes,
    page: int,
    sentence: str = "",
    near: float = 0.0,
    limits: PageLimits = PageLimits(),
) -> PageImage:
    """Page `page` (1-based) of a PDF as PNG, with `sentence` marked where it is found on it
    (`near`: where on the page it should be, as a fraction of the page's text)."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise ReadError(f"corrupt, unreadable or password-protected PDF ({str(exc)[:120]})") from None
    try:
        count = len(pdf)
        if not 1 <= page <= count:
            raise ReadError(f"the PDF has no page {page} (it has {count})")
        sheet = pdf[page - 1]
        scale = page_scale(*sheet.get_size(), limits)
        bitmap = sheet.render(scale=scale, may_draw_forms=False)
        picture = bitmap.to_pil().convert("RGB")
        boxes = _sentence_boxes(sheet, sentence, near, picture.size) if sentence.strip() else []
    except pdfium.PdfiumError as exc:
        raise ReadError(f"cannot render page {page} ({str(exc)[:120]})") from None
    finally:
        pdf.close()
    if boxes:
        picture = _mark(picture, boxes)
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=6)
    return PageImage(out.getvalue(), page, count, picture.width, picture.height, tuple(boxes))


def _sentence_boxes(sheet, sentence: str, near: float, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The pixel boxes of the sentence's characters on the rendered page; [] when it is not found."""
    import pypdfium2.raw as raw

    text_page = sheet.get_textpage()
    try:
        span = find_text(text_page.get_text_range(), sentence, near)
        if span is None:
            return []
        start, end = span
        boxes = []
        for i in range(min(text_page.count_rects(start, end - start), MAX_MARKS)):
            left, bottom, right, top = text_page.get_rect(i)
            # PDFium maps page points to the bitmap's pixels (the page's rotation and boxes included).
            corners = [_to_device(raw, sheet, size, x, y) for x, y in ((left, bottom), (right, top))]
            xs, ys = [c[0] for c in corners], [c[1] for c in corners]
            box = (max(0, min(xs) - 2), max(0, min(ys) - 2), min(size[0], max(xs) + 2), min(size[1], max(ys) + 2))
            if box[2] > box[0] and box[3] > box[1]:
                boxes.append(box)
        return boxes
    finally:
        text_page.close()


def _to_device(raw, sheet, size: tuple[int, int], x: float, y: float) -> tuple[int, int]:
    dx, dy = ctypes.c_int(), ctypes.c_int()
    raw.FPDF_PageToDevice(sheet.raw, 0, 0, size[0], size[1], 0, x, y, dx, dy)
    return dx.value, dy.value


def _mark(picture, boxes: list[tuple[int, int, int, int]]):
    """The picture with a translucent highlight over each box (as a highlighter pen: multiplied)."""
    from PIL import Image, ImageChops, ImageDraw

    layer = Image.new("RGB", picture.size, (255, 255, 255))
    draw = ImageDraw.Draw(layer)
    for box in boxes:
        draw.rectangle(box, fill=MARK_RGB)
    return ImageChops.multiply(picture, layer)
