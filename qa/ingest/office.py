"""Reading office documents, spreadsheets and e-books (.docx, .pptx, .xlsx, .csv, .odt, .epub).

Each reader lays the file out as plain text through `Layout`: paragraphs separated by blank
lines, headings on lines of their own (kept as `Heading` spans), tables as one line per row
that names each value's column ("Region: North; Budget: 1200"), so that a row can be retrieved
on its own. Slides, chapters and spreadsheet rows get a `Locator`, which citations show.

These formats are zip archives: the archive's entry count and total uncompressed size are
checked before anything is inflated (a zip bomb is refused, not opened), and a spreadsheet's
cells are counted as they are read. Parsing runs in qa.ingest.isolation's worker, which also
caps memory and time.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence

from qa.ingest import metadata
from qa.ingest.parsing import ParseLimits, ReadError, decode_text
from qa.types import Heading, Locator

DOCX_SUFFIXES = {".docx"}
PPTX_SUFFIXES = {".pptx"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
CSV_SUFFIXES = {".csv", ".tsv"}
ODT_SUFFIXES = {".odt"}
ODS_SUFFIXES = {".ods"}
EPUB_SUFFIXES = {".epub"}
OFFICE_SUFFIXES = (
    DOCX_SUFFIXES | PPTX_SUFFIXES | XLSX_SUFFIXES | CSV_SUFFIXES | ODT_SUFFIXES | ODS_SUFFIXES | EPUB_SUFFIXES
)

# An encrypted OOXML file (and a legacy .doc/.xls/.ppt) is an OLE compound file, not a zip.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SPACE = re.compile(r"\s+")
# A header cell repeated before every value of its column is cut to this many characters, so that
# a header of long cells cannot multiply a spreadsheet's size by its row count.
MAX_LABEL = 80


def _error(reason: str) -> Exception:
    return ReadError(reason)


def _clean(text: object) -> str:
    """One line of text: runs of whitespace (line breaks in a cell or a title) become one space."""
    return _SPACE.sub(" ", str(text or "")).strip()


class Layout:
    """The text of a document as it is laid out, with its headings and locators."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.headings: list[Heading] = []
        self.locators: list[Locator] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def __len__(self) -> int:
        return self._length

    def _block(self, text: str) -> int:
        """Append a block (after a blank line unless it is the first); its start offset."""
        if self._length:
            self._parts.append("\n\n")
            self._length += 2
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        return start

    def locate(self, unit: str, number: int, within: str = "") -> None:
        """The next block begins `unit number` (slide 3, chapter 2, row 12 of `within`)."""
        self.locators.append(Locator(self._length + (2 if self._length else 0), unit, number, within))

    def heading(self, text: str, level: int) -> None:
        text = _clean(text)
        if text:
            start = self._block(text)
            self.headings.append(Heading(start, start + len(text), max(1, min(6, level))))

    def paragraph(self, text: str) -> None:
        # Line breaks inside a paragraph stay; blank lines would read as a new paragraph.
        lines = [_clean(line) for line in str(text or "").splitlines()]
        text = "\n".join(line for line in lines if line)
        if text:
            self._block(text)

    def table(self, rows: Iterable[Sequence[object]], row_numbers: Iterable[int] = (), within: str = "") -> None:
        """Rows under the first non-empty one (the header) as "Header: value; Header: value", each
        a paragraph of its own; with `row_numbers`, each gets a locator (`row N` of `within`)."""
        numbers = iter(row_numbers)
        header: list[str] | None = None
        for row in rows:
            number = next(numbers, None)
            cells = [_clean(c) for c in row]
            if not any(cells):
                continue
            if header is None:
                header = cells
                line = "; ".join(c for c in cells if c)
            else:
                line = "; ".join(
                    f"{header[i][:MAX_LABEL]}: {value}" if i < len(header) and header[i] else value
                    for i, value in enumerate(cells)
                    if value
                )
            if number is not None:
                self.locate("row", number, within)
            self._block(line)

    def fields(self, title: str = "", author: str = "", date: str = "") -> dict:
        title, author = metadata.clean(title), metadata.clean(author)
        return {
            "text": self.text,
            "title": "" if metadata.is_placeholder_title(title) else title,
            "author": "" if metadata.is_placeholder_author(author) else author,
            "publisher": "",
            "date": date,
            "url": "",
            "headings": tuple(self.headings),
            "locators": tuple(self.locators),
        }


