"""The spelling fallback (qa.retrieval.spelling) and the stores' vocabularies (qa.vocabulary)."""

from __future__ import annotations

import pytest

from qa.embedding.models import HashEmbedder
from qa.engine import open_index
from qa.ingest.indexer import update_index
from qa.retrieval.spelling import Correction, correct, english_word
from qa.storage.stores import open_store
from qa.vocabulary import Vocabulary, nearest_words, words_of


def test_vocabulary_keeps_alphabetic_words_of_four_letters_or_more():
    words = words_of(["Japanese trawlers, S-300V4 and crab: the 2020 quota", "Café naïve"])
    assert words == {"japanese", "trawlers", "crab", "quota", "café", "naïve"}


def test_nearest_words_counts_a_swap_as_one_edit_and_sorts_nearest_first():
    found = nearest_words("trawlres", ["trawlers", "trawler", "trowel", "trawlres"], 2)
    assert found == [("trawlers", 1), ("trawler", 2)]  # the word itself is no suggestion
    assert nearest_words("trawlres", ["trawlers"], 0) == []


def test_vocabulary_looks_only_among_words_with_the_same_first_letter():
    vocabulary = Vocabulary(["poverty", "covertly", "overtly", "power"])
    assert vocabulary.near("povertly", 2) == [("poverty", 1)]
    assert vocabulary.near("", 2) == [] and len(vocabulary) == 4 and next(iter(vocabulary)) == "covertly"


def test_english_words_are_known_and_misspellings_are_not():
    assert english_word("weather") and english_word("poverty")
    assert not english_word("povertly") and not english_word("trawlres")


def reader_of(settings):
    update_index(settings)
    return open_store(settings).open(HashEmbedder().cache_key, settings)


def test_every_store_corrects_a_misspelt_word_to_the_corpus_word(store_settings):
    reader = reader_of(store_settings)
    try:
        assert reader.similar_words("trawlres", 2)[0] == ("trawlers", 1)
        fixed = correct("Which Trawlres depend on quotas?", reader)
        assert fixed == Correction("Which Trawlers depend on quotas?", (("Trawlres", "Trawlers"),))
        assert fixed.note == 'searched for "Trawlers" instead of "Trawlres", which no document uses'
        two = correct("Trawlres and deplyed", reader)
        assert two.note == (
            'searched for "Trawlers" instead of "Trawlres" and "deployed" instead of "deplyed": '
            "no document uses those words"
        )
        assert correct("What did Russia deplyed to the islands?", reader).text == (
            "What did Russia deployed to the islands?"
        )
        # Words the corpus has, English words it lacks, short words and numbers stay as asked.
        for question in ("Japanese trawlers", "What about the weather?", "Who is Abbe?", "Whwn was it?", "S-300V5"):
            assert correct(question, reader) == Correction(question)
    finally:
        reader.close()


def test_a_suggestion_must_be_a_term_the_index_still_holds(store_settings, corpus):
    (corpus / "fishing.txt").unlink()
    reader = reader_of(store_settings)
    try:
        assert correct("trawlres", reader).changes == ()  # postgres keeps the word, not the term
    finally:
        reader.close()


def test_ask_searches_the_corrected_question_and_says_so(store_settings):
    update_index(store_settings)
    engine = open_index(settings=store_settings, embedder=HashEmbedder())
    answer = engine.ask("Which trawlres depend on quotas?")
    assert answer.question == "Which trawlres depend on quotas?"
    assert answer.searched_query == "Which trawlers depend on quotas?"
    assert 'searched for "trawlers" instead of "trawlres", which no document uses' in answer.notes
    assert answer.passages[0].doc_id == "fishing"
    off = open_index(settings=store_settings.with_(spelling="off"), embedder=HashEmbedder())
    assert off.ask("Which trawlres depend on quotas?").searched_query == ""


def test_the_local_store_saves_its_words_and_reads_an_index_saved_without_them(settings):
    reader = reader_of(settings)
    folder = next((settings.index_dir / "snapshots").iterdir()) / "bm25"
    saved = (folder / "words.txt").read_text(encoding="utf-8").split()
    assert "trawlers" in saved and saved == sorted(saved)
    reader.close()
    (folder / "words.txt").write_text("\n".join(w for w in saved if w != "trawlers"), encoding="utf-8")
    reader = open_store(settings).open(HashEmbedder().cache_key, settings)
    assert correct("trawlres", reader).changes == ()  # the saved words are the ones looked up
    reader.close()
    reader = open_store(settings).open(HashEmbedder().cache_key, settings)
    (folder / "words.txt").unlink()  # read on first need: gone meanwhile, the texts give the words
    try:
        assert correct("trawlres", reader).text == "trawlers"
    finally:
        reader.close()
    # An index saved before the file was:
    reader = open_store(settings).open(HashEmbedder().cache_key, settings)
    try:
        assert correct("trawlres", reader).text == "trawlers"
    finally:
        reader.close()


def test_postgres_migration_gives_an_older_index_its_words(pg_settings):
    from qa.storage.postgres.store import PostgresStore
    from tests.test_postgres import sql

    update_index(pg_settings)
    sql(pg_settings, "DROP TABLE {s}.words")
    sql(pg_settings, "DELETE FROM {s}.schema_migrations WHERE version = 4")
    PostgresStore(pg_settings.pg_dsn, pg_settings.pg_schema).connect().close()
    assert ("trawlers",) in sql(pg_settings, "SELECT word FROM {s}.words")
    reader = open_store(pg_settings).open(HashEmbedder().cache_key, pg_settings)
    try:
        assert correct("trawlres", reader).text == "trawlers"
    finally:
        reader.close()


def test_the_setting_is_on_or_off():
    from qa.config import Settings
    from qa.errors import QAError

    assert Settings.from_env({}).spelling == "on" and Settings.from_env({"QA_SPELLING": "off"}).spelling == "off"
    for value in ("yes", "ON"):
        with pytest.raises(QAError, match="QA_SPELLING must be on or off"):
            Settings.from_env({"QA_SPELLING": value})


def test_the_typos_measured_swap_two_letters_of_the_longest_word_unless_that_makes_a_known_word():
    from qa.testing.typos import misspelt

    assert misspelt("What is the education of a tradesman?", lambda w: False) == "What is the edcuation of a tradesman?"
    assert misspelt("What is the education of a tradesman?", lambda w: w == "edcuation") is None
    assert misspelt("Who won it?", lambda w: False) is None  # no word of seven letters
