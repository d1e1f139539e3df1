"""Scanned pages for the OCR tests: known text rendered with Pillow, saved as an image-only PDF."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")

PAGES = [
    "The harbour master recorded forty-two trawlers in the winter harbour, and the spring tide "
    "reached two point four metres above the chart datum. Ferries to the northern islands ran twice "
    "a week until the ice closed the sound in January.",
    "The survey team measured the depth of the channel at eleven points and found that silt had "
    "raised the bed by almost half a metre since the last dredging. The council voted to dredge "
    "again in the spring, before the fishing season opens.",
    "A new lighthouse lamp was installed on the breakwater in March. Its beam reaches twenty "
    "nautical miles in clear weather, and the keeper now logs every vessel that passes the "
    "headland at night.",
    "Minutes of the harbour board, 14 May: present were the chair, the treasurer and four members. "
    "The treasurer reported a surplus of 12,400 euros, mostly from mooring fees paid by visiting "
    "yachts. The board agreed to repaint the fish market and to replace two of the cranes.",
    "Weather notes for the week: strong westerly winds on Monday and Tuesday, with gusts of 65 km/h "
    "at the pier head; rain on Wednesday; calm and bright from Thursday. Water temperature in the "
    "inner basin stayed between 9 and 11 degrees Celsius.",
    "Letter from the schoolteacher: the pupils of class 4B would like to visit the lifeboat station "
    "in June. They have been studying tides and knots, and several of them can already tie a "
    "bowline, a clove hitch and a reef knot without looking.",
]


def font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(FONT), size)
    except OSError:  # no DejaVu on this machine: Pillow's own scalable font
        return ImageFont.load_default(size)


def render_page(text: str, dpi: int = 300, points: float = 11.0, noise: float = 0.0, skew: float = 0.0, seed: int = 0):
    """An A4 page of `text` at `dpi`, with Gaussian noise (a fraction of full scale) and a skew in degrees."""
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = int(8.27 * dpi), int(11.69 * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    face = font(int(points * dpi / 72))
    margin = dpi
    # Characters per line from the width of an average lower-case letter.
    per_line = max(20, int((width - 2 * margin) / (face.getlength("abcdefghijklmnopqrstuvwxyz ") / 27)))
    y = margin
    for line in textwrap.wrap(text, per_line):
        draw.text((margin, y), line, font=face, fill=0)
        y += int(points * dpi / 72 * 1.5)
    if noise:
        pixels = np.asarray(page, dtype=np.float32)
        pixels += np.random.default_rng(seed).normal(0, noise * 255, pixels.shape)
        page = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if skew:
        page = page.rotate(skew, fillcolor=255, resample=Image.BICUBIC)
    return page


def scanned_pdf(texts=PAGES, dpi: int = 300, **options) -> bytes:
    """An image-only PDF: one rendered page per text, no text layer."""
    pages = [render_page(text, dpi, **options) for text in texts]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=dpi)
    return out.getvalue()
