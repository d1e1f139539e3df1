"""Answers: sentence evidence in the index, question kinds, features, catalog questions, the short answer."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from qa.answering.about import match_title, parse_about
from qa.answering.answer_types import capitalised, dates, numbers, question_kind
from qa.answering.features import QuestionTerms, _phrases, _prefix_coverage, _proximity
from qa.embedding.models import HashEmbedder
from qa.embedding.pooling import pool_spans
from qa.engine import open_index
from qa.ingest.indexer import update_index
from qa.storage.local.snapshot import IndexLayout


# -- sentence evidence -----------------------------------------------------------------------------
def test_pool_spans_means_the_tokens_of_each_span():
    hidden = np.array([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [9.0, 9.0]])  # CLS, 3 tokens, SEP
    offsets = np.array([[0, 0], [0, 4], [5, 9], [10, 14], [0, 0]])
    mask = np.ones(5)
    out = pool_spans(hidden, offsets, mask, [(0, 9), (10, 14), (20, 30)])
    assert out[0] == pytest.approx(np.array([1.0, 1.0]) / np.sqrt(2))  # special tokens left out
    assert out[1] == pytest.approx([1.0, 0.0])
    assert not out[2].any()  # beyond the text: no token, a zero vector


def test_every_chunk_stores_its_sentences_in_document_offsets(settings):
    update_index(settings)
    engine = open_index(settings=settings)
    reader = engine.snapshot
    ids = [i for i, *_ in reader.chunk_spans()]
    evidence = reader.evidence(ids)
    assert set(evidence) == set(ids)
    records = reader.chunk_records(ids)
    for chunk_id, found in evidence.items():
        spans, vectors = found.spans, found.vectors
        chunk = records[chunk_id].chunk
        text = engine.document(chunk.doc_id).text
        assert len(spans) == len(vectors) >= 1
        for s, e in spans:
            assert chunk.start <= s < e <= chunk.end and text[s:e] == text[s:e].strip()
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-2)


def test_sentence_evidence_follows_incremental_updates_and_comes_from_the_cache(settings, corpus):
    update_index(settings)
    (corpus / "fishing.txt").write_text(
        "Crab quotas fell again.\n\nSalmon catches rose by a fifth.\n", encoding="utf-8"
    )
    report = update_index(settings)
    assert report.changed == ["fishing.txt"]
    engine = open_index(settings=settings)
    reader = engine.snapshot
    ids = [i for i, *_ in reader.chunk_spans()]
    assert set(reader.evidence(ids)) == set(ids)  # no evidence of removed chunks left
    fishing = [i for i, doc, *_ in reader.chunk_spans() if doc == "fishing"]
    texts = [engine.document("fishing").text[s:e] for s, e in reader.evidence(fishing)[fishing[0]].spans]
    assert texts == ["Crab quotas fell again.", "Salmon catches rose by a fifth."]
    # A rebuild finds chunk, sentence and word vectors in the cache: nothing is embedded again.
    rebuilt = update_index(settings, rebuild=True)
    assert rebuilt.chunks_embedded == 0 and rebuilt.words_embedded == 0
    with sqlite3.connect(IndexLayout(settings.index_dir).cache_path) as conn:
        assert conn.execute("SELECT count(*) FROM sentence_vectors").fetchone()[0] >= len(ids)


def test_an_index_with_other_sentence_vectors_is_refused_with_the_fix(settings):
    update_index(settings)
    with pytest.raises(Exception, match="QA_SENTENCE_VECTORS=late"):
        open_index(settings=replace(settings, sentence_vectors="alone"))


def test_sentences_encoded_alone_match_their_own_vectors(settings):
    alone = replace(settings, sentence_vectors="alone")
    update_index(alone)
    engine = open_index(settings=alone)
    reader = engine.snapshot
    chunk_id = next(i for i, doc, *_ in reader.chunk_spans() if doc == "kurils")
    found = reader.evidence([chunk_id])[chunk_id]
    spans, vectors = found.spans, found.vectors
    text = engine.document("kurils").text
    expected = HashEmbedder(int(alone.model.split(":")[1]) if ":" in alone.model else 1024).encode(
        [text[s:e] for s, e in spans]
    )
    assert np.allclose(vectors, expected, atol=1e-2)  # float16 in the index


def test_an_index_of_sentences_encoded_alone_answers_with_the_models_fitted_on_them(settings, monkeypatch):
    from qa.answering import scorer
    from qa.retrieval import rerank, search

    for method in ("late", "alone"):  # each shipped file says what it was fitted on, and loads
        assert scorer.load_models(scorer.models_file(method)).meta["sentence_vectors"] == method
        assert rerank.load_reranker(rerank.model_file(method)).meta["sentence_vectors"] == method
    assert scorer.models_file("alone").name == "answer_models-alone.json"
    assert scorer.refit_command(scorer.models_file("alone")) == "QA_SENTENCE_VECTORS=alone qa fit answers"
    loaded: list[str] = []

    def recording(load):
        return lambda path: loaded.append(path.name) or load(path)

    monkeypatch.setattr(scorer, "load_models", recording(scorer.load_models))
    monkeypatch.setattr(search, "load_reranker", recording(rerank.load_reranker))
    alone = replace(settings, sentence_vectors="alone")
    update_index(alone)
    answer = open_index(settings=alone).ask("Where were the missiles deployed?")
    assert answer.passages
    assert set(loaded) == {"answer_models-alone.json", "rerank_model-alone.json"}


# -- what a question asks for ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "kind", "focus"),
    [
        ("Who wrote the treaty?", "person", ""),
        ("When did the talks start?", "date", ""),
        ("Where were the missiles moved?", "place", ""),
        ("Why did Japan protest?", "reason", ""),
        ("How many islands are disputed?", "number", ""),
        ("How did Japan respond?", "reason", ""),
        ("What year was the treaty signed?", "date", "year"),
        ("Which city hosted the summit?", "place", "city"),
        ("What kind of missile system was deployed?", "thing", "missile"),
        ("What did Russia deploy to the Kurils?", "thing", ""),
        ("S-300V4 deployment", "thing", ""),
    ],
)
def test_question_kinds(question, kind, focus):
    assert question_kind(question) == (kind, focus) or (
        question_kind(question).kind,
        question_kind(question).focus,
    ) == (
        kind,
        focus,
    )


def test_sentence_cues():
    assert capitalised("Recently Tass reported an S-300V4 on Iturup.") == ["tass", "s-300v4", "iturup"]
    assert numbers("In 1945 some 40,000 troops and two divisions") == ["1945", "40,000", "two"]
    assert dates("signed in July 2020, not in the 19th century") == ["2020", "19th century", "july"]
    assert dates("four islands") == []


def test_what_the_question_already_says_is_not_new():
    question = "When did Putin's visit in December take place?"
    q = QuestionTerms.build(question, None, [], {}, lambda t: True, question_kind(question), frozenset())
    assert q.says("Putin’s") and q.says("December") and not q.says("20 November") and not q.says("")


def _terms(*terms: str) -> QuestionTerms:
    weights = np.full(len(terms), 1.0 / len(terms))
    return QuestionTerms(
        None, terms, weights, 0.0, frozenset(), frozenset(), question_kind("what"), terms, dict(zip(terms, weights))
    )


def test_overlap_features_on_plain_facts():
    from qa.answering.features import SentenceFacts

    def facts(stems: list[str], words: list[str]) -> SentenceFacts:
        positions: dict[str, list[int]] = {}
        for i, s in enumerate(stems):
            positions.setdefault(s, []).append(i)
        return SentenceFacts(
            tuple(stems),
            frozenset(stems),
            frozenset(stems) | {w[:5] for w in words if len(w) >= 5},
            {k: tuple(v) for k, v in positions.items()},
            tuple(stems),
            (),
            (),
            (),
            False,
            False,
            False,
            len(words),
        )

    q = _terms("russia", "deploy", "respond")
    sentence = facts(["russia", "deploy", "missil", "respons"], ["russia", "deployed", "missiles", "response"])
    assert _prefix_coverage(sentence, q) == pytest.approx(1.0)  # "respond" and "response" share "respo"
    assert _phrases(sentence, q) == pytest.approx(0.5)  # "russia deploy" together; "deploy respond" not
    assert _proximity(sentence, q) == pytest.approx(1.0)  # the two exact matches side by side
    assert _proximity(facts(["russia", "a", "b", "deploy"], ["russia", "a", "b", "deploy"]), q) == pytest.approx(0.5)


# -- questions about the documents ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "kind", "subject"),
    [
        ("Who wrote What a tangled web we weave?", "author", "What a tangled web we weave"),
        ("who is the author of 'the tangled web article'", "author", "the tangled web article"),
        ("When was the tangled web piece published?", "date", "the tangled web piece"),
        ("Which documents discuss fishing quotas?", "documents", "fishing quotas"),
        ("What article mentions the S-300V4?", "documents", "the S-300V4"),
        ("What documents are there?", "list", ""),
        ("How many articles are in the corpus?", "list", ""),
    ],
)
def test_parse_about(question, kind, subject):
    about = parse_about(question)
    assert about is not None and (about.kind, about.subject) == (kind, subject)


def test_ordinary_questions_are_not_about_the_catalog():
    assert parse_about("What did Russia deploy to the Kurils?") is None
    assert parse_about("Who protested against the deployment?") is None


def test_match_title_needs_most_of_the_subject():
    titles = [("a", "What a tangled web we weave: North Asian strategic relations"), ("b", "Deployments")]
    terms = str.split
    assert match_title("tangled web", titles, lambda t: t.lower().split()) == "a"
    assert match_title("the letter to Putin", titles, terms) is None
    assert match_title("north asia strategic", titles, lambda t: t.lower().split()) == "a"  # asia ~ asian


def test_catalog_questions_are_answered_from_the_catalog_with_the_document_cited(engine):
    answer = engine.ask("Who wrote the article about deployments on the islands?")
    assert answer.answer == "Deployments on the islands was written by Anna Petrova. [1]"
    assert [p.doc_id for p in answer.passages] == ["kurils"] and answer.passages[0].start == 0
    dated = engine.ask("When was the article on Tokyo's diplomacy published?")
    assert "dated 2016-11-20. [1]" in dated.answer and dated.passages[0].doc_id == "tokyo"
    listing = engine.ask("What documents are there?")
    assert listing.answer.startswith("The corpus holds 3 documents:") and len(listing.passages) == 3
    which = engine.ask("Which documents discuss crab quotas?")
    assert which.answer == "One document discusses crab quotas: fishing [1]."
    # A title that matches nothing: answered from the text like any other question.
    assert engine.ask("Who wrote the letter to Putin?").answer != ""


def test_mention_finds_the_author_in_the_text():
    from qa.answering.about import mention

    text = "Intro line.  William   Baulch is a Fellow. Later, BAULCH again."
    assert mention(text, "William Baulch") == text.index("William")
    assert mention(text, "Anna Petrova and William Baulch") == text.index("William")
    assert mention(text, "Bill Baulchy") is None
    assert mention(text, "") is None and mention(text, " , ") is None


def test_who_wrote_cites_where_the_text_names_the_author(tmp_path, settings):
    from tests.conftest import write_docs

    corpus = tmp_path / "named"
    write_docs(
        corpus,
        {
            "web.md": """\
                ---
                title: A tangled web of strategic relations
                author: William Baulch
                ---
                Russia and Japan met again. The islands were discussed at length.

                The talks ended without a deal. Sanctions stayed in place.

                William Baulch is a fellow of a think tank. He writes on North Asia. Views are his own.
                """
        },
    )
    engine = open_index(settings=settings.with_(corpus_dir=corpus, index_dir=tmp_path / "named-index"))
    answer = engine.ask("Who wrote the piece on the tangled web of strategic relations?")
    assert answer.answer == "A tangled web of strategic relations was written by William Baulch. [1]"
    [passage] = answer.passages
    document = engine.document("web")
    assert passage.highlight.text == "William Baulch is a fellow of a think tank."
    assert passage.text == document.text[passage.start : passage.end]
    assert passage.text.startswith("Sanctions stayed in place.") and passage.text.endswith("He writes on North Asia.")


@pytest.fixture
def engine(settings):
    return open_index(settings=settings)


# -- the real model --------------------------------------------------------------------------------
@pytest.mark.integration
def test_the_headline_question_names_what_was_deployed_and_the_follow_up_the_response(tmp_path):
    import shutil

    from qa.config import Settings
    from qa.conversation import Conversation
    from tests.conftest import REPO

    shutil.copytree(REPO / "corpus", tmp_path / "corpus")
    engine = open_index(settings=Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"))
    chat = Conversation()
    answer = chat.ask(engine, "what did Russia deploy to the Kurils?")
    cited = {p.rank: p for p in answer.passages}
    for thing in ("S-300V4", "anti-ship missiles"):
        assert thing in answer.answer, answer.answer
        marker = int(answer.answer.split(thing, 1)[1].split("[", 1)[1].split("]", 1)[0])
        assert thing in cited[marker].text  # its marker cites the passage that says it
    follow = chat.ask(engine, "and how did Japan respond?")
    assert "protest" in follow.answer or "response from Japan" in follow.answer, follow.answer
    assert "Kaliningrad" not in follow.answer.split("[")[0]  # it leads with the response, not the enclave
