"""OCR of scanned PDF pages: read in the OCR worker, cached by content, cited by page; QA_OCR=off."""

from __future__ import annotations

import json

import pytest

from qa.config import Settings
from qa.ingest.isolation import IsolatedParser
from qa.ingest.ocr import lines_of, otsu_threshold, word_error_rate
from qa.ingest.parsing import ParseLimits, ReadError
from tests.scangen import PAGES, scanned_pdf


def test_word_error_rate():
    assert word_error_rate("the tide rose", "the tide rose") == 0.0
    assert word_error_rate("the tide rose", "the tiderose") == pytest.approx(2 / 3)
    assert word_error_rate("a b c d", "a x c") == pytest.approx(2 / 4)


def test_lines_are_read_top_to_bottom_then_left_to_right():
    def box(x, y, text, h=20):
        return [[[x, y], [x + 50, y], [x + 50, y + h], [x, y + h]], text, 0.9]

    result = [box(200, 102, "world"), box(10, 100, "hello"), box(10, 140, "next"), box(10, 260, "after")]
    assert lines_of(result) == "hello world\nnext\n\nafter"


def test_otsu_separates_ink_from_paper():
    import numpy as np

    gray = np.array([[30] * 10 + [200] * 90], dtype=np.uint8)
    assert 30 <= otsu_threshold(gray) < 200


pytest.importorskip("rapidocr_onnxruntime")


@pytest.fixture(scope="module")
def scan() -> bytes:
    return scanned_pdf(PAGES[:2])


def test_scanned_pages_are_read_within_five_percent_and_cached(scan, tmp_path, monkeypatch):
    seen: list[tuple[str, int, int]] = []
    limits = ParseLimits(ocr=True, ocr_cache=str(tmp_path / "ocr"))
    with IsolatedParser(limits, progress=lambda *a: seen.append(a)) as parser:
        doc = parser.parse("scan.pdf", scan)
    assert seen == [("scan.pdf", 1, 2), ("scan.pdf", 2, 2)]
    assert len(doc.page_starts) == 2
    assert word_error_rate(" ".join(PAGES[:2]), doc.text) <= 0.05
    at = doc.text.index("dredge again")
    assert doc.page_at(at) == 2
    assert doc.title.startswith("The harbour master")
    assert len(list((tmp_path / "ocr").rglob("*.txt"))) == 2

    # Read again: from the cache, without starting the OCR worker.
    def no_worker(self):
        raise AssertionError("the OCR worker was started for cached pages")

    monkeypatch.setattr(IsolatedParser, "_start_ocr", no_worker)
    with IsolatedParser(limits) as parser:
        assert parser.parse("copy.pdf", scan).text == doc.text


def test_ocr_off_or_missing_says_so(scan, tmp_path):
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", ocr="off")
    with IsolatedParser(ParseLimits.from_settings(settings)) as parser, pytest.raises(ReadError, match="OCR"):
        parser.parse("scan.pdf", scan)


def test_ocr_time_limit_is_per_page(scan, tmp_path):
    limits = ParseLimits(ocr=True, ocr_seconds=0.01, ocr_cache=str(tmp_path / "ocr"))
    with IsolatedParser(limits) as parser, pytest.raises(ReadError, match="OCR of page 1 took longer"):
        parser.parse("scan.pdf", scan)


def test_a_scanned_pdf_is_answered_and_cited_by_page(settings, scan, monkeypatch, capsys):
    from qa.cli import main

    (settings.corpus_dir / "harbour-scan.pdf").write_bytes(scan)
    for key, value in {
        "QA_CORPUS": settings.corpus_dir,
        "QA_INDEX": settings.index_dir,
        "QA_MODEL": "hash",
        "QA_MIN_RELEVANCE": 0,
        "QA_CHUNK_SIZE": 48,
        "QA_CHUNK_OVERLAP": 8,
        "QA_READER": "off",
    }.items():
        monkeypatch.setenv(key, str(value))
    assert main(["index"]) == 0
    capsys.readouterr()
    assert main(["ask", "--json", "-k", "3", "when will the council dredge the channel again"]) == 0
    passages = json.loads(capsys.readouterr().out)["passages"]
    top = next(p for p in passages if p["source"] == "harbour-scan.pdf")
    assert (top["page"], top["locator"]) == (2, "page 2")
    assert "dredge" in top["text"]