def checked_zip(data: bytes, kind: str, limits: ParseLimits) -> zipfile.ZipFile:
    """The file as a zip archive, refused before any inflating when it would expand past the limits."""
    if data[:8] == _OLE_MAGIC:
        raise _error(
            f"{kind} file is encrypted with a password (or is an old binary Office file); "
            f"save an unencrypted {kind} copy"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise _error(f"{kind} file is corrupt (not a readable zip archive: {str(exc)[:80]})") from None
    if len(entries) > limits.zip_entries:
        raise _error(
            f"{kind} archive holds {len(entries)} files; the limit is {limits.zip_entries}: "
            "a zip bomb or a damaged file"
        )
    total = sum(max(0, info.file_size) for info in entries)
    if total > limits.zip_bytes:
        raise _error(
            f"{kind} archive would expand to {total / 1e6:.0f} MB; the limit is {limits.zip_bytes / 1e6:.0f} MB "
            "(set QA_MAX_ZIP_MB to change it): a zip bomb or a damaged file"
        )
    # zipfile stops reading an entry at its declared size, so these sizes bound what is inflated.
    return archive


def _guarded(kind: str, read, *args) -> dict:
    """Run a reader, turning whatever a damaged file makes a library raise into one ReadError."""
    try:
        return read(*args)
    except (ReadError, MemoryError):
        raise
    except RecursionError:
        raise _error(f"corrupt or unreadable {kind} file (nested too deeply)") from None
    except Exception as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise _error(
            f"corrupt or unreadable {kind} file ({type(exc).__name__}{': ' + detail if detail else ''})"
        ) from None


def read_office(suffix: str, data: bytes, limits: ParseLimits) -> dict:
    """The Document fields of an office file, an e-book or a CSV file, by suffix."""
    if suffix in CSV_SUFFIXES:
        return _read_csv(data, suffix, limits)
    kind = suffix[1:].upper()
    archive = checked_zip(data, kind, limits)
    stream = io.BytesIO(data)  # the libraries open the (checked) archive themselves
    if suffix in DOCX_SUFFIXES:
        return _guarded(kind, _read_docx, stream)
    if suffix in PPTX_SUFFIXES:
        return _guarded(kind, _read_pptx, stream)
    if suffix in XLSX_SUFFIXES:
        return _guarded(kind, _read_xlsx, stream, limits)
    if suffix in ODT_SUFFIXES | ODS_SUFFIXES:
        return _guarded(kind, _read_odf, archive, kind, limits)
    if suffix in EPUB_SUFFIXES:
        return _guarded(kind, _read_epub, archive, stream)
    raise _error(f"unsupported file type '{suffix}'")


def _date(value: object) -> str:
    return metadata.normalise_date(value)


# -- Word ----------------------------------------------------------------------------


def _heading_level(style_name: str) -> int | None:
    """The outline level of a Word paragraph style: "Title" 1, "Heading 2" 2; None for body text."""
    name = style_name.strip().lower()
    if name == "title":
        return 1
    match = re.fullmatch(r"heading\s*([1-9])", name)
    return min(6, int(match.group(1))) if match else None


def _read_docx(stream: io.BytesIO) -> dict:
    import docx
    from docx.table import Table

    document = docx.Document(stream)
    layout = Layout()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            layout.table([cell.text for cell in row.cells] for row in block.rows)
            continue
        style = block.style.name if block.style is not None else ""
        level = _heading_level(style or "")
        if level is not None:
            layout.heading(block.text, level)
        else:
            layout.paragraph(block.text)
    props = document.core_properties
    return layout.fields(props.title or "", props.author or "", _date(props.created))


# -- PowerPoint ----------------------------------------------------------------------


def _read_pptx(stream: io.BytesIO) -> dict:
    from pptx import Presentation
    from pptx.enum.shapes import PP_PLACEHOLDER

    deck = Presentation(stream)
    titles = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}
    layout = Layout()
    for number, slide in enumerate(deck.slides, start=1):
        layout.locate("slide", number)
        before = len(layout)
        title_id = None
        for shape in slide.placeholders:
            if shape.placeholder_format.type in titles and shape.has_text_frame and shape.text_frame.text.strip():
                title_id = shape.shape_id
                layout.heading(shape.text_frame.text, 1)
                break
        for shape in _shapes(slide.shapes):
            if title_id is not None and shape.shape_id == title_id:
                continue
            if getattr(shape, "has_table", False) and shape.has_table:
                layout.table([cell.text for cell in row.cells] for row in shape.table.rows)
            elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
                for paragraph in shape.text_frame.paragraphs:
                    layout.paragraph("".join(run.text for run in paragraph.runs) or paragraph.text)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            layout.paragraph(slide.notes_slide.notes_text_frame.text)
        if len(layout) == before:
            layout.locators.pop()  # a slide without text: nothing there to cite
    props = deck.core_properties
    return layout.fields(props.title or "", props.author or "", _date(props.created))


