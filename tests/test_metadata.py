"""Where titles, authors and dates come from: junk metadata passed over, sidecars and front matter first."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from qa.ingest import metadata
from qa.ingest.parsing import ReadError
from qa.ingest.readers import parse_document
from tests.conftest import REPO
from tests.pdfgen import make_pdf

PRINTED = REPO / "tests" / "data" / "oxygen-printed.pdf"  # Chromium's "print to PDF" of oxygen-printed.html


@pytest.mark.parametrize(
    "title",
    [
        "",
        "   ",
        "\x00\x01",
        "-",
        "oxygen.html",
        "Oxygen.HTM",
        "report.docx",
        "notes.doc",
        "scan 2020.pdf",
        "readme.txt",
        "Microsoft Word - report.docx",
        "Microsoft PowerPoint - Slides",
        "untitled",
        "Untitled-1",
        "Untitled document",
        "Document1",
        "title",
        "https://example.org/page",
        "file:///home/anna/oxygen.html",
        "C:\\Users\\anna\\Desktop\\draft",
    ],
)
def test_placeholder_titles_are_passed_over(title):
    assert metadata.is_placeholder_title(title)


@pytest.mark.parametrize(
    "title",
    [
        "Oxygen",
        "An ongoing journal on Russia-Japan relations #1",
        "東京の外交 — Tokyo's diplomacy",
        "Node.js in practice",
        "What a tangled web we weave: North Asian strategic relations",
        "Document management in 2020",
    ],
)
def test_real_titles_are_kept(title):
    assert not metadata.is_placeholder_title(title)


@pytest.mark.parametrize(
    ("author", "junk"),
    [("", True), ("Administrator", True), ("user", True), ("Owner", True), ("Anna Petrova", False), ("王伟", False)],
)
def test_placeholder_authors(author, junk):
    assert metadata.is_placeholder_author(author) is junk


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("D:20201208134501+01'00'", "2020-12-08"),
        ("D:20201208", "2020-12-08"),
        ("D:202012", "2020-12"),
        ("D:2020", "2020"),
        ("20201208", "2020-12-08"),
        ("D:20201308", "2020"),  # no 13th month
        ("D:20200231", "2020-02"),  # no 31 February
        ("D:19700101000000Z", ""),  # before PDF existed: a clock at zero
        ("D:20991231", ""),  # the future
        ("garbage", ""),
        ("", ""),
    ],
)
def test_pdf_dates(raw, expected):
    assert metadata.pdf_date(raw, today=dt.date(2026, 11, 30)) == expected


@pytest.mark.parametrize(
    ("producer", "creator", "printed"),
    [
        ("Skia/PDF m156", "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0.0.0", True),
        ("cairo 1.18.0 (https://cairographics.org)", "Mozilla Firefox 128.0", True),
        ("macOS Version 14.5 Quartz PDFContext", "Safari", True),
        ("Microsoft: Print To PDF", "", True),
        ("wkhtmltopdf 0.12.6", "", True),
        ("Acrobat Distiller 23.0", "Microsoft Word", False),
        ("LibreOffice 7.6", "Writer", False),
        ("", "", False),
    ],
)
def test_printed_by_browser(producer, creator, printed):
    assert metadata.printed_by_browser(producer, creator) is printed


def test_heading_is_the_first_text_set_larger_than_the_body():
    body = "Oxygen is a chemical element with symbol O and atomic number 8."
    runs = [("12/1/26, 1:52 PM", 8.0), ("Oxygen", 24.0), (body, 12.0), (body, 12.0), ("History", 18.0), (body, 12.0)]
    assert metadata.heading(runs) == "Oxygen"
    # A title over two lines stays whole; a drop cap or a page number is no heading.
    two_lines = [("7", 30.0), (body, 12.0), ("The Kurils after", 20.0), ("the war", 20.0), (body, 12.0), (body, 12.0)]
    assert metadata.heading(two_lines) == "The Kurils after the war"
    assert metadata.heading([(body, 12.0), (body, 12.0)]) == ""
    assert metadata.heading([]) == ""


def test_first_line_skips_dates_page_numbers_and_urls_and_cuts_long_lines():
    text = "12/1/26, 1:52 PM\n1/3\nhttps://example.org/x\nThe fishing season opens\nmore text"
    assert metadata.first_line(text) == "The fishing season opens"
    long = " ".join(["word"] * 60)
    cut = metadata.first_line(long)
    assert cut.endswith("…") and len(cut) <= metadata.FIRST_LINE_MAX_CHARS + 1
    assert metadata.first_line("1\n2\n") == ""


def test_browser_printed_pdf_gets_its_heading_as_title_and_no_print_date():
    doc = parse_document("oxygen-printed.pdf", PRINTED.read_bytes())
    assert doc.title == "Oxygen"  # its metadata title is "oxygen.html"
    assert doc.date == ""  # its creation date is the day Chromium printed it
    assert "chemical element with symbol O" in doc.text


def test_pdf_metadata_kept_when_plausible_and_replaced_when_junk():
    good = make_pdf(
        ["Body text about tanks."],
        info={"Title": "Tanks on Iturup", "Author": "Анна Петрова", "CreationDate": "D:20201208120000"},
    )
    doc = parse_document("tanks.pdf", good)
    assert (doc.title, doc.author, doc.date) == ("Tanks on Iturup", "Анна Петрова", "2020-12-08")

    junk = make_pdf(
        ["Body text about tanks."],
        info={"Title": "Microsoft Word - tanks.docx", "Author": "Administrator", "CreationDate": "D:19700101"},
        headings=["Tanks on the islands"],
    )
    doc = parse_document("tanks.pdf", junk)
    assert (doc.title, doc.author, doc.date) == ("Tanks on the islands", "", "")

    # No heading: the first line of the first page with text; no text at all on page 1 is skipped.
    doc = parse_document("tanks.pdf", make_pdf(["", "Second page opens here."], info={"Title": "untitled"}))
    assert doc.title == "Second page opens here."
    # Nothing usable anywhere: the file name.
    assert parse_document("my_scan-2020.pdf", make_pdf(["1"], info={"Title": "  "})).title == "my scan 2020"


def test_sidecar_overrides_any_format():
    sidecar = "title: Oxygen (element)\nauthor: [Wikipedia editors, Ольга]\ndate: 2016-05\nurl: https://example.org\n"
    doc = parse_document("oxygen-printed.pdf", PRINTED.read_bytes(), sidecar=sidecar.encode())
    assert (doc.title, doc.author, doc.date, doc.url) == (
        "Oxygen (element)",
        "Wikipedia editors, Ольга",
        "2016-05",
        "https://example.org",
    )
    # Over front matter too; a key given empty clears the file's own value; others stay.
    md = b"---\ntitle: From front matter\nauthor: Anna\ndate: 2020-01-01\n---\nText.\n"
    doc = parse_document("a.md", md, sidecar=b"title: From the sidecar\ndate:\n")
    assert (doc.title, doc.author, doc.date) == ("From the sidecar", "Anna", "")
    html = b"<html><head><title>untitled</title></head><body><article><p>" + b"Some words here. " * 20
    html += b"</p></article></body></html>"
    assert parse_document("page.html", html).title == "page"  # a placeholder title falls back to the name
    assert parse_document("page.html", html, sidecar=b"publisher: The Journal\n").publisher == "The Journal"


def test_sidecar_changes_the_documents_hash_only_when_present():
    plain = parse_document("a.md", b"Text.")
    assert parse_document("a.md", b"Text.", sidecar=None).content_hash == plain.content_hash
    one = parse_document("a.md", b"Text.", sidecar=b"title: One\n").content_hash
    two = parse_document("a.md", b"Text.", sidecar=b"title: Two\n").content_hash
    assert len({plain.content_hash, one, two}) == 3


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (b"title: [unclosed\n", "invalid YAML in its metadata sidecar a.pdf.yaml"),
        (b"- a list\n", "must be a mapping"),
        (b"titel: Typo\n", "unknown keys (titel)"),
        (b"date: December 2020\n", "write it as YYYY"),
        (b"title: caf\xe9\n", "not UTF-8"),
    ],
)
def test_bad_sidecars_give_reasons(sidecar, reason):
    with pytest.raises(ReadError, match=re.escape(reason)):
        parse_document("a.pdf", make_pdf(["Some text."]), sidecar=sidecar)
