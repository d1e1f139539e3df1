"""Readers' feedback: the store (beside the index, through rebuilds, on both stores), the records
built from a conversation, and `qa chat`'s /good, /bad, /answered N."""

from __future__ import annotations

import io

import pytest

from qa.answering.conversation import Conversation
from qa.answering.feedback import record_asked, record_verdict, turn_record
from qa.chat import TerminalChat
from qa.config import Settings
from qa.engine import open_index
from qa.errors import QAError
from qa.storage.feedback import FILE_NAME, FeedbackRecord, ShownPassage, check_since

QUESTION = "What did Russia deploy to the Kuril islands?"
FOLLOW_UP = "and how did Japan respond?"


def test_records_survive_a_rebuild_on_each_store(store_settings):
    engine = open_index(settings=store_settings)
    conversation = Conversation()
    conversation.ask(engine, QUESTION, k=3)
    record_asked(engine, conversation, "api")
    conversation.ask(engine, FOLLOW_UP, k=3)
    record_asked(engine, conversation, "api")
    answered = record_verdict(engine, conversation, 2, "answered", rank=2, channel="api")
    assert answered.history == (QUESTION,) and answered.rank == 2 and answered.searched != FOLLOW_UP
    assert answered.index_version == engine.reader.name
    first = conversation.turns[1].answer.passages
    assert answered.passages == tuple(ShownPassage(p.doc_id, p.start, p.end, p.rank) for p in first)
    engine.update(rebuild=True)
    engine.refresh()
    record_verdict(engine, conversation, 1, "bad", channel="api")
    again = open_index(settings=store_settings)  # another process, after the rebuild
    records = again.feedback.records()
    assert [r.kind for r in records] == ["asked", "asked", "answered", "bad"]
    assert records[2] == answered.__class__(**{**answered.__dict__, "id": records[2].id})
    assert records[3].question == QUESTION and records[3].history == ()
    assert [r.kind for r in again.feedback.records(kinds=["bad", "answered"])] == ["answered", "bad"]
    assert again.feedback.records(since="2999-01-01") == []
    if store_settings.store == "local":
        assert (store_settings.index_dir / FILE_NAME).is_file()


def test_feedback_off_records_nothing(settings):
    engine = open_index(settings=settings.with_(feedback="off"))
    conversation = Conversation()
    conversation.ask(engine, QUESTION, k=2)
    record_asked(engine, conversation, "web")
    with pytest.raises(QAError, match="QA_FEEDBACK=off"):
        record_verdict(engine, conversation, 1, "good")
    assert not (settings.index_dir / FILE_NAME).exists()
    with pytest.raises(QAError, match="QA_FEEDBACK must be on or off"):
        Settings.from_env({"QA_FEEDBACK": "maybe"})


@pytest.mark.parametrize(
    ("number", "kind", "rank", "message"),
    [
        (2, "good", None, "there is no answer 2"),
        (0, "good", None, "there is no answer 0"),
        (1, "answered", 9, "passage 9 was not shown with that answer"),
        (1, "answered", None, "passage None was not shown"),
        (1, "good", 1, "a rank goes only with the verdict 'answered'"),
        (1, "meh", None, "the verdict must be one of good, bad, answered"),
    ],
)
def test_bad_verdicts_are_one_clear_error(settings, number, kind, rank, message):
    engine = open_index(settings=settings)
    conversation = Conversation()
    conversation.ask(engine, QUESTION, k=2)
    with pytest.raises(QAError, match=message):
        record_verdict(engine, conversation, number, kind, rank)
    assert engine.feedback.records() == []


def test_a_record_checks_itself():
    with pytest.raises(QAError, match="needs the question"):
        FeedbackRecord("bad", " ").checked()
    with pytest.raises(QAError, match="0 <= start <= end"):
        FeedbackRecord("bad", "q", passages=(ShownPassage("d", 5, 2, 1),)).checked()
    with pytest.raises(QAError, match="kind must be one of"):
        FeedbackRecord("liked", "q").checked()
    assert check_since("2026-12-01") == "2026-12-01T00:00:00+00:00"
    assert check_since("2026-12-01T10:00+01:00") == "2026-12-01T09:00:00+00:00"
    with pytest.raises(QAError, match="--since must be a date"):
        check_since("last week")


def test_qa_chat_good_bad_answered(settings):
    engine = open_index(settings=settings)
    out, err = io.StringIO(), io.StringIO()
    chat = TerminalChat(engine, {"k": 3}, out=out, err=err)
    chat.handle("/good")
    assert "nothing to rate yet" in err.getvalue()
    chat.handle(QUESTION)
    chat.handle("/good")
    chat.handle("/answered 2")
    chat.handle("/answered 7")
    chat.handle("/answered two")
    chat.handle("/bad now")
    chat.handle("Café diplomacy: what did the commentator say?")
    chat.handle("/bad")
    assert "noted: passage 2 answered it" in out.getvalue()
    errors = err.getvalue()
    assert "passage 7 was not shown" in errors and "/answered needs the number" in errors
    assert "/bad takes nothing after it" in errors
    records = engine.feedback.records()
    assert [(r.kind, r.channel) for r in records] == [
        ("asked", "chat"), ("good", "chat"), ("answered", "chat"), ("asked", "chat"), ("bad", "chat"),
    ]  # fmt: skip
    assert records[2].rank == 2 and records[4].history == (QUESTION,)
    assert records[4].question.startswith("Café diplomacy")
    assert turn_record(chat.conversation, 1, "asked").passages == records[0].passages