def _shapes(shapes) -> Iterable:
    """Shapes in reading order (top to bottom, then left to right), groups opened."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    def key(shape) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    for shape in sorted(shapes, key=key):
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)
        else:
            yield shape


# -- spreadsheets ---------------------------------------------------------------------


def _cell_limit_error(limits: ParseLimits) -> Exception:
    return _error(f"the spreadsheet has more than {limits.cells:,} cells (set QA_MAX_CELLS to read more)")


def _read_xlsx(stream: io.BytesIO, limits: ParseLimits) -> dict:
    import openpyxl

    # read_only streams the rows instead of building every cell; data_only gives formulas' values.
    book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    layout = Layout()
    cells = 0
    try:
        for sheet in book.worksheets:
            name = _clean(sheet.title)
            rows: list[list[object]] = []
            numbers: list[int] = []
            # The sheet's declared size can be wrong (or hostile): rows are read as they are stored.
            sheet.reset_dimensions()
            for row in sheet.iter_rows():
                cells += len(row)
                if cells > limits.cells:
                    raise _cell_limit_error(limits)
                values = [_cell_text(cell.value) for cell in row]
                if any(values):
                    rows.append(values)
                    stored = next((cell.row for cell in row if getattr(cell, "row", None)), None)
                    numbers.append(stored or (numbers[-1] + 1 if numbers else 1))
            if rows:
                layout.locate("row", numbers[0], name)
                layout.heading(name, 1)
                layout.table(rows, numbers, name)
        props = book.properties
        title, author, created = props.title or "", props.creator or "", props.created
    finally:
        book.close()
    return layout.fields(title, author, _date(created))


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:10] if text.endswith("T00:00:00") else text
    return str(value)


def _read_csv(data: bytes, suffix: str, limits: ParseLimits) -> dict:
    text = decode_text(data)
    delimiter = "\t" if suffix == ".tsv" else ","
    if suffix == ".csv":
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            pass
    rows: list[list[str]] = []
    numbers: list[int] = []
    cells = 0
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            cells += len(row)
            if cells > limits.cells:
                raise _cell_limit_error(limits)
            rows.append(row)
            numbers.append(len(numbers) + 1)
    except csv.Error as exc:
        raise _error(f"malformed CSV at line {reader.line_num}: {exc}") from None
    layout = Layout()
    layout.table(rows, numbers)
    return layout.fields()


# -- OpenDocument text -----------------------------------------------------------------

_ODF = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
}


def _xml(archive: zipfile.ZipFile, name: str):
    """An archive member parsed by lxml, with entities and network access off."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        with archive.open(name) as fh:
            return etree.parse(fh, parser).getroot()
    except KeyError:
        return None


