"""Conversations: what a follow-up searches, the same live (chat) and rebuilt from a history of
questions (API, MCP), and a conversation saved as Markdown with its citations."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from qa.answering.transcript import escape, export_filename, to_markdown
from qa.conversation import CONTEXT_TURNS, MAX_HISTORY, Conversation
from qa.engine import open_index
from qa.errors import QAError
from qa.types import Answer, Highlight, Passage, Turn

FIRST = "What did Russia deploy to the Kuril islands?"
FOLLOW_UP = "and how did Japan respond?"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from qa.config import Settings
    from tests.conftest import DOCS, write_docs

    folder = tmp_path_factory.mktemp("conversation")
    write_docs(folder / "corpus", DOCS)
    settings = Settings(
        corpus_dir=folder / "corpus",
        index_dir=folder / "index",
        model="hash",
        chunk_size=48,
        chunk_overlap=8,
        min_relevance=0.0,
    )
    return open_index(settings=settings)


def test_a_follow_up_carries_the_previous_turn(engine):
    conversation = Conversation()
    first = conversation.ask(engine, FIRST, k=3)
    assert first.searched_query == "" and first.passages
    second = conversation.ask(engine, FOLLOW_UP, k=3)
    assert second.question == FOLLOW_UP
    assert second.searched_query.startswith("how did Japan respond?")
    assert {"Russia", "deploy", "Kuril"} <= set(second.searched_query.split())
    assert [t.searched for t in conversation.turns] == [FIRST, second.searched_query]
    assert [t.answer for t in conversation.answered] == [first, second]


def test_context_can_be_switched_off_and_standalone_questions_stay_as_typed(engine):
    conversation = Conversation()
    conversation.ask(engine, FIRST)
    assert conversation.ask(engine, FOLLOW_UP, use_context=False).searched_query == ""
    standalone = "Which quotas do Japanese trawlers depend on for crab and salmon?"
    assert conversation.ask(engine, standalone).searched_query == ""


def test_history_gives_the_follow_up_the_chat_would_have_searched(engine):
    live = Conversation()
    for question in (FIRST, FOLLOW_UP, "what about China?"):
        answer = live.ask(engine, question)
    rebuilt = Conversation.from_history(engine, ["Where is Kaliningrad?", FIRST, "  and how did  Japan respond? "])
    assert [t.searched for t in rebuilt.turns[1:]] == [t.searched for t in live.turns[:2]]
    # The last two earlier questions are answered again: a follow-up leans on the last answer, as
    # in the chat, and that answer set aside the sentences of the one before it.
    assert rebuilt.turns[0].answer is None and rebuilt.turns[1].answer == live.turns[0].answer
    assert rebuilt.turns[2].answer == live.turns[1].answer
    again = rebuilt.ask(engine, "what about China?")
    assert again.searched_query == answer.searched_query and again.to_dict() == answer.to_dict()


def test_small_talk_is_replied_to_and_leaves_the_topic_to_the_question_before(engine):
    from qa.answering.smalltalk import REPLIES

    thanks = engine.ask("Thanks, that's all!")
    assert not thanks.found and thanks.answer == REPLIES["thanks"]
    with pytest.raises(QAError, match="retrieval mode"):
        engine.ask("hello", mode="nonsense")  # bad input is still refused as such
    conversation = Conversation()
    assert conversation.ask(engine, FIRST, k=3).found
    assert not conversation.ask(engine, "thanks!").found
    follow_up = conversation.ask(engine, FOLLOW_UP, k=3)
    # The follow-up leans on the question before the thanks, not on the thanks.
    assert {"Russia", "deploy", "Kuril"} <= set(follow_up.searched_query.split())
    assert "thanks" not in follow_up.searched_query


def test_only_the_last_turns_are_context():
    conversation = Conversation()
    conversation.turns = [Turn(f"q{i}", f"searched {i}") for i in range(CONTEXT_TURNS + 3)]
    assert conversation.recent_queries() == [f"searched {i}" for i in range(3, CONTEXT_TURNS + 3)]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([FIRST, 5], r"history\[1\] must be a question as text \(got int\)"),
        ([FIRST, "   "], r"history\[1\]: the question is empty"),
        ([None], r"history\[0\] must be a question as text"),
        (["q"] * (MAX_HISTORY + 1), f"history holds at most {MAX_HISTORY} earlier questions"),
    ],
)
def test_bad_history_is_refused_with_the_position(engine, history, message):
    with pytest.raises(QAError, match=message):
        Conversation.from_history(engine, history)


def test_a_failed_question_adds_no_turn(engine):
    conversation = Conversation()
    conversation.ask(engine, FIRST)
    with pytest.raises(QAError, match="unknown retrieval mode"):
        conversation.ask(engine, FOLLOW_UP, mode="bogus")
    assert len(conversation.turns) == 1


# -- Markdown ---------------------------------------------------------------------------------
def _citations(markdown: str) -> list[tuple[int, str, int, int]]:
    """(rank, doc id, start, end) of every cited passage in an exported conversation."""
    return [
        (int(rank), doc, int(start), int(end))
        for rank, doc, start, end in re.findall(
            r"^\*\*\[(\d+)\] .*?\n`[^`]+`.*?`qa show (\S+) --span (\d+):(\d+)`$", markdown, flags=re.M
        )
    ]


def test_markdown_holds_answers_markers_and_checkable_citations(engine):
    conversation = Conversation()
    first = conversation.ask(engine, FIRST, k=3)
    second = conversation.ask(engine, FOLLOW_UP, k=2)
    markdown = to_markdown(conversation.turns, engine.stats())
    assert markdown.startswith("# Conversation with the corpus\n")
    assert f"index {engine.stats()['snapshot']}" in markdown
    assert f"## 1. {escape(FIRST)}" in markdown and f"## 2. {escape(FOLLOW_UP)}" in markdown
    assert f"*Searched for: {escape(second.searched_query)}*" in markdown
    # Every marker of each answer survives, and each cited passage has its title, source and span.
    for answer in (first, second):
        for marker in re.findall(r"\[\d+\]", answer.answer):
            assert marker in markdown
        for passage in answer.passages:
            assert f"**[{passage.rank}] {escape(passage.title)}**" in markdown
            assert f"`{passage.source}`, characters {passage.start}–{passage.end}" in markdown
    cited = _citations(markdown)
    assert len(cited) == len(first.passages) + len(second.passages)
    for (rank, doc_id, start, end), passage in zip(cited, [*first.passages, *second.passages]):
        assert (rank, doc_id, start, end) == (passage.rank, passage.doc_id, passage.start, passage.end)
        assert engine.document(doc_id).text[start:end] == passage.text  # the span gives back the passage


def _answer_with(text: str, title: str) -> Answer:
    sentence = text.split(". ")[0] + "."
    passage = Passage(
        rank=1,
        score=0.5,
        text=text,
        doc_id="d1",
        title=title,
        author="Eve <b>",
        source="notes/d1.md",
        start=10,
        end=10 + len(text),
        page=3,
        highlight=Highlight(10, 10 + len(sentence), sentence),
    )
    return Answer("<script>alert(1)</script> and [x](http://evil)?", f"{sentence} [1]", (passage,))


def test_markdown_keeps_corpus_markup_as_text():
    markdown_it = pytest.importorskip("markdown_it")
    text = (
        "Costs *rose* <img src=x onerror=alert(1)> & [a link](http://evil.example) in 東京. "
        "# not a heading\n\n- not a list; `code` | pipe ~~strike~~"
    )
    conversation = Conversation()
    answer = _answer_with(text, "Planted <script>x</script> [title]")
    conversation.turns.append(Turn(answer.question, answer.question, answer))
    markdown = to_markdown(conversation.turns)
    rendered = markdown_it.MarkdownIt("commonmark").enable("strikethrough").enable("table").render(markdown)
    # Only the export's own markup: headings, paragraphs, emphasis for the best sentence, quotes, code.
    tags = set(re.findall(r"<(\w+)", rendered))
    assert tags <= {"h1", "h2", "h3", "p", "strong", "em", "blockquote", "code", "br"}, tags
    plain = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert "Costs *rose* <img src=x onerror=alert(1)> & [a link](http://evil.example) in 東京." in plain
    assert "# not a heading" in plain and "- not a list; `code` | pipe ~~strike~~" in plain
    assert "Planted <script>x</script> [title]" in plain and "Eve <b>" in plain
    assert "<script>alert(1)</script> and [x](http://evil)?" in plain
    assert "notes/d1.md, page 3, characters 10–" in plain


def test_turns_without_answers_and_file_names():
    conversation = Conversation()
    conversation.turns.append(Turn("earlier question", "earlier question"))
    assert "no answer was recorded" in to_markdown(conversation.turns)
    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
    assert export_filename(when) == "qa-chat-20260304-050607.md"
