"""Small talk: recognised, and never mistaken for a question (the engine and chat side is in
test_conversation.py and test_api.py)."""

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
