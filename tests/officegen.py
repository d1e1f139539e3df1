"""Office files, spreadsheets and e-books built for the tests with each format's own writer.

Each builder returns the file's bytes. The text is chosen so a test can ask one question per
format (a fact that appears only in that file) and check the citation's locator.
"""

from __future__ import annotations

import io
import zipfile


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Harbour Survey"
    document.core_properties.author = "Ingrid Solberg"
    document.add_heading("Harbour Survey", level=0)  # the Title style
    document.add_heading("Tides", level=1)
    document.add_paragraph("The tide at Ålesund rises twice a day; the spring tide reaches 2.4 metres.")
    document.add_heading("Vessels", level=2)
    document.add_paragraph("The lighthouse keeper counted forty-two trawlers in the winter harbour.")
    table = document.add_table(rows=3, cols=2)
    for row, values in zip(table.rows, [("Vessel", "Berth"), ("Nordlys", "Quay 3"), ("Havørn", "Quay 7")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = "Quarterly Review"
    deck.core_properties.author = "Mateo Álvarez"
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = "Quarterly Review"
    first.placeholders[1].text = "Prepared for the board"
    for number in range(2, 7):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Topic {number}"
        slide.placeholders[1].text = f"Routine update number {number} on office matters."
    seventh = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    seventh.shapes.title.text = "Warehouse"
    box = seventh.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
    box.text_frame.text = "The Rotterdam warehouse stores nine hundred pallets of copper wire."
    rows = seventh.shapes.add_table(3, 2, Inches(1), Inches(3.5), Inches(6), Inches(1.5)).table
    for r, values in enumerate([("Item", "Count"), ("Copper wire", "900"), ("Steel rods", "120")]):
        for c, value in enumerate(values):
            rows.cell(r, c).text = value
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes(extra_rows: int = 0) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.properties.title = "Budget 2026"
    book.properties.creator = "Chen Wei"
    notes = book.active
    notes.title = "Notes"
    notes.append(["Note"])
    notes.append(["Figures are in thousands of euros."])
    budget = book.create_sheet("Budget")
    budget.append(["Department", "Amount", "Owner"])
    for i in range(2, 12):
        budget.append([f"Office {i}", 100 + i, "Finance"])
    budget.append(["Glacier research", 4800, "Dr. Sigrún Jónsdóttir"])  # row 12
    for i in range(13, 19):
        budget.append([f"Office {i}", 100 + i, "Finance"])
    for i in range(extra_rows):
        budget.append([f"Extra {i}", i, "Filler"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes() -> bytes:
    lines = ["City,Population,Founded"]
    lines += [f"Town {i},{1000 + i},{1800 + i}" for i in range(2, 8)]
    lines.append("Tromsø,77000,1794")  # row 8
    return ("\n".join(lines) + "\n").encode("utf-8")


def odt_bytes() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, P

    document = OpenDocumentText()
    document.meta.addElement(_odf_meta("title", "Orchard Notes"))
    document.meta.addElement(_odf_meta("initial-creator", "Aoife Byrne"))
    document.text.addElement(H(outlinelevel=1, text="Orchard Notes"))
    document.text.addElement(H(outlinelevel=2, text="Apples"))
    document.text.addElement(P(text="The orchard in Armagh grows thirty varieties of Bramley apple."))
    table = Table(name="Harvest")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for values in [("Variety", "Tonnes"), ("Bramley", "12")]:
        row = TableRow()
        for value in values:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    document.text.addElement(table)
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def ods_bytes(repeat_last: int = 1) -> bytes:
    """A spreadsheet; `repeat_last` writes its last row once with a repeat count (a row-repeat bomb when large)."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    document.meta.addElement(_odf_meta("title", "Fleet Register"))
    document.meta.addElement(_odf_meta("initial-creator", "Mette Holm"))
    table = Table(name="Fleet")

    def row(values, repeat=1):
        element = TableRow(numberrowsrepeated=repeat) if repeat > 1 else TableRow()
        for value in values:
            cell = TableCell()
            if value:
                cell.addElement(P(text=value))
            element.addElement(cell)
        table.addElement(element)

    row(["Vessel", "Home port"])
    row(["Nordkapp", "Hammerfest"])
    row(["", ""], repeat=5)  # rows 3-7 empty, written once with a repeat count
    row(["Polarlys", "Tromsø"], repeat=repeat_last)  # row 8
    document.spreadsheet.addElement(table)
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def _odf_meta(name: str, value: str):
    from odf import dc, meta

    element = dc.Title() if name == "title" else meta.InitialCreator()
    element.addText(value)
    return element


def epub_bytes() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("qa-test-book")
    book.set_title("The Northern Line")
    book.set_language("en")
    book.add_author("Tove Lindqvist")
    chapters = []
    bodies = [
        ("Departure", "<p>The train left the station at dawn with its lamps still lit.</p>"),
        ("Crossing", "<p>Snow covered the tracks for many miles.</p>"),
        (
            "Arrival",
            "<h2>At Narvik</h2><p>The stationmaster at Narvik brewed cardamom coffee for every passenger.</p>",
        ),
    ]
    for number, (title, body) in enumerate(bodies, start=1):
        chapter = epub.EpubHtml(title=title, file_name=f"chap_{number}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1>{body}</body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


# -- hostile files --------------------------------------------------------------------


def zip_bomb(member: str = "word/document.xml", size: int = 300_000_000) -> bytes:
    """A zip archive whose one entry inflates to `size` bytes of zeros (packed to about a thousandth of that)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(member, "w", force_zip64=True) as fh,
    ):
        block = b"\0" * 1_000_000
        for _ in range(size // len(block)):
            fh.write(block)
    return out.getvalue()


def many_entries(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(count):
            archive.writestr(f"f{i}", b"")
    return out.getvalue()


def encrypted_ooxml(kind: str = "docx") -> bytes:
    """What Office writes for a password-protected document: an OLE compound file, not a zip."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096 + kind.encode()


def encrypted_odt() -> bytes:
    """An ODT whose manifest says its content is encrypted (the content is then not XML)."""
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
        "</manifest:encryption-data></manifest:file-entry></manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", b"\x8f\x12 encrypted bytes")
    return out.getvalue()


def drm_epub() -> bytes:
    data = io.BytesIO(epub_bytes())
    with zipfile.ZipFile(data, "a") as archive:
        archive.writestr("META-INF/encryption.xml", "<encryption/>")
    return data.getvalue()


def renamed(data: bytes) -> bytes:
    """The same document with one more archive member: another file's content, not a duplicate."""
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("docProps/custom-note.txt", "written by the tests")
    return out.getvalue()


def corrupt(data: bytes) -> bytes:
    """The file cut in half: its zip directory is gone."""
    return data[: len(data) // 2]
