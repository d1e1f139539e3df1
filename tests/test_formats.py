"""Office files, spreadsheets and e-books: metadata, headings, locators, exact spans, hostile files."""

from __future__ import annotations

import json

import pytest

from qa.cli import main
from qa.ingest.chunking import Chunker
from qa.ingest.isolation import ISOLATED_SUFFIXES, IsolatedParser
from qa.ingest.office import OFFICE_SUFFIXES
from qa.ingest.parsing import ParseLimits, ReadError
from qa.ingest.readers import parse_document
from qa.types import Place
from tests import officegen

BUILDERS = {
    "survey.docx": officegen.docx_bytes,
    "review.pptx": officegen.pptx_bytes,
    "budget.xlsx": officegen.xlsx_bytes,
    "cities.csv": officegen.csv_bytes,
    "orchard.odt": officegen.odt_bytes,
    "fleet.ods": officegen.ods_bytes,
    "northern.epub": officegen.epub_bytes,
}

# (file, title, author, the headings in order)
METADATA = [
    ("survey.docx", "Harbour Survey", "Ingrid Solberg", ["Harbour Survey", "Tides", "Vessels"]),
    ("review.pptx", "Quarterly Review", "Mateo Álvarez", ["Quarterly Review", "Topic 2"]),
    ("budget.xlsx", "Budget 2026", "Chen Wei", ["Notes", "Budget"]),
    ("cities.csv", "cities", "", []),
    ("orchard.odt", "Orchard Notes", "Aoife Byrne", ["Orchard Notes", "Apples"]),
    ("fleet.ods", "Fleet Register", "Mette Holm", ["Fleet"]),
    ("northern.epub", "The Northern Line", "Tove Lindqvist", ["Departure", "Crossing", "Arrival", "At Narvik"]),
]

# (file, question, a phrase of the answer, the locator its citation shows)
QUESTIONS = [
    ("survey.docx", "how many trawlers did the lighthouse keeper count", "forty-two trawlers", ""),
    ("review.pptx", "how many pallets of copper wire in the Rotterdam warehouse", "nine hundred pallets", "slide 7"),
    ("budget.xlsx", "Glacier research budget Sigrún Jónsdóttir", "Glacier research", "sheet Budget, row"),
    ("cities.csv", "population of Tromsø", "Tromsø", "row"),
    ("orchard.odt", "varieties of Bramley apple in the Armagh orchard", "thirty varieties", ""),
    ("fleet.ods", "home port of the Polarlys", "Polarlys", "sheet Fleet, row"),
    ("northern.epub", "who brewed cardamom coffee at Narvik", "cardamom coffee", "chapter 3"),
]


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return {name: build() for name, build in BUILDERS.items()}


def test_every_format_goes_through_the_worker():
    assert OFFICE_SUFFIXES <= ISOLATED_SUFFIXES
    assert {".docx", ".pptx", ".xlsx", ".csv", ".odt", ".ods", ".epub"} <= OFFICE_SUFFIXES


@pytest.mark.parametrize(("name", "title", "author", "headings"), METADATA)
def test_title_author_and_headings(files, name, title, author, headings):
    doc = parse_document(name, files[name])
    assert doc.title == title
    assert doc.author == author
    found = [doc.text[h.start : h.end] for h in doc.headings]
    assert found[: len(headings)] == headings


def test_word_heading_levels_and_table_rows(files):
    doc = parse_document("survey.docx", files["survey.docx"])
    assert [h.level for h in doc.headings] == [1, 1, 2]
    assert "Vessel: Havørn; Berth: Quay 7" in doc.text.splitlines()
    assert doc.locators == () and doc.place(0, 10) is None


def test_slides_are_located_and_chunked_apart(files):
    doc = parse_document("review.pptx", files["review.pptx"])
    at = doc.text.index("Rotterdam")
    assert doc.place(at, at + 20) == Place("slide", 7, 7)
    assert doc.place(0, len(doc.text)).label() == "slides 1\u20137"
    assert "Item: Copper wire; Count: 900" in doc.text
    # The title placeholder is read once, as the slide's heading.
    assert doc.text.count("Warehouse\n") == 1
    chunks = Chunker(lambda t: len(t.split()), 200, 0).chunk(doc)
    assert len(chunks) == 7
    assert [c.place.first for c in chunks] == list(range(1, 8))


