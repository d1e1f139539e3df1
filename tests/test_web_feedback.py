"""The web chat's feedback at handler level: 👍/👎 on an answer and "This passage answered it" on
a source card, each recorded from the server's own conversation (the client names only a
message, or a turn and a rank), and the page's wiring."""

from __future__ import annotations

import pytest

from qa.engine import open_index
from qa.web.app import ChatHandlers, build_app, new_context
from tests.web_helpers import web_settings

QUESTION = "What did Russia deploy to the Kuril islands?"
FOLLOW_UP = "and how did Japan respond?"


@pytest.fixture
def handlers(tmp_path):
    return ChatHandlers(open_index(settings=web_settings(tmp_path)))


def _ask(handlers, shown, context, question):
    history, _, context, _ = handlers.respond(question, shown, context, 3)
    return history, context


def test_thumbs_and_answered_are_recorded_from_the_server_state(handlers):
    shown, context = _ask(handlers, [], new_context(), QUESTION)
    shown, context = _ask(handlers, shown, context, FOLLOW_UP)
    assert 'class="qa-answered" href="#qa-answered?turn=2&amp;rank=1"' in shown[-1]["content"]

    note = handlers.rate(shown, context, 1, False)  # message 1: the first answer
    assert "did not help" in note
    note = handlers.mark_answered(context, {"turn": 2, "rank": 3})
    assert "source 3 answered the question" in note
    assert "did not help" not in handlers.rate(shown, context, 3, True)

    records = handlers.engine.feedback.records()
    assert [(r.kind, r.channel) for r in records] == [
        ("asked", "web"),
        ("asked", "web"),
        ("bad", "web"),
        ("answered", "web"),
        ("good", "web"),
    ]
    bad, answered = records[2], records[3]
    first, second = context.turns
    assert bad.question == first.question and bad.history == () and bad.answer == first.answer.answer
    assert answered.question == FOLLOW_UP and answered.history == (QUESTION,) and answered.rank == 3
    assert answered.searched == second.searched != FOLLOW_UP
    assert [(p.doc_id, p.start, p.end) for p in answered.passages] == [
        (p.doc_id, p.start, p.end) for p in second.answer.passages
    ]
    assert answered.index_version == handlers.engine.reader.name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h, shown, ctx: h.rate(shown, ctx, 0, True), "Only an answer can be rated"),  # the question
        (lambda h, shown, ctx: h.rate(shown, ctx, 99, True), "Only an answer can be rated"),
        (lambda h, shown, ctx: h.mark_answered(ctx, {"turn": 1, "rank": 9}), "Passage 9 was not shown"),
        (lambda h, shown, ctx: h.mark_answered(ctx, {"turn": 5, "rank": 1}), "There is no answer 5"),
        (lambda h, shown, ctx: h.mark_answered(ctx, {"turn": "x"}), "There is no answer 0"),
        (lambda h, shown, ctx: h.mark_answered(new_context(), {"turn": 1, "rank": 1}), "There is no answer 1"),
    ],
)
def test_what_cannot_be_recorded_says_so(handlers, call, message):
    shown, context = _ask(handlers, [], new_context(), QUESTION)
    assert message in call(handlers, shown, context)
    assert [r.kind for r in handlers.engine.feedback.records()] == ["asked"]


def test_a_forged_history_cannot_rate_what_was_not_shown(handlers):
    """A message the client made up is not in the server's `shown`: nothing is recorded."""
    forged = [{"role": "assistant", "content": '<div class="qa-reply" id="qa-t1"><p>made up</p></div>'}]
    assert "Only an answer" in handlers.rate([], new_context(), 0, True)
    assert "There is no answer 1" in handlers.rate(forged, new_context(), 0, True)
    assert handlers.engine.feedback.records() == []
    assert handlers.rate([], new_context(), 0, "Other") == ""  # an undone or custom rating


def test_the_page_offers_feedback_only_when_it_is_on(tmp_path):
    def chatbot_config(handlers):
        config = build_app(handlers).get_config_file()
        chat = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "qa-chat")
        return chat["props"].get("feedback_options"), [
            d for d in config["dependencies"] if any(t[1] == "like" for t in d.get("targets", []))
        ]

    on = ChatHandlers(open_index(settings=web_settings(tmp_path / "on")))
    options, likes = chatbot_config(on)
    assert list(options) == ["Like", "Dislike"] and len(likes) == 1
    off = ChatHandlers(open_index(settings=web_settings(tmp_path / "off").with_(feedback="off")))
    options, likes = chatbot_config(off)
    assert not options and not likes
    shown, context = _ask(off, [], new_context(), QUESTION)
    assert "qa-answered" not in shown[-1]["content"]
    assert "QA_FEEDBACK=off" in off.mark_answered(context, {"turn": 1, "rank": 1})


def test_the_analysts_tab_shows_the_feedback_report(tmp_path):
    handlers = ChatHandlers(open_index(settings=web_settings(tmp_path)), admin_password="analyst-password")
    assert "Unlock the Index tab first" in handlers.feedback_report(False)
    assert "No feedback recorded yet" in handlers.feedback_report(True)
    shown, context = _ask(handlers, [], new_context(), QUESTION)
    shown, context = _ask(handlers, shown, context, FOLLOW_UP)
    handlers.rate(shown, context, 3, False)
    page = handlers.feedback_report(True)
    assert "<b>2</b> questions asked" in page and "<b>1</b> thumbed down" in page
    assert "By subject, most failed first" in page and "and how did Japan respond?" in page
    assert f"{handlers.engine.reader.name} (current)" in page
    config = build_app(handlers).get_config_file()
    assert any(c.get("props", {}).get("elem_id") == "qa-feedback-report" for c in config["components"])