def _read_odf(archive: zipfile.ZipFile, kind: str, limits: ParseLimits) -> dict:
    """An OpenDocument text (ODT) or spreadsheet (ODS): content.xml and meta.xml read with lxml."""
    manifest = _xml(archive, "META-INF/manifest.xml")
    if manifest is not None and manifest.find(".//manifest:encryption-data", _ODF) is not None:
        raise _error(f"{kind} file is encrypted with a password; save an unencrypted copy")
    content = _xml(archive, "content.xml")
    if content is None:
        raise _error(f"{kind} file is corrupt (it has no content.xml)")
    layout = Layout()
    if kind == "ODS":
        body = content.find("office:body/office:spreadsheet", _ODF)
        if body is None:
            raise _error("not an OpenDocument spreadsheet (no office:spreadsheet body)")
        _ods_sheets(body, layout, limits)
    else:
        body = content.find("office:body/office:text", _ODF)
        if body is None:
            raise _error("not an OpenDocument text file (no office:text body; is it a spreadsheet or slides?)")
        _odf_blocks(body, layout)
    meta = _xml(archive, "meta.xml")
    title = author = date = ""
    if meta is not None:
        title = meta.findtext(".//dc:title", "", _ODF)
        author = meta.findtext(".//meta:initial-creator", "", _ODF) or meta.findtext(".//dc:creator", "", _ODF)
        date = _date(meta.findtext(".//meta:creation-date", "", _ODF))
    return layout.fields(title, author, date)


def _ods_sheets(body, layout: Layout, limits: ParseLimits) -> None:
    """Each sheet's rows with their row numbers; repeated rows and columns (ODF's run-length
    form, often a million empty rows to a sheet's end) are expanded only where they hold text."""
    table_ns = f"{{{_ODF['table']}}}"
    cells_read = 0
    for table in body.iter(f"{table_ns}table"):
        name = _clean(table.get(f"{table_ns}name", "")) or "Sheet"
        rows: list[list[str]] = []
        numbers: list[int] = []
        number = 0
        for row in table.iter(f"{table_ns}table-row"):
            repeat = max(1, int(row.get(f"{table_ns}number-rows-repeated", "1") or 1))
            runs: list[tuple[str, int]] = []
            for cell in row:
                if not isinstance(cell.tag, str) or not cell.tag.endswith(("}table-cell", "}covered-table-cell")):
                    continue
                text = " ".join(_odf_text(p) for p in cell.iter(f"{{{_ODF['text']}}}p"))
                runs.append((text, max(1, int(cell.get(f"{table_ns}number-columns-repeated", "1") or 1))))
            while runs and not runs[-1][0].strip():
                runs.pop()  # the empty columns to the sheet's edge
            if not runs:
                number += repeat
                continue
            values = [text for text, count in runs for _ in range(min(count, limits.cells + 1))]
            for _ in range(repeat):
                cells_read += len(values)
                if cells_read > limits.cells:
                    raise _cell_limit_error(limits)
                number += 1
                rows.append(values)
                numbers.append(number)
        if rows:
            layout.locate("row", numbers[0], name)
            layout.heading(name, 1)
            layout.table(rows, numbers, name)


def _odf_name(element) -> tuple[str, str]:
    from lxml import etree

    qname = etree.QName(element)
    return qname.namespace or "", qname.localname


def _odf_blocks(parent, layout: Layout) -> None:
    for child in parent:
        if not isinstance(child.tag, str):
            continue
        ns, name = _odf_name(child)
        if ns == _ODF["text"] and name == "h":
            level = int(child.get(f"{{{_ODF['text']}}}outline-level", "1") or 1)
            layout.heading(_odf_text(child), level)
        elif ns == _ODF["text"] and name == "p":
            layout.paragraph(_odf_text(child))
        elif ns == _ODF["table"] and name == "table":
            rows = []
            for row in child.iter(f"{{{_ODF['table']}}}table-row"):
                cells = row.findall(f"{{{_ODF['table']}}}table-cell", _ODF)
                rows.append([" ".join(_odf_text(p) for p in cell) for cell in cells])
            layout.table(rows)
        elif ns == _ODF["text"] and name in ("list", "list-item", "section", "list-header"):
            _odf_blocks(child, layout)


