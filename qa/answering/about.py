"""Questions about the documents themselves, answered from the catalog with the document cited.

"who wrote X", "when was X published", "which documents discuss Y", "what documents are
there": the text of a passage rarely says who wrote it, but the catalog (title, author, date
from front matter or file metadata) does. X must name a document's title convincingly;
otherwise the question is answered from the text like any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def _any(*phrases: str) -> str:
    return "(?:" + "|".join(p.replace(" ", r"\s+") for p in phrases) + ")"


_SUBJECT = r"\s+(?P<subject>.+?)"
_END = r"\s*[?.!]*\s*$"
_PLURAL = _any("documents", "articles", "entries", "texts", "papers", "sources", "files")
_SINGULAR = _any("document", "article", "entry", "text", "paper", "source", "file")
_DISCUSS = ("discuss", "mention", "cover", "talk about", "deal with", "address", "concern", "describe", "refer to")
_PATTERNS = (
    (
        "author",
        "^"
        + _any("who", "which author", "what author")
        + r"\s+"
        + _any("wrote", "authored", "penned", "is the author of", "was the author of")
        + _SUBJECT
        + _END,
    ),
    ("author", r"^who\s+(?:is|was)" + _SUBJECT + r"\s+" + _any("written", "authored", "penned") + r"\s+by" + _END),
    ("author", "^" + _any("what is", "what's") + r"\s+the\s+(?:name of the\s+)?author\s+of" + _SUBJECT + _END),
    (
        "date",
        "^"
        + _any("when", "what year", "in what year", "what date", "on what date")
        + r"\s+(?:was|were|is)"
        + _SUBJECT
        + r"\s+"
        + _any("published", "written", "released", "dated", "posted", "issued")
        + _END,
    ),
    ("date", "^" + _any("what is", "what's") + r"\s+the\s+(?:publication\s+)?date\s+of" + _SUBJECT + _END),
    ("documents", r"^(?:which|what)\s+" + _PLURAL + r"\s+" + _any(*_DISCUSS, "are about") + _SUBJECT + _END),
    (
        "documents",
        r"^(?:which|what)\s+"
        + _SINGULAR
        + r"\s+"
        + _any(*(d.replace(" ", "s ", 1) if " " in d else d + "s" for d in _DISCUSS), "is about")
        + _SUBJECT
        + _END,
    ),
    (
        "list",
        r"^(?:what|which)\s+"
        + _PLURAL
        + r"\s+"
        + _any("are there", "are in the corpus", "do you have", "can i ask about", "are indexed")
        + _END,
    ),
    ("list", r"^(?:list|show)\s+(?:me\s+)?(?:all\s+)?(?:the\s+)?" + _PLURAL + _END),
    (
        "list",
        r"^how many\s+"
        + _PLURAL
        + r"\s+"
        + _any("are there", "are in the corpus", "do you have", "are indexed")
        + _END,
    ),
)
_COMPILED = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _PATTERNS)
_LEADING = re.compile(r"^(?:the\s+(?:article|document|entry|text|paper|piece|journal entry)\s+)", re.IGNORECASE)
_QUOTES = "\"'“”‘’«»"


@dataclass(frozen=True)
class AboutQuestion:
    kind: str  # "author", "date", "documents" (which documents discuss the subject) or "list"
    subject: str  # the document named, or the topic; "" for "list"


def parse_about(question: str) -> AboutQuestion | None:
    """The catalog question this is, if it is one."""
    text = " ".join(question.split())
    for kind, pattern in _COMPILED:
        match = pattern.match(text)
        if match:
            subject = match.groupdict().get("subject") or ""
            subject = _LEADING.sub("", subject.strip().strip(_QUOTES)).strip().strip(_QUOTES)
            return AboutQuestion(kind, subject)
    return None


def match_title(subject: str, titles: Sequence[tuple[str, str]], terms: Callable[[str], list[str]]) -> str | None:
    """The doc_id whose title the subject names: most of the subject's terms stand in the title."""
    wanted = set(terms(subject))
    if not wanted:
        return None
    best, best_key = None, (0, 0.0)
    for doc_id, title in titles:
        have = set(terms(title))
        shared = sum(1 for t in wanted if any(_same_word(t, h) for h in have))
        if not shared:
            continue
        share_of_subject = shared / len(wanted)
        share_of_title = shared / len(have)
        if share_of_subject >= 0.6 and (shared >= 2 or share_of_title >= 0.5):
            key = (shared, share_of_title)
            if key > best_key:
                best, best_key = doc_id, key
    return best


def _same_word(a: str, b: str) -> bool:
    """Stems of one word: equal, sharing their first five letters, or one the start of the other ("asia", "asian")."""
    if a == b:
        return True
    if len(a) >= 5 and len(b) >= 5:
        return a[:5] == b[:5]
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short)


def mention(text: str, name: str) -> int | None:
    """Where `text` first names `name` (its words in order, whole words, any case), or None.

    An author field of several people ("A and B", "A, B") is looked for whole, then person by
    person, so that "who wrote X" can cite the sentence of the text that names the author."""
    names = [name, *(part for part in re.split(r"\s*(?:,|;|&|\band\b)\s*", name) if part != name)]
    for candidate in names:
        words = candidate.split()
        if not words:
            continue
        found = re.search(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)", text, re.IGNORECASE)
        if found:
            return found.start()
    return None


def author_sentence(title: str, author: str, publisher: str) -> str:
    if author:
        return f"{title} was written by {author}."
    if publisher:
        return f"The catalog does not record who wrote {title}; it was published by {publisher}."
    return f"The catalog does not record who wrote {title}."


def date_sentence(title: str, date: str) -> str:
    if date:
        return f"{title} is dated {date}."
    return f"The catalog has no date for {title}."


def documents_sentence(subject: str, titles: Sequence[tuple[str, int]]) -> str:
    """'2 documents discuss X: A [1]; B [3].' from (title, marker) pairs, one per document."""
    listed = "; ".join(f"{title} [{marker}]" for title, marker in titles)
    if len(titles) == 1:
        return f"One document discusses {subject}: {listed}."
    return f"{len(titles)} documents discuss {subject}: {listed}."


def list_sentence(count: int, titles: Sequence[tuple[str, int]]) -> str:
    listed = "; ".join(f"{title} [{marker}]" for title, marker in titles)
    more = f" (the first {len(titles)} shown)" if len(titles) < count else ""
    return f"The corpus holds {count} document{'s' if count != 1 else ''}{more}: {listed}."
