"""Pictures of PDF pages (qa.ingest.pages): the cited sentence found on the page and marked,
the picture's size bounded whatever the page claims, and rendering in the limited worker."""

from __future__ import annotations

import io

import pytest

from qa.ingest.isolation import PageRenderer
from qa.ingest.pages import MARK_RGB, PageLimits, find_text, page_scale, render_page
from qa.ingest.parsing import ReadError
from tests.pdfgen import make_bomb_pdf, make_pdf

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("pypdfium2")

PAGES = [
    "Sakhalin fishermen met the governor on Monday.",
    "The garrison on Iturup received new S-400 systems. Tokyo protested the next day.",
]


def _picture(png: bytes):
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_find_text_ignores_spacing_case_punctuation_and_ligatures():
    page = "The gar-\nrison on  Iturup re\u00adceived new S-400 sys\ufb01tems."
    start, end = find_text(page, "the garrison on Iturup received new S 400 sysfitems")
    assert page[start:end] == page[: page.index("tems") + 4]
    start, end = find_text(page, "on Iturup received")
    assert page[start:end] == "on  Iturup re\u00adceived"
    assert find_text("He said: «Stay.» Then left.", "said: «Stay.»") == (3, 16)  # closing marks included
    assert find_text(page, "Kunashir") is None
    assert find_text(page, " ... ") is None  # nothing to look for


def test_find_text_takes_the_occurrence_nearest_where_the_sentence_should_be():
    page = "Ja. Nein. Ja. Ñandú. Ja."
    assert find_text(page, "ja", near=0.0) == (0, 2)
    assert find_text(page, "ja", near=0.5) == (10, 12)
    assert find_text(page, "JA", near=1.0) == (21, 23)
    assert find_text(page, "nandu") is None  # Ñ is a letter of its own
    assert find_text(page, "Ñandú") == (14, 19)


def test_the_sentence_is_marked_on_its_page_and_nothing_else_is():
    data = make_pdf(PAGES)
    image = render_page(data, 2, "received new S-400 systems.", near=0.3)
    assert (image.page, image.pages) == (2, 2)
    assert image.marked and len(image.marks) == 1
    picture = _picture(image.png)
    assert picture.size == (image.width, image.height) == (1000, 500)  # 400 x 200 points, 1000 px across
    left, top, right, bottom = image.marks[0]
    # On the line of text (y = 100 pt of 200, from the bottom), after "The garrison on Iturup".
    assert 0.35 < top / image.height < 0.5 < bottom / image.height < 0.55
    assert 0.3 < left / image.width < 0.4 and right - left > 300
    inside = [picture.getpixel((x, y)) for x in range(left + 1, right - 1, 3) for y in range(top + 1, bottom - 1, 3)]
    # The paper under the mark turned the highlighter's yellow; the ink stays dark.
    yellow = [p for p in inside if p == MARK_RGB]
    assert len(yellow) > 0.5 * len(inside)
    assert any(max(p) < 120 for p in inside)
    # Outside the mark: white paper, and ink, nothing yellow.
    outside = [picture.getpixel((x, y)) for x in range(0, image.width, 7) for y in range(0, image.height, 7)]
    outside = [p for (p, (x, y)) in zip(outside, _grid(image.width, image.height, 7)) if not _in(x, y, image.marks[0])]
    assert not [p for p in outside if p[2] < p[0] - 40]  # no yellowish pixel


def _grid(width: int, height: int, step: int):
    return [(x, y) for x in range(0, width, step) for y in range(0, height, step)]


def _in(x: int, y: int, box) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def test_the_mark_follows_a_rotated_page():
    data = make_pdf(["Alpha beta gamma. The garrison received new systems."])
    data = data.replace(b"/MediaBox [0 0 400 200]", b"/Rotate 90 /MediaBox [0 0 400 200]")
    image = render_page(data, 1, "received new systems.", near=0.6)
    assert (image.width, image.height) == (800, 1600)  # shown upright: 200 x 400 points, 4 px a point
    [(left, top, right, bottom)] = image.marks
    # The line runs down the page (clockwise turn: its text starts at the top), the mark on its lower part.
    assert bottom - top > 300 and right - left < 80
    assert top > 0.4 * image.height


def test_a_sentence_not_on_the_page_leaves_it_unmarked():
    image = render_page(make_pdf(PAGES), 1, "The garrison on Iturup received new S-400 systems.")
    assert not image.marked
    picture = _picture(image.png)
    assert not [p for p in picture.getdata() if p[2] < p[0] - 40]


def test_page_numbers_outside_the_pdf_and_broken_files_are_read_errors():
    with pytest.raises(ReadError, match="no page 3"):
        render_page(make_pdf(PAGES), 3)
    with pytest.raises(ReadError, match="no page 0"):
        render_page(make_pdf(PAGES), 0)
    with pytest.raises(ReadError, match="corrupt"):
        render_page(b"%PDF-1.4\nnot really a PDF", 1)


@pytest.mark.parametrize(
    ("width", "height", "pixels"),
    [
        (400, 200, (1000, 500)),  # an ordinary page: 1000 px across
        (14_400, 14_400, (1000, 1000)),  # PDF's largest page: scaled down
        (3, 2, (12, 8)),  # a tiny page is not blown up past 4 px per point
        (200, 200_000, (4, 4000)),  # a long strip: no side over 4000 px
    ],
)
def test_the_picture_stays_within_its_limits_whatever_the_page_claims(width, height, pixels):
    limits = PageLimits()
    scale = page_scale(width, height, limits)
    assert (round(width * scale), round(height * scale)) == pixels
    assert width * scale * height * scale <= limits.max_pixels + 1


@pytest.mark.parametrize(("width", "height"), [(0, 100), (-5, 100), (float("nan"), 10), (1, 1e9)])
def test_a_page_without_a_usable_size_is_refused(width, height):
    with pytest.raises(ReadError):
        page_scale(width, height)


def test_a_large_page_is_rendered_within_the_pixel_limit():
    data = make_pdf(["A very large page."]).replace(b"/MediaBox [0 0 400 200]", b"/MediaBox [0 0 14400 14400]")
    limits = PageLimits(max_pixels=250_000)
    image = render_page(data, 1, limits=limits)
    assert image.width * image.height <= 250_000 and image.width == image.height == 500


def test_the_worker_renders_keeps_the_result_and_survives_a_bomb():
    data = make_pdf(PAGES)
    with PageRenderer(PageLimits(memory_mb=256, seconds=60), keep=2) as renderer:
        first = renderer.render(data, 2, "Tokyo protested the next day.", 0.8, key=("p.pdf", "v1"))
        assert first.marked and _picture(first.png).size == (1000, 500)
        assert renderer.render(data, 2, "Tokyo protested the next day.", 0.8, key=("p.pdf", "v1")) is first
        # A page whose content inflates past the worker's memory: a ReadError, and the next page renders.
        with pytest.raises(ReadError, match=r"memory|longer than"):
            renderer.render(make_bomb_pdf(1, mb_per_page=400), 1)
        assert renderer.render(data, 1).page == 1
