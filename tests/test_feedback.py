"""Readers' feedback: the store (beside the index, through rebuilds, on both stores), the records
built from a conversation, and `qa chat`'s /good, /bad, /answered N."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from qa.chat import TerminalChat
from qa.config import Settings
from qa.conversation import Conversation
from qa.engine import open_index
from qa.errors import QAError
from qa.feedback import record_asked, record_verdict, turn_record
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


# -- qa report ----------------------------------------------------------------------------------
ZEBRA = "How many zebras migrate across the Serengeti?"
ZEBRA_AGAIN = "how many zebras migrate across the Serengeti each year?"
ZEBRA_DOC = """\
# The great migration

Every year about 300,000 zebras migrate across the Serengeti with the wildebeest, following the rains.
"""


def test_qa_report_counts_refused_and_thumbed_down_by_subject_and_rechecks_after_an_update(
    tmp_path, monkeypatch, capsys
):
    from qa.cli import main
    from tests.web_helpers import write_corpus

    corpus = write_corpus(tmp_path / "corpus")
    for name, value in {
        "QA_CORPUS": str(corpus),
        "QA_INDEX": str(tmp_path / "index"),
        "QA_MODEL": "hash",
        "QA_MIN_RELEVANCE": "0.3",
    }.items():
        monkeypatch.setenv(name, value)
    engine = open_index(settings=Settings.from_env())
    conversation = Conversation()
    for question in (QUESTION, ZEBRA, ZEBRA_AGAIN, "thanks!"):
        conversation.ask(engine, question, k=3)
        record_asked(engine, conversation, "web")
    record_verdict(engine, conversation, 1, "bad", channel="web")
    assert [t.answer.found for t in conversation.turns] == [True, False, False, False]
    first_version = engine.reader.name

    (corpus / "zebras.md").write_text(ZEBRA_DOC, encoding="utf-8")
    engine.update()
    assert main(["report", "--json", "--similarity", "0.4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["asked"], report["refused"], report["thumbed_down"]) == (3, 2, 1)  # "thanks!" is not a question
    zebras = next(s for s in report["subjects"] if "zebras" in s["label"])
    assert sorted(zebras["questions"]) == sorted([ZEBRA, ZEBRA_AGAIN])
    assert (zebras["asked"], zebras["refused"], zebras["thumbed_down"]) == (2, 2, 0)
    assert sorted(zebras["now_answered"]) == sorted([ZEBRA, ZEBRA_AGAIN])  # the new document answers them
    assert report["subjects"][0]["label"] == zebras["label"]  # most failed first
    assert report["trend"] == [
        {
            "index_version": first_version,
            "first_record": report["trend"][0]["first_record"],
            "current": False,
            "asked": 3,
            "refused": 2,
            "thumbed_down": 1,
            "refused_share": 0.6667,
            "thumbed_down_share": 0.3333,
        }
    ]
    shown = {(p["doc_id"], p["start"], p["end"]): p for p in report["passages"]}
    first = conversation.turns[0].answer.passages
    assert all(shown[(p.doc_id, p.start, p.end)]["in_thumbed_down"] == 1 for p in first)

    assert main(["report", "--similarity", "0.4"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("3 questions asked: 2 refused") and "answered now: How many zebras" in text
    assert main(["report", "--csv", "--no-recheck", "--similarity", "0.4"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:4] == ["subject", "asked", "refused", "thumbed_down"] and len(rows) == 3
    assert main(["report", "--since", "2999-01-01"]) == 0
    assert "0 questions asked since 2999-01-01T00:00:00+00:00" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "--since must be a date"),
        (["--similarity", "0"], "--similarity must be above 0"),
        (["--top", "0"], "--top must be at least 1"),
    ],
)
def test_qa_report_bad_flags(argv, message, capsys):
    from qa.cli import main

    assert main(["report", *argv]) == 1
    assert message in capsys.readouterr().err


# -- qa feedback export -------------------------------------------------------------------------
def test_feedback_export_after_a_rebuild_reads_back_as_a_question_set(tmp_path, monkeypatch, capsys):
    from qa.cli import main
    from qa.evaluation.answers import read_unanswerable
    from qa.evaluation.questions import load_questions
    from tests.web_helpers import write_corpus

    corpus = write_corpus(tmp_path / "corpus")
    for name, value in {
        "QA_CORPUS": str(corpus),
        "QA_INDEX": str(tmp_path / "index"),
        "QA_MODEL": "hash",
        "QA_MIN_RELEVANCE": "0.3",
    }.items():
        monkeypatch.setenv(name, value)
    engine = open_index(settings=Settings.from_env())
    reader = Conversation()
    reader.ask(engine, QUESTION, k=3)
    reader.ask(engine, FOLLOW_UP, k=3)
    record_verdict(engine, reader, 1, "answered", rank=2, channel="web")
    record_verdict(engine, reader, 2, "answered", rank=1, channel="web")
    other = Conversation()
    other.ask(engine, QUESTION, k=3)
    record_verdict(engine, other, 1, "bad", channel="web")  # its passages: known non-answers
    for question in (ZEBRA, "Who painted the ceiling of the Sistine Chapel?"):
        other.ask(engine, question, k=3, use_context=False)
        record_asked(engine, other, "web")
    record_verdict(engine, other, 3, "bad", channel="web")  # refused, but the reader expected an answer
    gold = reader.turns[0].answer.passages[1]
    follow_up_gold = reader.turns[1].answer.passages[0]

    engine.update(rebuild=True)
    questions, unanswerable = tmp_path / "labelled.jsonl", tmp_path / "unanswerable.txt"
    argv = ["feedback", "export", "--questions", str(questions), "--unanswerable", str(unanswerable)]
    assert main(argv) == 0
    assert "2 labelled questions" in capsys.readouterr().out
    lines = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["question"] == QUESTION
    assert lines[0]["spans"] == [{"doc_id": gold.doc_id, "start": gold.start, "end": gold.end}]
    shown = [{"doc_id": p.doc_id, "start": p.start, "end": p.end} for p in other.turns[0].answer.passages]
    assert lines[0]["non_answers"] == [s for s in shown if s != lines[0]["spans"][0]]
    assert lines[1]["question"] == reader.turns[1].searched != FOLLOW_UP  # the follow-up, with its context
    assert lines[1]["spans"] == [
        {"doc_id": follow_up_gold.doc_id, "start": follow_up_gold.start, "end": follow_up_gold.end}
    ]
    assert [q.text for q in load_questions(questions)] == [lines[0]["question"], lines[1]["question"]]
    assert read_unanswerable(unanswerable) == [ZEBRA]

    # qa eval reads it as it is, against the rebuilt index.
    assert main(["eval", str(questions), "--quiet", "--json", "--mode", "hybrid", "--no-answers"]) == 0
    assert json.loads(capsys.readouterr().out)["queries"] == 2

    # A document removed since: its spans are left out, and said so.
    (corpus / engine.document(gold.doc_id).source).unlink()
    engine.update()
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"{gold.doc_id} {gold.start}:{gold.end} left out (the document is no longer in the index)" in captured.err

    # A document added since answers the question that found nothing: it is no longer unanswerable.
    (corpus / "zebras.md").write_text(ZEBRA_DOC, encoding="utf-8")
    engine.update()
    assert main(argv) == 0
    assert "0 unanswerable questions" in capsys.readouterr().out
    assert main([*argv, "--no-recheck"]) == 0
    assert read_unanswerable(unanswerable) == [ZEBRA]


def test_feedback_export_needs_a_file(capsys):
    from qa.cli import main

    assert main(["feedback", "export"]) == 1
    assert "give --questions FILE.jsonl, --unanswerable FILE.txt, or both" in capsys.readouterr().err


def test_report_of_nothing_and_of_one_question():
    from qa.evaluation.usage import build_report, format_report

    empty = build_report([], lambda texts: np.zeros((len(texts), 4), dtype=np.float32))
    assert (empty.asked, empty.subjects, empty.trend) == (0, (), ())
    assert "no feedback recorded yet" in format_report(empty)
    one = FeedbackRecord("asked", "Où est Iturup ?", passages=(), index_version="v1", time="2026-12-01T00:00:00+00:00")
    report = build_report([one], lambda texts: np.ones((len(texts), 4), dtype=np.float32), current_version="v2")
    assert [(s.label, s.asked, s.refused) for s in report.subjects] == [("Où est Iturup ?", 1, 1)]
    assert report.trend[0].to_dict()["refused_share"] == 1.0 and not report.trend[0].current
    assert report.refused_questions == ("Où est Iturup ?",) and report.now_answered == ()
