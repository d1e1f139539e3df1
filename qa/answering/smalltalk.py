"""Chat turns that are not questions about the corpus: greetings, thanks, goodbyes, questions
about the assistant itself and requests to write something.

A chat gets these every day ("hello", "thanks, that's all!", "are you a robot?", "write me a
poem about the sea"). Searched like questions, they can land on a passage that happens to share
a word ("Thanks to numerous musical venues ...") and be answered from it. They are recognised
here instead, by patterns that must cover the whole message, and get a short reply with no
passages, so they count as "nothing found" wherever answers are measured. A question that only
contains such words ("How do I say thank you in Korean?", "How can you find the absolute age of
a rock?") is left to the search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HELP = (
    "I answer questions from the documents in this corpus, with the passages that support each "
    "answer cited. Ask about their subject, or 'what documents are there?' for the list."
)
REPLIES = {
    "greeting": "Hello. " + HELP,
    "thanks": "You're welcome. Ask another question about the documents whenever you like.",
    "farewell": "Goodbye.",
    "assistant": HELP,
    "request": "I only answer from the documents in this corpus and do not write new text. " + HELP,
}

# What a request to write something asks for (a summary or an answer is searched like a question).
_CREATIVE = r"(?:poem|poems|haiku|limerick|song|story|stories|joke|jokes|essay|sonnet|rap|riddle|letter|email|speech)"
# Greetings and thanks in the languages a reader of a Russia-Japan journal may well type.
_HELLO = r"(?:hola|bonjour|salut|hallo|ciao|privet|zdravstvuyte|konnichiwa|konnichi wa|привет|здравствуйте|こんにちは)"
_THANKS = r"(?:merci|gracias|danke|grazie|spasibo|arigato|arigatou|спасибо|ありがとう(?:ございます)?)"
_NAME = r"(?:qa|bot|assistant|there|everyone|all|again|friend)"
_PATTERNS = {
    "greeting": (
        rf"(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening|day)|{_HELLO})(?: {_NAME})?",
        r"how are you(?: doing)?(?: today)?",
        r"(?:what's up|whats up|sup)",
    ),
    "thanks": (
        r"(?:(?:ok|okay|great|perfect|cool|nice|good|brilliant|excellent)\W*)?"
        rf"(?:thanks?|thank you|thank u|thx|ty|cheers|much appreciated|many thanks|{_THANKS})"
        r"(?: (?:a lot|so much|very much|again|for (?:the|your) (?:help|answer|answers|information|info)))?"
        r"(?:\W*(?:that's|that is|thats) (?:all|it|everything|great|helpful|perfect))?",
        r"(?:that's|that is|thats) (?:all|it|everything|great|helpful|perfect)(?: for now)?(?:\W*thanks?)?",
    ),
    "farewell": (rf"(?:bye|goodbye|good bye|bye bye|see you|see ya|farewell|good night)(?: {_NAME}| later| soon)?",),
    "assistant": (
        r"(?:who|what) are you",
        r"are you (?:a |an )?(?:robot|bot|human|person|machine|computer|ai|real|chatgpt|alive|sentient)",
        r"what(?:'s| is) your (?:name|favou?rite \w+(?: \w+)?|purpose|job)",
        r"what (?:can|do) you do",
        r"how do(?:es)? (?:you|this|this thing|this chat) work",
        r"(?:can|could) you help(?: me)?",
        r"help(?: me)?",
    ),
    "request": (
        rf"(?:please )?(?:(?:can|could|would|will) you (?:please )?)?(?:write|compose|make up|create|generate) "
        rf"(?:me |us )?(?:a|an|some|another) (?:\w+ )?{_CREATIVE}\b.*",
        r"(?:please )?(?:(?:can|could|would|will) you (?:please )?)?(?:tell|give) (?:me|us) (?:a|an|another|some) "
        r"(?:\w+ )?(?:joke|jokes|riddle|story|poem|fun fact)\b.*",
    ),
}
_COMPILED = tuple(
    (kind, re.compile(rf"^(?:{pattern})$", re.IGNORECASE))
    for kind, patterns in _PATTERNS.items()
    for pattern in patterns
)
_EDGES = re.compile(r"^[\s\W_]+|[\s\W_]+$")  # punctuation, emoji and space around the words


@dataclass(frozen=True)
class SmallTalk:
    kind: str  # "greeting", "thanks", "farewell", "assistant" or "request"
    reply: str


def small_talk(message: str) -> SmallTalk | None:
    """The small talk `message` is, with its reply; None for anything else (a question to search)."""
    text = " ".join(_EDGES.sub("", message).split()).replace("’", "'")
    if not text or len(text) > 200:
        return None
    for kind, pattern in _COMPILED:
        if pattern.match(text):
            return SmallTalk(kind, REPLIES[kind])
    return None
