"""Small talk in the chat: replied to without a search, and never mistaken for a question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.answering.smalltalk import REPLIES, small_talk

REPO = Path(__file__).resolve().parent.parent
SQUAD = REPO.parent / "shared" / "data" / "squad-dev-a" / "questions.jsonl"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("hello", "greeting"),
        ("  Hi there! 👋", "greeting"),
        ("Good morning", "greeting"),
        ("Thanks, that's all!", "thanks"),
        ("thank you so much", "thanks"),
        ("ok thanks", "thanks"),
        ("bye", "farewell"),
        ("Привет!", "greeting"),
        ("arigato", "thanks"),
        ("Are you a robot?", "assistant"),
        ("Who are you?", "assistant"),
        ("What’s your favourite colour?", "assistant"),
        ("What can you do?", "assistant"),
        ("Can you write me a haiku about autumn?", "request"),
        ("Write a short story about a cat", "request"),
        ("Tell me a joke.", "request"),
    ],
)
def test_small_talk_is_recognised_with_its_reply(message, kind):
    found = small_talk(message)
    assert found is not None and found.kind == kind and found.reply == REPLIES[kind]


@pytest.mark.parametrize(
    "message",
    [
        "How do I say thank you in Korean?",
        "Who founded the Ming dynasty?",  # its answer strings include "thanks"
        "How can you find the absolute age of sedimentary rock units?",
        "Can you write a summary of the Kuril dispute?",  # a summary is searched, not refused
        "Help me understand the Kuril dispute",
        "Hello, what did Russia deploy to the Kurils?",
        "What is the name of the play performed in the 1970's?",
        "thanks " * 100,
        "",
        "?!",
    ],
)
def test_questions_that_only_contain_such_words_are_searched(message):
    assert small_talk(message) is None


def test_no_answerable_question_of_the_tuning_sets_is_taken_for_small_talk():
    files = [REPO / "tests" / "data" / "seed_questions.jsonl"] + ([SQUAD] if SQUAD.is_file() else [])
    questions = [json.loads(line)["question"] for f in files for line in f.read_text("utf-8").splitlines() if line]
    assert len(questions) >= 39
    assert [q for q in questions if small_talk(q)] == []


def test_the_engine_replies_without_passages_and_the_chat_keeps_its_topic(tmp_path):
    from qa.answering.conversation import Conversation
    from qa.config import Settings
    from qa.engine import open_index
    from tests.conftest import DOCS, write_docs

    write_docs(tmp_path / "corpus", DOCS)
    settings = Settings(
        corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", model="hash", chunk_size=48, chunk_overlap=8
    )
    engine = open_index(settings=settings)
    thanks = engine.ask("Thanks, that's all!")
    assert not thanks.found and thanks.answer == REPLIES["thanks"]
    with pytest.raises(Exception, match="retrieval mode"):
        engine.ask("hello", mode="nonsense")  # bad input is still refused as such

    conversation = Conversation()
    first = conversation.ask(engine, "What did Russia deploy to the Kuril islands?", k=3)
    assert first.found
    assert not conversation.ask(engine, "thanks!").found
    follow_up = conversation.ask(engine, "and how did Japan respond?", k=3)
    # The follow-up leans on the question before the thanks, not on the thanks.
    assert {"Russia", "deploy", "Kuril"} <= set(follow_up.searched_query.split())
    assert "thanks" not in follow_up.searched_query