def test_sheet_rows_are_located(files):
    doc = parse_document("budget.xlsx", files["budget.xlsx"])
    line = "Department: Glacier research; Amount: 4800; Owner: Dr. Sigrún Jónsdóttir"
    at = doc.text.index(line)
    assert doc.place(at, at + len(line)).label() == "sheet Budget, row 12"
    end = doc.text.index("Office 18")
    assert doc.place(at, end).label() == "sheet Budget, rows 12\u201318"
    chunks = Chunker(lambda t: len(t.split()), 40, 0).chunk(doc)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)
    assert {c.place.within for c in chunks} == {"Notes", "Budget"}
    assert all(c.place.unit == "row" for c in chunks)


def test_csv_rows_and_chapters(files):
    doc = parse_document("cities.csv", files["cities.csv"])
    at = doc.text.index("City: Tromsø")
    assert doc.place(at, at + 5).label() == "row 8"
    book = parse_document("northern.epub", files["northern.epub"])
    at = book.text.index("cardamom")
    assert book.place(at, at + 8).label() == "chapter 3"
    assert "nav" not in book.text.lower().split()


def test_isolated_parser_reads_them(files):
    with IsolatedParser(ParseLimits(seconds=60)) as parser:
        doc = parser.parse("review.pptx", files["review.pptx"])
    assert doc.title == "Quarterly Review"


HOSTILE = [
    ("bomb.docx", lambda: officegen.zip_bomb("word/document.xml", 20_000_000), "zip bomb"),
    ("bomb.xlsx", lambda: officegen.zip_bomb("xl/workbook.xml", 20_000_000), "zip bomb"),
    ("bomb.epub", lambda: officegen.zip_bomb("OEBPS/chap.xhtml", 20_000_000), "zip bomb"),
    ("entries.odt", lambda: officegen.many_entries(10_001), "holds 10001 files"),
    ("huge.xlsx", lambda: officegen.xlsx_bytes(extra_rows=400), "more than 1,000 cells"),
    ("huge.csv", lambda: officegen.csv_bytes() * 200, "more than 1,000 cells"),
    ("locked.docx", lambda: officegen.encrypted_ooxml("docx"), "encrypted with a password"),
    ("locked.xlsx", lambda: officegen.encrypted_ooxml("xlsx"), "encrypted with a password"),
    ("locked.pptx", lambda: officegen.encrypted_ooxml("pptx"), "encrypted with a password"),
    ("locked.odt", officegen.encrypted_odt, "encrypted with a password"),
    ("locked.epub", officegen.drm_epub, "DRM"),
    ("broken.docx", lambda: officegen.corrupt(officegen.docx_bytes()), "corrupt"),
    ("broken.pptx", lambda: officegen.corrupt(officegen.pptx_bytes()), "corrupt"),
    ("broken.xlsx", lambda: officegen.corrupt(officegen.xlsx_bytes()), "corrupt"),
    ("broken.odt", lambda: officegen.corrupt(officegen.odt_bytes()), "corrupt"),
    ("broken.ods", lambda: officegen.corrupt(officegen.ods_bytes()), "corrupt"),
    ("huge.ods", lambda: officegen.ods_bytes(repeat_last=1_000_000), "more than 1,000 cells"),
    ("broken.epub", lambda: officegen.corrupt(officegen.epub_bytes()), "corrupt"),
    ("wrong.xlsx", lambda: officegen.renamed(officegen.docx_bytes()), "corrupt or unreadable XLSX"),
    ("broken.csv", lambda: b'a,b\n"x,1\n' + b"\x00" * 20, "binary content"),
]
LIMITS = ParseLimits(cells=1000, zip_bytes=10_000_000)


@pytest.mark.parametrize(("name", "build", "reason"), HOSTILE)
def test_hostile_files_are_refused_with_a_reason(name, build, reason):
    with pytest.raises(ReadError, match=reason):
        parse_document(name, build(), limits=LIMITS)


@pytest.fixture
def mixed(settings, files, monkeypatch):
    """The corpus with one file of each format and the hostile files beside them."""
    for name, data in files.items():
        (settings.corpus_dir / name).write_bytes(data)
    for name, build, _ in HOSTILE:
        (settings.corpus_dir / "hostile" / name).parent.mkdir(exist_ok=True)
        (settings.corpus_dir / "hostile" / name).write_bytes(build())
    env = {
        "QA_CORPUS": settings.corpus_dir,
        "QA_INDEX": settings.index_dir,
        "QA_MODEL": "hash",
        "QA_CHUNK_SIZE": 48,
        "QA_CHUNK_OVERLAP": 8,
        "QA_MIN_RELEVANCE": 0,
        "QA_MAX_CELLS": 1000,
        "QA_MAX_ZIP_MB": 10,
        "QA_READER": "off",  # the formats are the subject here, not the reader
    }
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return settings


