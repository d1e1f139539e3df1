"""Follow-up questions: which ones lean on the conversation, and what gets searched."""

from __future__ import annotations

import pytest

from qa.answering.followup import MAX_CARRIED_TERMS, followup_query, is_followup, key_terms

FIRST = "what did Russia deploy to the Kurils?"


@pytest.mark.parametrize(
    ("question", "searched"),
    [
        ("and how did Japan respond?", "how did Japan respond? Russia deploy Kurils"),
        ("And how did Japan respond?", "how did Japan respond? Russia deploy Kurils"),
        ("but why?", "why? Russia deploy Kurils"),
        # A new subject takes the old one's place: China for Russia, not beside it.
        ("what about China?", "what about China? deploy Kurils"),
        ("How did Japan respond?", "How did Japan respond? Russia deploy Kurils"),
        ("What did they deploy there?", "What did they deploy there? Russia Kurils"),
        ("and the Kuril islands?", "the Kuril islands? Russia deploy"),  # "Kuril" already covers "Kurils"
        ("Tell me more", "Tell me more Russia deploy Kurils"),
    ],
)
def test_follow_ups_carry_the_previous_key_terms(question, searched):
    assert is_followup(question)
    assert followup_query(question, [FIRST]) == searched


@pytest.mark.parametrize(
    "question",
    [
        "What is the Northern Territories dispute between Japan and Russia about?",
        "When did Abe meet Putin in Nagato?",
        "Which quotas do Japanese trawlers depend on for crab and salmon?",
    ],
)
def test_standalone_questions_are_searched_as_typed(question):
    assert not is_followup(question)
    assert followup_query(question, [FIRST]) is None


def test_no_previous_turn_or_nothing_to_add():
    assert followup_query("and how did Japan respond?", []) is None
    assert followup_query("and how did Japan respond?", ["", "  "]) is None
    assert followup_query("and did Russia deploy to the Kurils?", [FIRST]) is None
    assert followup_query("   ", [FIRST]) is None


def test_chains_keep_the_topic_but_stay_short():
    second = followup_query("and how did Japan respond?", [FIRST])
    third = followup_query("what about the United States?", [FIRST, second])
    assert third == "what about the United States? respond Russia deploy Kurils"  # in Japan's place
    assert followup_query("and what about China?", ["who is Strelkov?"]) is None  # nothing else to carry
    assert (
        followup_query("what about china", ["what did russia deploy to the kurils"]) == "what about china deploy kurils"
    )
    long_previous = " ".join(f"term{i}" for i in range(30))
    carried = followup_query("and then?", [long_previous]).split()[1:]
    assert len(carried) == MAX_CARRIED_TERMS


def test_key_terms_keep_codes_names_and_non_ascii():
    assert key_terms("What did Russia deploy? The S-300V4, Russia’s «Bastion» and 東京の外交, naïve") == [
        "Russia",
        "deploy",
        "S-300V4",
        "Bastion",
        "東京の外交",
        "naïve",
    ]


def test_a_person_pronoun_carries_the_names_the_last_answer_led_with():
    from qa.answering.followup import names_in

    title = "What a tangled web we weave: North Asian strategic relations"
    assert names_in(f"{title} was written by William Baulch.", title) == ["William Baulch"]
    assert names_in("Shinzo Abe met Vladimir Putin in Nagato.") == ["Shinzo Abe", "Vladimir Putin"]
    searched = followup_query(
        "What is his position?", ["wrote essay North Asian strategic relations"], referents=["William Baulch"]
    )
    assert searched.startswith("What is his position? William Baulch")
    # Without a person pronoun the names are not forced in.
    assert "Baulch" not in followup_query(
        "and the islands?", ["essay strategic relations"], referents=["William Baulch"]
    )


def test_a_topic_shift_that_says_what_it_asks_stands_alone():
    assert (
        followup_query("and what about China? how would it react to Russia and Japan getting closer", [FIRST]) is None
    )
    assert followup_query("what about China?", [FIRST]) == "what about China? deploy Kurils"


def test_pronouns_are_never_carried():
    previous = "what did he sign with her, and why did they protest?"
    assert key_terms(previous) == ["sign", "protest"]
    assert followup_query("and then?", [previous]) == "then? sign protest"