def _odf_text(element) -> str:
    """A paragraph's text, with ODF's <text:s/>, <text:tab/> and <text:line-break/> as spaces and breaks."""
    parts: list[str] = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            ns, name = _odf_name(child)
            if ns == _ODF["text"] and name == "s":
                parts.append(" " * int(child.get(f"{{{_ODF['text']}}}c", "1") or 1))
            elif ns == _ODF["text"] and name == "tab":
                parts.append("\t")
            elif ns == _ODF["text"] and name == "line-break":
                parts.append("\n")
            elif not (ns == _ODF["text"] and name == "note"):
                parts.append(_odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


# -- EPUB ------------------------------------------------------------------------------

_BLOCKS = {"p", "li", "blockquote", "pre", "dd", "dt", "figcaption", "caption", "address"}
_SKIP = {"script", "style", "head", "nav", "svg", "math", "template"}


def _read_epub(archive: zipfile.ZipFile, stream: io.BytesIO) -> dict:
    if "META-INF/encryption.xml" in archive.namelist():
        raise _error("EPUB is encrypted (DRM-protected); only unprotected e-books can be read")
    import ebooklib
    from ebooklib import epub

    book = epub.read_epub(stream, {"ignore_ncx": True})
    layout = Layout()
    chapter = 0
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        chapter_layout = Layout()
        _html_blocks(item.get_content(), chapter_layout)
        if not chapter_layout.text.strip():
            continue
        chapter += 1
        layout.locate("chapter", chapter)
        _append(layout, chapter_layout)
    title = book.get_metadata("DC", "title")
    creators = book.get_metadata("DC", "creator")
    dates = book.get_metadata("DC", "date")
    return layout.fields(
        title[0][0] if title else "",
        ", ".join(_clean(c[0]) for c in creators if c and c[0]),
        _date(dates[0][0]) if dates else "",
    )


def _append(layout: Layout, part: Layout) -> None:
    """Put `part`'s blocks at the end of `layout`, with their headings."""
    base = len(layout) + (2 if len(layout) else 0)
    layout._block(part.text)
    layout.headings += [Heading(h.start + base, h.end + base, h.level) for h in part.headings]


def _html_blocks(content: bytes, layout: Layout) -> None:
    """The headings, paragraphs and tables of an XHTML chapter, in document order."""
    import lxml.html

    try:
        root = lxml.html.document_fromstring(content)
    except Exception:
        return
    body = root.find("body")
    _html_walk(body if body is not None else root, layout)


def _html_walk(element, layout: Layout) -> None:
    for child in element:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag.split("}")[-1].lower()
        if tag in _SKIP:
            continue
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            layout.heading(child.text_content(), int(tag[1]))
        elif tag in _BLOCKS:
            layout.paragraph(_html_text(child))
        elif tag == "table":
            rows = []
            for row in child.iter("tr"):
                rows.append(
                    [cell.text_content() for cell in row if isinstance(cell.tag, str) and cell.tag in ("td", "th")]
                )
            layout.table(rows)
        else:
            if child.text and child.text.strip():
                layout.paragraph(child.text)
            _html_walk(child, layout)
            if child.tail and child.tail.strip():
                layout.paragraph(child.tail)
            continue
        if child.tail and child.tail.strip():
            layout.paragraph(child.tail)


def _html_text(element) -> str:
    """A paragraph's text: <br> as a line break, other whitespace as spaces."""
    for br in element.iter("br"):
        br.tail = "\n" + (br.tail or "")
    return "\n".join(_clean(line) for line in element.text_content().split("\n"))
