"""Feedback records from a conversation's turns: what was asked and shown, and the reader's verdict.

Every path (web chat, `qa chat`, REST, MCP) builds its records here from the server's own
`Conversation`, so a record holds what the reader was shown, never what a client claims.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from qa.answering.smalltalk import small_talk
from qa.conversation import Conversation
from qa.errors import QAError
from qa.storage.feedback import VERDICTS, FeedbackRecord, ShownPassage
from qa.types import Turn

if TYPE_CHECKING:
    from qa.engine import QA

log = logging.getLogger("qa.feedback")


def turn_record(
    conversation: Conversation, number: int, kind: str, rank: int | None = None, channel: str = ""
) -> FeedbackRecord:
    """The record of the conversation's turn `number` (from 1); QAError for a turn or rank it lacks."""
    turns = conversation.turns
    if not isinstance(number, int) or not 1 <= number <= len(turns) or turns[number - 1].answer is None:
        raise QAError(f"there is no answer {number} in this conversation to give feedback on")
    turn: Turn = turns[number - 1]
    answer = turn.answer
    assert answer is not None
    shown = tuple(ShownPassage(p.doc_id, p.start, p.end, p.rank) for p in answer.passages)
    if kind == "answered" and rank not in {p.rank for p in shown}:
        ranks = ", ".join(str(p.rank) for p in shown)
        raise QAError(
            f"passage {rank} was not shown with that answer (shown: {ranks})"
            if shown
            else "that answer showed no passage"
        )
    return FeedbackRecord(
        kind=kind,
        question=turn.question,
        searched=turn.searched,
        history=tuple(t.question for t in turns[: number - 1]),
        passages=shown,
        answer=answer.answer,
        rank=rank,
        index_version=turn.version,
        channel=channel,
    ).checked()


def record_asked(engine: QA, conversation: Conversation, channel: str) -> None:
    """Keep the conversation's last turn as an "asked" record (when feedback is on); never fails the answer."""
    store = engine.feedback
    if store is None or not conversation.turns or conversation.turns[-1].answer is None:
        return
    if small_talk(conversation.turns[-1].question) is not None:
        return  # "thanks!" asks nothing of the corpus
    try:
        store.add(turn_record(conversation, len(conversation.turns), "asked", channel=channel))
    except QAError as exc:
        log.warning("the question was answered but not recorded: %s", exc)


def record_verdict(
    engine: QA, conversation: Conversation, number: int, verdict: str, rank: int | None = None, channel: str = ""
) -> FeedbackRecord:
    """Keep a reader's verdict on answer `number`; QAError when feedback is off or the input is wrong."""
    store = engine.feedback
    if store is None:
        raise QAError("feedback is switched off on this server (QA_FEEDBACK=off)")
    if verdict not in VERDICTS:
        raise QAError(f"the verdict must be one of {', '.join(VERDICTS)} (got {verdict!r})")
    record = turn_record(conversation, number, verdict, rank, channel)
    store.add(record)
    return record


def answers_now(engine: QA, record: FeedbackRecord) -> bool:
    """Whether the current index finds passages for a question an older one found nothing for."""
    try:
        return engine.ask(record.question, searched_query=record.searched).found
    except QAError:
        return False
