"""A conversation with the corpus: its turns, and what a follow-up question searches.

The web chat, `qa chat`, the REST API's `history` and the MCP `ask` tool all hold their
conversation here, so that "and how did Japan respond?" searches the same text everywhere:
the question, cleaned as the engine cleans it, then `followup_query` over the text the
earlier turns searched (the last `CONTEXT_TURNS` of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qa.answering.answer import answer_sentences, sentence_key
from qa.answering.followup import followup_query, names_in
from qa.answering.smalltalk import small_talk
from qa.errors import QAError
from qa.types import Answer, Turn

if TYPE_CHECKING:
    from qa.engine import QA

_WHO = re.compile(r"\bwho(?:m|se)?\b", re.I)
# How many earlier turns a follow-up may lean on.
CONTEXT_TURNS = 5
# The most earlier questions a caller may hand over as a conversation's history.
MAX_HISTORY = 100
# How many of the last earlier questions from_history answers again.
ANSWERED_AGAIN = 2


@dataclass
class Conversation:
    """The turns so far, oldest first."""

    turns: list[Turn] = field(default_factory=list)

    @property
    def answered(self) -> list[Turn]:
        return [turn for turn in self.turns if turn.answer is not None]

    def recent_queries(self) -> list[str]:
        """What the last turns searched, oldest first: the context a follow-up can carry."""
        turns = [turn for turn in self.turns if small_talk(turn.question) is None]  # "thanks" carries no topic
        return [turn.searched for turn in turns[-CONTEXT_TURNS:]]

    def searched_query(self, engine: QA, question: str, use_context: bool = True) -> str | None:
        """The text to search for `question` after these turns (None: the question as typed)."""
        if not use_context or not self.turns:
            return None
        cleaned, _ = engine.clean_question(question)
        return followup_query(cleaned, self.recent_queries(), referents=self.referents())

    def referents(self) -> list[str]:
        """The names the last answer led with (its first sentence), for "he", "his", "her"...: only
        after a "who" question, whose answer is the person a pronoun then means (otherwise the
        person is named in the question, whose terms are carried anyway)."""
        answered = [t for t in self.answered if small_talk(t.question) is None]
        if not answered or not answered[-1].answer.passages or not _WHO.search(answered[-1].question):
            return []
        answer = answered[-1].answer
        sentences = answer_sentences(answer)
        return names_in(sentences[0], answer.passages[0].title) if sentences else []

    def ask(
        self,
        engine: QA,
        question: str,
        k: int = 5,
        mode: str = "hybrid",
        *,
        use_context: bool = True,
        doc: str | Sequence[str] | None = None,
        author: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
    ) -> Answer:
        """Answer `question` in this conversation and keep the turn; QAError for bad input."""
        searched = self.searched_query(engine, question, use_context)
        previous = self.answered[-1].answer if use_context and self.answered else None
        answer = engine.ask(
            question,
            k=k,
            mode=mode,
            doc=list(doc) if doc is not None and not isinstance(doc, str) else doc,
            author=author,
            date_from=date_from,
            date_to=date_to,
            searched_query=searched,
            shown_before=[sentence_key(s) for s in answer_sentences(previous)] if previous else (),
        )
        # `ask` switches to a newly published index before it searches, not after: this is the one that answered.
        version = engine.reader.name
        self.turns.append(Turn(answer.question, answer.searched_query or answer.question, answer, version))
        return answer

    def remember(self, engine: QA, question: str) -> Turn:
        """Add an earlier question without answering it (a conversation handed over by a client)."""
        cleaned, _ = engine.clean_question(question)
        carried = followup_query(cleaned, self.recent_queries()) if self.turns else None
        searched = engine.clean_question(carried)[0] if carried else cleaned
        turn = Turn(cleaned, searched)
        self.turns.append(turn)
        return turn

    @classmethod
    def from_history(cls, engine: QA, questions: Iterable[object]) -> Conversation:
        """The conversation of these earlier questions (oldest first), as the chat would have had it.

        The last two are answered again (with ask's defaults): what a follow-up leans on besides
        the questions (the names its answer led with, the sentences it showed) comes from the last
        answer, which in turn set aside the sentences of the one before it.
        """
        questions = list(questions)
        if len(questions) > MAX_HISTORY:
            raise QAError(f"history holds at most {MAX_HISTORY} earlier questions (got {len(questions)})")
        conversation = cls()
        for i, question in enumerate(questions):
            if not isinstance(question, str):
                raise QAError(f"history[{i}] must be a question as text (got {type(question).__name__})")
            try:
                if i >= len(questions) - ANSWERED_AGAIN:
                    conversation.ask(engine, question)
                else:
                    conversation.remember(engine, question)
            except QAError as exc:
                raise QAError(f"history[{i}]: {exc}") from None
        return conversation
