"""Follow-up questions without a language model: carry the conversation's key terms over.

"and how did Japan respond?" after "what did Russia deploy to the Kurils?" has nothing to
search for on its own. `followup_query` notices such a question (it opens with "and",
"what about"…, leans on a pronoun, or has almost no content words) and returns the text to
search instead: the question followed by the previous query's key terms it lacks, e.g.
"how did Japan respond? Russia deploy Kurils". A question that stands on its own is
searched as typed (None is returned).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Carried terms are capped so that a long chain of follow-ups cannot drift or grow.
MAX_CARRIED_TERMS = 8
# A question with at least this many content words stands on its own unless it opens
# like a follow-up ("and…", "what about…").
STANDALONE_CONTENT_WORDS = 5
# With no opener and no pronoun, a question this short (in content words) still needs context.
SHORT_CONTENT_WORDS = 2
# A topic shift ("what about …") with this many content words of its own stands on its own.
SHIFT_STANDS_ALONE = 3

_TOKEN = re.compile(r"\w(?:[\w'’\-.]*\w)?")

# Openers that make a question continue the previous one. Longest first.
_OPENERS = (
    "and what about",
    "and how about",
    "but what about",
    "what about",
    "how about",
    "what else",
    "anything else",
    "tell me more",
    "and",
    "but",
    "also",
    "so",
    "then",
    "or",
    "plus",
)


# Openers that put a new subject in the place of the previous one.
_SHIFTS = ("and what about", "and how about", "but what about", "what about", "how about")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words of a referent's name carried (a name's last words say who it is).
MAX_NAME_WORDS = 2
# Pronouns that point back at a person.
_PERSONS = _words("he him his himself she her hers herself")
# Two or more capitalised words in a row: a person's or a place's name.
_NAME = re.compile(r"\b[A-Z][\w’'\-]+(?:\s+(?:[A-Z][\w’'\-]+|de|von|van|bin|al))*\s+[A-Z][\w’'\-]+")


def names_in(sentence: str, title: str = "") -> list[str]:
    """The names (two or more capitalised words) in a sentence, outside the document's title."""
    folded = title.casefold()
    names = [re.sub(r"^(?:The|A|An)\s+", "", m.group(0)) for m in _NAME.finditer(sentence)]
    return [name for name in names if " " in name and name.casefold() not in folded]


# Words that point back at something said before.
_ANAPHORA = _words(
    """
    it its it's itself they them their theirs themselves this these those he him his
    she her hers there such same latter former afterwards
    """
)
_STOPWORDS = _words(
    """
    a about above after again against all also am an and any anything are as at be because been
    before being below between both but by can could did do does doing done down during each
    else even ever every few for from further get got had has have having here how however i
    if in into is it its it's itself just let me more most much my no nor not now of off on
    once only or other our ours out over own please really same say says should so some
    something still such tell than that the their theirs them then there these they this
    those through to too under until up us very was we were what whatever when where whether
    which while who whom whose why will with would you your yours
    happen happened happening know think mean
    """
)


def key_terms(text: str) -> list[str]:
    """Content words of `text` in order, without repeats (case-insensitive), as written."""
    seen: set[str] = set()
    terms: list[str] = []
    for token in _TOKEN.findall(text):
        lowered = token.lower()
        if lowered in _STOPWORDS or lowered in _ANAPHORA or (len(token) < 2 and not token.isdigit()):
            continue
        norm = _normalise(token)
        if norm in seen:
            continue
        seen.add(norm)
        terms.append(token)
    return terms


def is_followup(question: str) -> bool:
    """Whether `question` leans on the conversation before it."""
    words = [t.lower() for t in _TOKEN.findall(question)]
    if not words:
        return False
    content = key_terms(question)
    if _opener(words):
        return True
    if len(content) >= STANDALONE_CONTENT_WORDS:
        return False
    if any(w in _ANAPHORA for w in words):
        return True
    return len(content) <= SHORT_CONTENT_WORDS


def followup_query(
    question: str, previous: Sequence[str], max_terms: int = MAX_CARRIED_TERMS, referents: Sequence[str] = ()
) -> str | None:
    """The text to search for `question` given the earlier searched queries (oldest first).

    `referents` are the people and things the previous answer named (`names_in`): a question
    that points back at a person ("what is his position?") carries them first.
    None when the question stands on its own, when there is no earlier turn, or when it
    already holds every key term of the previous query.
    """
    question = " ".join(question.split())
    if not question or not previous or not is_followup(question):
        return None
    last = next((p for p in reversed(previous) if p and p.strip()), "")
    if not last:
        return None
    tokens = _TOKEN.findall(question)
    words = [t.lower() for t in tokens]
    present = {_normalise(t) for t in tokens}
    terms = key_terms(last)
    own = key_terms(question)
    shift = _opener(words) in _SHIFTS
    if shift and len(own) >= SHIFT_STANDS_ALONE:
        return None  # "what about China, how would it react?" says what it asks
    if shift and own:
        # "what about China?" names a new subject in the place of the old one: the previous
        # question's subject (its first name, else its first term) is not carried.
        subject = next((t for t in terms if t[:1].isupper()), terms[0] if terms else "")
        terms = [t for t in terms if t != subject]
    if _PERSONS.intersection(words) and referents:
        # The name the answer led with (its last words: "Carl Wilhelm Scheele" -> "Wilhelm Scheele").
        names = _TOKEN.findall(referents[0])[-MAX_NAME_WORDS:]
        folded = {_normalise(n) for n in names}
        terms = names + [t for t in terms if _normalise(t) not in folded]
    carried = [t for t in terms if _normalise(t) not in present][:max_terms]
    if not carried:
        return None
    return f"{_strip_opener(question)} {' '.join(carried)}"


def _opener(words: list[str]) -> str:
    for opener in _OPENERS:
        parts = opener.split()
        # "what else?" is a follow-up on its own; a lone "and" or "so" is not a question.
        if words[: len(parts)] == parts and (len(parts) > 1 or len(words) > 1):
            return opener
    return ""


def _strip_opener(question: str) -> str:
    """'and how did Japan respond?' -> 'how did Japan respond?'; keeps 'what about China?'."""
    match = re.match(r"\s*(?:and|but|also|so|then|plus)\b[\s,]*(?=\w)", question, flags=re.I)
    return question[match.end() :] if match else question


def _normalise(token: str) -> str:
    """Case-folded, without a possessive or a plural 's', so 'Kuril' matches 'Kurils'."""
    word = token.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word
