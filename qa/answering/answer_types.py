"""What a question asks for, and whether a sentence holds something of that kind.

No tagger is available offline, so these are plain-text cues: a question's wh-word and the
noun after "what"/"which" give the expected kind of answer; capitalised words, numbers, years
and month names stand for names, quantities and dates in a sentence. The answer scorer weighs
these cues against each other (qa.answering.features); none of them decides alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("person", "date", "number", "place", "thing", "reason")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# The noun after "what"/"which" (or "what kind of"/"which type of") -> the kind it asks for.
_FOCUS_KINDS = {
    "date": _words(
        """
        year years date dates day days month months century centuries decade era period time season
        week age
        """
    ),
    "number": _words(
        """
        number percentage percent amount proportion share size population rate fraction temperature
        distance length height weight price cost speed score
        """
    ),
    "place": _words(
        """
        city cities country countries state states region regions place places continent island
        islands river location area town province county nation capital street building port sea
        ocean mountain district territory site
        """
    ),
    "person": _words(
        """
        person people man woman king queen president leader author writer scientist player team
        company organization organisation group emperor general minister artist composer actor
        member members family dynasty party ruler
        """
    ),
}
_FOCUS_OF = {word: kind for kind, words in _FOCUS_KINDS.items() for word in words}
_MODIFIERS = {"kind", "type", "sort", "form", "part", "name", "one", "of", "the", "a", "an", "two", "main", "other"}
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)

MONTHS = _words("january february march april may june july august september october november december")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b\d{1,2}(st|nd|rd|th) century\b|\b(BC|AD|BCE|CE)\b")
_MONTH = re.compile(r"\b(" + "|".join(m.capitalize() for m in MONTHS) + r")\b")
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|half|quarter)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*|\b[A-Z]{2,}\b")
_PLACE_CUE = re.compile(r"\b(in|at|from|near|to|into|across|throughout|north|south|east|west)\s+(the\s+)?[A-Z]")


@dataclass(frozen=True)
class QuestionKind:
    kind: str  # one of KINDS
    focus: str  # the noun after what/which ("" when there is none), lower case


def question_kind(question: str) -> QuestionKind:
    """The kind of answer a question asks for, from its wh-word and focus noun."""
    words = [w.lower() for w in _WORD.findall(question)]
    if not words:
        return QuestionKind("thing", "")
    wh_at = next((i for i, w in enumerate(words) if w in _WH), None)
    if wh_at is None:
        return QuestionKind("thing", "")
    wh = words[wh_at]
    rest = words[wh_at + 1 :]
    if wh in ("who", "whom", "whose"):
        return QuestionKind("person", "")
    if wh == "when":
        return QuestionKind("date", "")
    if wh == "where":
        return QuestionKind("place", "")
    if wh == "why":
        return QuestionKind("reason", "")
    if wh == "how":
        nxt = rest[0] if rest else ""
        if nxt in ("many", "much", "long", "old", "far", "large", "big", "tall", "high", "often", "deep", "fast"):
            return QuestionKind("date" if nxt in ("long", "old") and _mentions_time(rest) else "number", "")
        return QuestionKind("reason", "")
    # what / which X: X is the first word after it that is not a modifier ("what kind of X");
    # "what did Russia deploy" asks about the verb's object, and has no X.
    if not rest or rest[0] in _AUXILIARIES:
        return QuestionKind("thing", "")
    focus = next((w for w in rest if w not in _MODIFIERS), "")
    if focus in _FOCUS_OF:
        return QuestionKind(_FOCUS_OF[focus], focus)
    return QuestionKind("thing", focus)


_WH = {"who", "whom", "whose", "when", "where", "why", "how", "what", "which"}
_AUXILIARIES = _words(
    """
    is was are were did does do has had have can could will would should may might must be been
    """
)


def _mentions_time(words: list[str]) -> bool:
    return any(w in ("ago", "years", "year", "since", "until", "before", "after", "age") for w in words)


def dates(text: str) -> list[str]:
    """The years, centuries, eras and month names a text mentions (lower case)."""
    return [m.group(0).lower() for pattern in (_YEAR, _MONTH) for m in pattern.finditer(text)]


def numbers(text: str) -> list[str]:
    return [m.group(0).lower() for m in _NUMBER.finditer(text)]


def capitalised(text: str) -> list[str]:
    """Capitalised words other than the sentence's first word: names, places, organisations."""
    out = []
    for match in _CAPITALISED.finditer(text):
        if match.start() == 0 or text[: match.start()].rstrip().endswith((".", "!", "?", ":", '"', "“")):
            continue
        out.append(match.group(0).lower())
    return out


def has_place_cue(text: str) -> bool:
    return bool(_PLACE_CUE.search(text))