def test_mixed_corpus_is_indexed_and_answered_with_locators(mixed, capsys):
    assert main(["index"]) == 0
    report = capsys.readouterr()
    assert main(["docs", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    indexed = {d["source"]: d for d in listing["documents"]}
    assert set(BUILDERS) <= set(indexed)
    failed = {f["path"]: f["reason"] for f in listing["failed"]}
    for name, _, reason in HOSTILE:
        assert reason in failed[f"hostile/{name}"], (name, failed.get(f"hostile/{name}"))
    assert "hostile/bomb.docx" in report.out + report.err
    for name, title, author, _ in METADATA:
        assert (indexed[name]["title"], indexed[name]["author"]) == (title, author)

    for name, question, phrase, locator in QUESTIONS:
        assert main(["ask", "--json", "-k", "3", question]) == 0
        passages = json.loads(capsys.readouterr().out)["passages"]
        top = next(p for p in passages if p["source"] == name)
        assert phrase in top["text"], (name, top["text"])
        assert top["locator"].startswith(locator), (name, top["locator"])
        if locator:
            assert top["locator"]
        # qa show --span returns the cited span exactly.
        assert main(["show", top["doc_id"], "--span", f"{top['start']}:{top['end']}"]) == 0
        assert capsys.readouterr().out == top["text"] + "\n"

    assert main(["ask", "Rotterdam warehouse copper wire pallets", "-k", "1"]) == 0
    assert "review.pptx, slide 7" in capsys.readouterr().out


def test_locators_are_kept_by_both_stores(store_settings, files):
    from qa.engine import open_index
    from qa.ingest.indexer import update_index

    store_settings = store_settings.with_(reader="off")
    for name in ("review.pptx", "budget.xlsx"):
        (store_settings.corpus_dir / name).write_bytes(files[name])
    update_index(store_settings)
    engine = open_index(settings=store_settings, build=False)
    answer = engine.ask("Rotterdam warehouse copper wire pallets", k=1)
    assert (answer.passages[0].source, answer.passages[0].locator) == ("review.pptx", "slide 7")
    doc = engine.document("budget")
    assert doc.locators == parse_document("budget.xlsx", files["budget.xlsx"]).locators
    answer = engine.ask("Glacier research Sigrún Jónsdóttir", k=1)
    assert answer.passages[0].locator.startswith("sheet Budget, row")
    assert answer.to_dict()["passages"][0]["locator"] == answer.passages[0].locator


def test_citations_show_the_locator():
    from qa.types import Highlight, Passage
    from qa.web.render import render_card

    passage = Passage(1, 0.9, "text", "deck", "Deck", "", "deck.pptx", 0, 4, None, Highlight(0, 4, "text"))
    assert passage.where == ""
    shown = Passage(**{**passage.__dict__, "locator": "slide 7"})
    assert "deck.pptx, slide 7" in render_card(shown, 1)
    assert Passage(**{**passage.__dict__, "page": 4}).where == "page 4"


def test_a_snapshot_from_before_locators_is_read_and_updated(settings, files):
    import sqlite3

    from qa.engine import open_index
    from qa.ingest.indexer import update_index

    settings = settings.with_(reader="off")
    update_index(settings)
    (catalog,) = settings.index_dir.rglob("catalog.sqlite")
    with sqlite3.connect(catalog) as conn:  # the schema before this change
        conn.execute("ALTER TABLE chunks DROP COLUMN place")
        conn.execute("ALTER TABLE documents DROP COLUMN locators")
    assert open_index(settings=settings, build=False).ask("crab quotas", k=1).passages[0].locator == ""
    (settings.corpus_dir / "review.pptx").write_bytes(files["review.pptx"])
    update_index(settings)
    answer = open_index(settings=settings, build=False).ask("Rotterdam warehouse copper wire pallets", k=1)
    assert answer.passages[0].locator == "slide 7"


def test_rows_keep_their_sheet_numbers_and_long_headers_are_cut():
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Log"
    sheet["A1"], sheet["B1"] = "Día", "x" * 500
    sheet["A2"], sheet["B2"] = "lunes", "calm"
    sheet["A40"], sheet["B40"] = "martes", "a storm from the north"
    out = io.BytesIO()
    book.save(out)
    doc = parse_document("log.xlsx", out.getvalue())
    at = doc.text.index("martes")
    assert doc.place(at, at + 6).label() == "sheet Log, row 40"
    assert f"Día: martes; {'x' * 80}: a storm from the north" in doc.text
