"""Which metadata a file carries can be trusted: placeholder titles, print dates, PDF headings.

The readers take a document's title, author and date from, first set wins:

    a sidecar NAME.EXT.yaml beside the file
    > front matter (.md, .txt)
    > the format's own metadata (HTML meta tags; a PDF's Info title, author, creation date)
    > the text (.md, .txt: the first heading; PDF: the first heading of the first page, then its first line)
    > the file name (title only).

Format metadata is often junk: word processors and browsers fill the PDF title with a file name
("oxygen.html", "Microsoft Word - report.docx") or a placeholder ("untitled"), and a browser
printing a page stamps the day it printed as the creation date. These functions say when to
pass over such values. They are pure: text and numbers in, text out.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence

# File names: what a tool puts in the title when it has nothing better.
_FILE_NAME = re.compile(
    r"\.(html?|xhtml|php|aspx?|docx?|odt|rtf|pages|pdf|txt|md|tex|pptx?|odp|key|xlsx?|ods|csv|indd|ps|eps)\s*$",
    re.I,
)
# "Microsoft Word - report", "Microsoft PowerPoint - slides": Office printing to PDF.
_OFFICE_PREFIX = re.compile(r"^microsoft\s+(word|powerpoint|excel|publisher|visio)\s*-\s*", re.I)
_PLACEHOLDER_TITLE = re.compile(
    r"^(untitled|untitled document|new document|document|doc|title|no title|none|null|nil|n/?a|unknown|"
    r"presentation|slide|print|blank|page|pdf|file|draft|test|temp|tmp|default)[\s_\-.#]*\d*$",
    re.I,
)
_URL = re.compile(r"^(https?|file|ftp|about|data|blob):|^www\.", re.I)
_PLACEHOLDER_AUTHOR = re.compile(
    r"^(unknown|user|admin|administrator|owner|author|root|default|none|null|n/?a|guest)[\s_\-.#]*\d*$", re.I
)
# A line that is no title: a date or time, a page number ("1/12", "Page 3"), a URL.
_NOT_A_TITLE_LINE = re.compile(
    r"^(page\s*)?\d+\s*(/|of)\s*\d+$|^\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}\b|^\d{1,2}:\d{2}|^page\s+\d+$", re.I
)
# PDF producers and creators that mean "a browser or print driver printed this": the creation
# date is then the day it was printed, not the day the text was written.
_PRINTED = re.compile(
    r"skia/pdf|chrom(e|ium)|mozilla|firefox|safari|webkit|wkhtmltopdf|print\s*to\s*pdf|weasyprint|prince",
    re.I,
)
# PDF 1.0 appeared in 1993: an earlier creation date is a broken clock.
_FIRST_PDF_YEAR = 1993
TITLE_MAX_CHARS = 200
FIRST_LINE_MAX_CHARS = 120
HEADING_RATIO = 1.15  # a heading's font is at least this much larger than the body text's


def clean(value: object) -> str:
    """Text with control characters removed and white space collapsed; "" for None."""
    if value is None:
        return ""
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in str(value))
    return " ".join(text.split())


def is_placeholder_title(title: str) -> bool:
    """True for titles that name a file or a template rather than the document."""
    text = clean(title)
    letters = sum(ch.isalpha() for ch in text)
    if letters < 2:
        return True  # empty, white space, punctuation, "1", "-"
    if _OFFICE_PREFIX.match(text) or _URL.match(text) or _PLACEHOLDER_TITLE.match(text):
        return True
    if _FILE_NAME.search(text):
        return True
    return "\\" in text or text.startswith("/")  # a path: C:\Users\..., /home/...


def is_placeholder_author(author: str) -> bool:
    text = clean(author)
    return sum(ch.isalpha() for ch in text) < 2 or bool(_PLACEHOLDER_AUTHOR.match(text))


def printed_by_browser(producer: str, creator: str) -> bool:
    """True when a PDF's producer or creator is a browser or print-to-PDF driver."""
    return bool(_PRINTED.search(f"{producer} {creator}"))


def pdf_date(raw: str, today: dt.date | None = None) -> str:
    """ISO prefix of a PDF date string ("D:20201208134501+01'00'" -> "2020-12-08"); "" if implausible."""
    text = clean(raw)
    digits = text[2:] if text.startswith("D:") else text
    match = re.match(r"(\d{4})(\d{2})?(\d{2})?", digits)
    if not match:
        return ""
    year = int(match.group(1))
    today = today or dt.date.today()
    if not _FIRST_PDF_YEAR <= year <= today.year + 1:
        return ""
    if match.group(2) is None:
        return f"{year:04d}"
    month = int(match.group(2))
    if not 1 <= month <= 12:
        return f"{year:04d}"
    if match.group(3) is None:
        return f"{year:04d}-{month:02d}"
    try:
        day = dt.date(year, month, int(match.group(3)))
    except ValueError:
        return f"{year:04d}-{month:02d}"
    if day > today + dt.timedelta(days=1):
        return ""
    return day.isoformat()


def heading(runs: Sequence[tuple[str, float]]) -> str:
    """The first heading among a page's text runs (text, font size): text set larger than the body.

    The body size is the one that carries the most characters; a heading is a run of consecutive
    pieces at least HEADING_RATIO times larger (a title broken over two lines stays whole).
    """
    sized = [(clean(text), float(size)) for text, size in runs if clean(text) and size and size > 0]
    if not sized:
        return ""
    weight: dict[float, int] = {}
    for text, size in sized:
        key = round(size, 1)
        weight[key] = weight.get(key, 0) + len(text)
    body = max(weight, key=lambda s: (weight[s], -s))
    groups: list[list[str]] = []
    previous_large = False
    for text, size in sized:
        large = size >= body * HEADING_RATIO
        if large and previous_large:
            groups[-1].append(text)
        elif large:
            groups.append([text])
        previous_large = large
    for group in groups:
        candidate = clean(" ".join(group))
        if len(candidate) <= TITLE_MAX_CHARS and _title_like(candidate):
            return candidate
    return ""


def first_line(text: str) -> str:
    """The first line of text that could be a title, cut at a word to FIRST_LINE_MAX_CHARS."""
    for line in text.splitlines():
        candidate = clean(line)
        if not _title_like(candidate):
            continue
        if len(candidate) > FIRST_LINE_MAX_CHARS:
            cut = candidate[:FIRST_LINE_MAX_CHARS].rsplit(" ", 1)[0]
            candidate = cut.rstrip(" ,;:-") + "…"
        return candidate
    return ""


def _title_like(text: str) -> bool:
    return (
        sum(ch.isalpha() for ch in text) >= 2
        and not _NOT_A_TITLE_LINE.match(text)
        and not _URL.match(text)
        and not is_placeholder_title(text)
    )


_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def normalise_date(value: object) -> str:
    """ISO 8601 prefix (YYYY, YYYY-MM, YYYY-MM-DD) from a YAML date or string; "" if unknown."""
    if value is None or value == "":
        return ""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()[:10]
    text = str(value).strip()
    head = text[:10]
    if _ISO_DATE.match(head):
        return head
    if _ISO_DATE.match(text[:7]):
        return text[:7]
    if _ISO_DATE.match(text[:4]):
        return text[:4]
    return ""
