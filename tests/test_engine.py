from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from qa.answering.answer import NOTHING_FOUND
from qa.engine import MAX_QUESTION_CHARS, open_index
from qa.errors import IndexMissingError, QAError
from qa.ingest.indexer import update_index


@pytest.fixture
def engine(settings):
    return open_index(settings=settings)


def test_open_builds_the_index_on_first_use(settings):
    engine = open_index(settings=settings)
    assert engine.stats()["documents"] == 3
    with pytest.raises(IndexMissingError, match="qa index"):
        open_index(settings=settings.with_(index_dir=settings.index_dir.parent / "other"), build=False)


def test_passages_cite_exact_spans(engine):
    answer = engine.ask("Which air defence system was deployed to the Kuril islands?")
    assert answer.passages
    top = answer.passages[0]
    assert top.doc_id == "kurils" and top.author == "Anna Petrova" and top.date == "2020-12-10"
    assert top.source == "kurils.md" and top.title == "Deployments on the islands"
    for p in answer.passages:
        text = engine.document(p.doc_id).text
        assert text[p.start : p.end] == p.text
        assert text[p.highlight.start : p.highlight.end] == p.highlight.text
        assert p.start <= p.highlight.start < p.highlight.end <= p.end
    assert "S-300V4" in top.highlight.text
    assert "[1]" in answer.answer
    scores = [p.score for p in answer.passages]
    assert scores == sorted(scores, reverse=True)
    data = answer.to_dict()
    assert set(data) >= {"question", "answer", "passages"}
    assert set(data["passages"][0]) >= {
        "rank",
        "score",
        "text",
        "doc_id",
        "title",
        "author",
        "source",
        "start",
        "end",
        "page",
        "highlight",
    }


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_mode_answers(engine, mode):
    answer = engine.ask("quotas for crab and salmon", mode=mode)
    assert answer.passages and answer.passages[0].doc_id == "fishing"
    assert answer.mode == mode


def test_unrelated_question_finds_nothing_instead_of_noise(settings, engine):
    gated = open_index(settings=replace(settings, min_relevance=None))  # the fitted relevance gate
    answer = gated.ask("chocolate cake vanilla frosting")
    assert answer.passages == ()
    assert answer.answer == NOTHING_FOUND
    # Without a content word there is nothing to look for, whatever the gate's setting.
    for mode in ("hybrid", "dense", "lexical"):
        assert engine.ask("the of and what is", mode=mode).passages == ()
    assert open_index(settings=replace(settings, min_relevance=1.0)).ask("crab quotas").passages == ()


def test_filters(engine):
    assert {p.doc_id for p in engine.ask("islands", author="watanabe").passages} == {"tokyo"}
    assert {p.doc_id for p in engine.ask("islands", doc="kurils").passages} == {"kurils"}
    assert {p.doc_id for p in engine.ask("islands", doc=["fishing.txt"]).passages} == {"fishing"}
    assert {p.doc_id for p in engine.ask("islands", date_from="2020").passages} == {"kurils"}
    assert {p.doc_id for p in engine.ask("islands", date_to="2016-12").passages} == {"tokyo"}
    assert engine.ask("islands", author="nobody").passages == ()


def test_non_ascii_text_round_trips(engine):
    answer = engine.ask("Café naïve hopes «return»", mode="lexical")
    assert answer.passages[0].doc_id == "tokyo"
    assert "«the islands will return»" in answer.passages[0].text
    assert "naïve" in engine.document("tokyo").text
    assert {d.title for d in engine.documents()} >= {"東京の外交 — Tokyo's diplomacy"}


@pytest.mark.parametrize("question", ["", "   ", "\x00\x01", "\n\t"])
def test_empty_questions_are_refused(engine, question):
    with pytest.raises(QAError, match="empty"):
        engine.ask(question)


def test_bad_options_are_refused(engine):
    with pytest.raises(QAError, match="mode"):
        engine.ask("islands", mode="fuzzy")
    with pytest.raises(QAError, match="between 1 and"):
        engine.ask("islands", k=0)
    with pytest.raises(QAError, match="no document"):
        engine.document("missing")


def test_long_and_odd_questions(engine):
    answer = engine.ask("crab quotas " * 20_000)
    assert any("cut" in note for note in answer.notes)
    assert answer.passages
    assert engine.ask("crab\x00 quotas 🦀 \u202eislands").passages
    cleaned, notes = engine.clean_question("x" * (MAX_QUESTION_CHARS + 10))
    assert len(cleaned) <= MAX_QUESTION_CHARS and notes


def test_follow_up_search_text_is_reported(engine):
    answer = engine.ask("and how did they respond?", searched_query="Japan protested deployment")
    assert answer.searched_query == "Japan protested deployment"
    assert answer.passages[0].doc_id == "kurils"


def test_readers_see_new_index_after_update_and_keep_answering_during_it(engine, settings, corpus):
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                assert engine.ask("crab quotas").passages
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(3):
        (corpus / f"extra{i}.md").write_text(f"Extra entry {i} about submarines near Sakhalin.", encoding="utf-8")
        update_index(settings)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert engine.ask("submarines Sakhalin", mode="lexical").passages[0].doc_id.startswith("extra")
    assert engine.stats()["documents"] == 6


def test_inside_consistent_ask_keeps_to_one_index_while_a_newer_one_is_published(settings, corpus):
    update_index(settings)
    engine = open_index(settings=settings, build=False)
    before = engine.reader.name
    with engine.consistent():
        (corpus / "fishing.txt").write_text("Crab quotas were halved this year.\n", encoding="utf-8")
        update_index(settings)  # publishes a newer index meanwhile
        answer = engine.ask("crab quotas")
        assert engine.reader.name == before
        for p in answer.passages:  # answer and documents from the same index
            assert engine.document(p.doc_id).text[p.start : p.end] == p.text
        assert "halved" not in engine.document("fishing").text
    engine.ask("crab quotas")  # after the block, the newer index
    assert engine.reader.name != before and "halved" in engine.document("fishing").text
