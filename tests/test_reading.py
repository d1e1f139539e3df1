"""The reader's part in an answer (qa.answering.reading): which sentences it reads, how its
scores join the fitted ones, and the answer phrase in bold in every interface. A fake reader
stands in for the model: what is tested is the combination, not the model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from qa.answering.answer import phrase_ranges, with_marks
from qa.answering.features import SentenceTable
from qa.answering.reader import Phrase, Reading
from qa.answering.reading import Combination, distinct_best, read_best
from qa.answering.transcript import answer_markdown
from qa.cli import format_answer
from qa.types import Answer, AnswerPhrase, Highlight, Passage
from qa.web.render import render_reply


def _table(spans, texts, owners) -> SentenceTable:
    n = len(spans)
    return SentenceTable(
        features=np.zeros((n, 1)),
        candidate=np.array(owners),
        spans=np.array(spans),
        texts=list(texts),
        cosines=np.zeros(n),
        coverage=np.zeros(n),
    )


class FakeReader:
    """Relevance: 5 for sentences holding "S-300V4", else -5; the phrase is that word."""

    def __init__(self) -> None:
        self.settings: dict = {}
        self.read: list[str] = []

    def score(self, question, contexts) -> Reading:
        self.read += [c.sentence for c in contexts]
        relevance = np.array([5.0 if "S-300V4" in c.sentence else -5.0 for c in contexts], dtype=np.float32)
        phrases = [
            Phrase("S-300V4", c.sentence.find("S-300V4"), c.sentence.find("S-300V4") + 7, 0.9, True)
            if "S-300V4" in c.sentence
            else None
            for c in contexts
        ]
        return Reading(relevance, phrases)


class _Cand:
    def __init__(self, title: str) -> None:
        self.title = title


def test_the_best_distinct_sentences_are_read_and_their_copies_share_the_score():
    texts = ["Japan protested.", "Russia deployed the S-300V4.", "Japan protested.", "Fishing quotas.", "Crab."]
    spans = [(0, 16), (17, 45), (0, 16), (46, 61), (62, 67)]
    table = _table(spans, texts, [0, 0, 1, 1, 1])
    logits = np.array([3.0, 2.0, 2.9, 1.0, 0.5])
    assert distinct_best(table, logits, 2) == [[0, 2], [1]]
    reader = FakeReader()
    adjusted, read = read_best(
        reader, "what did russia deploy", [_Cand("A"), _Cand("B")], table, logits, Combination(2, 1.0)
    )
    assert reader.read == ["Japan protested.", "Russia deployed the S-300V4."]  # two read, each once
    assert int(np.argmax(adjusted)) == 1  # the reader lifts the answering sentence to the top
    assert np.isclose(adjusted[0] - logits[0], adjusted[2] - logits[2])  # copies of one sentence: one score
    # Unread sentences gain what the worst read one gained: their order stays, below the answer.
    assert np.isclose(adjusted[3] - logits[3], -5.0) and np.isclose(adjusted[4] - logits[4], -5.0)
    assert read.phrases[1].text == "S-300V4" and read.relevance == {0: -5.0, 2: -5.0, 1: 5.0}


def test_weight_zero_reads_for_phrases_only():
    table = _table([(0, 10), (11, 30)], ["Crab quotas", "The S-300V4 is here."], [0, 0])
    logits = np.array([2.0, 1.0])
    adjusted, read = read_best(FakeReader(), "q", [_Cand("A")], table, logits, Combination(2, 0.0))
    assert np.array_equal(adjusted, logits) and read.phrases[1].text == "S-300V4"
    assert Combination(0, 1.0).active is False


def _answer() -> Answer:
    sentence = "Russia deployed an S-300V4 <air> defence system."
    phrase = AnswerPhrase(100 + 19, 100 + 26, "S-300V4")
    passage = Passage(
        rank=1, score=0.9, text=sentence, doc_id="kurils", title="Kurils", author="", source="kurils.md",
        start=100, end=100 + len(sentence), page=None, highlight=Highlight(100, 100 + len(sentence), sentence, phrase),
    )  # fmt: skip
    return Answer("what did russia deploy?", f"{sentence} [1]", (passage,))


def test_the_phrase_is_bold_in_every_interface():
    answer = _answer()
    assert phrase_ranges(answer) == [(19, 26)]
    assert with_marks(answer.answer, phrase_ranges(answer), "**", "**") == (
        "Russia deployed an **S-300V4** <air> defence system. [1]"
    )
    html = render_reply(answer, 1)
    assert '<b class="qa-phrase">S-300V4</b> &lt;air&gt;' in html  # in the answer, escaped around it
    assert html.count('<b class="qa-phrase">') == 1  # the source card's highlight stays one plain mark
    assert "\x1b[1mS-300V4\x1b[22m" in format_answer(answer, width=80, bold=True)
    assert "\x1b[1m" not in format_answer(answer, width=80)
    assert "**S-300V4**" in "\n".join(answer_markdown(answer))
    assert answer.to_dict()["passages"][0]["highlight"]["answer"] == {"start": 119, "end": 126, "text": "S-300V4"}


def test_no_phrase_no_marks():
    answer = _answer()
    plain = Answer(answer.question, answer.answer, (answer.passages[0].__class__(**{
        **answer.passages[0].__dict__, "highlight": Highlight(100, 149, answer.passages[0].highlight.text)
    }),))  # fmt: skip
    assert phrase_ranges(plain) == [] and "qa-phrase" not in render_reply(plain, 1)
    assert plain.to_dict()["passages"][0]["highlight"]["answer"] is None


@pytest.fixture
def two_lead_sentences(monkeypatch):
    """The short answer's rule at fixed values (its tuned ones may move): two sentences at most,
    the second when at least a fifth as likely as the best."""
    from qa.answering import answer

    monkeypatch.setattr(answer, "LEAD_SENTENCES", 2)
    monkeypatch.setattr(answer, "LEAD_SHARE", 0.2)


def test_the_short_answer_adds_no_sentence_the_previous_answer_showed_unless_it_is_the_best(two_lead_sentences):
    from types import SimpleNamespace

    from qa.answering.answer import Shown, answer_sentences, sentence_key, short_answer
    from qa.answering.scorer import Scored

    texts = ["Russia deployed the S-300V4.", "Japan protested.", "Bastion missiles came too."]
    table = _table([(0, 28), (29, 45), (46, 72)], texts, [0, 0, 0])
    scored = Scored(
        candidates=[SimpleNamespace(doc_id="kurils")],
        sentences=table,
        sentence_logits=np.array([3.0, 2.9, 2.8]),
        passage_logits=np.array([1.0]),
        gate_logit=5.0,
    )
    models = SimpleNamespace(answer_share=0.05, answer_max_sentences=4)
    shown = [Shown((0,), 0, 72, (0, 1, 2), 1.0)]
    # One passage: its best sentence and the next (nearly as likely) are the short answer, the
    # third close to them is the "more".
    lead, more = short_answer(scored, models, shown)
    assert lead == "Russia deployed the S-300V4. [1] Japan protested. [1]"
    assert more == "Bastion missiles came too. [1]"
    before = frozenset(sentence_key(s) for s in ("Russia deployed the S-300V4.", "Japan protested."))
    # The best sentence leads even when it was shown before; the other repeat is left out.
    assert short_answer(scored, models, shown, before) == (
        "Russia deployed the S-300V4. [1] Bastion missiles came too. [1]",
        "",
    )
    assert answer_sentences(_answer()) == ["Russia deployed an S-300V4 <air> defence system."]


def test_the_short_answer_adds_a_nearly_as_likely_sentence_of_another_passage(two_lead_sentences):
    from types import SimpleNamespace

    from qa.answering import answer
    from qa.answering.answer import Shown, short_answer
    from qa.answering.scorer import Scored

    texts = ["Russia deployed anti-ship missiles.", "The move was noted.", "An S-300V4 was deployed.", "Tanks too."]
    table = _table([(0, 35), (36, 55), (0, 24), (25, 35)], texts, [0, 0, 1, 1])
    near, far = np.log(answer.LEAD_SHARE) + 0.01, np.log(answer.LEAD_SHARE) - 0.01
    scored = Scored(
        candidates=[SimpleNamespace(doc_id="kurils"), SimpleNamespace(doc_id="s300")],
        sentences=table,
        sentence_logits=np.array([3.0, 2.99, 3.0 + near, 3.0 + far]),
        passage_logits=np.array([1.0, 0.9]),
        gate_logit=5.0,
    )
    models = SimpleNamespace(answer_share=0.05, answer_max_sentences=4)
    shown = [Shown((0,), 0, 55, (0, 1), 0.6), Shown((1,), 0, 35, (2, 3), 0.4)]
    lead, more = short_answer(scored, models, shown)
    # The second sentence of passage [1] is nearly as likely too: passage [2]'s comes first.
    assert lead == "Russia deployed anti-ship missiles. [1] An S-300V4 was deployed. [2]"
    assert more == "The move was noted. [1] Tanks too. [2]"


def test_the_combination_fit_reads_each_sentence_once():
    from qa.answering.reader import Context
    from qa.training.combination import CachingReader

    reader = FakeReader()
    caching = CachingReader(reader)
    first = caching.score("q", [Context("The S-300V4 came."), Context("Crab.")])
    again = caching.score("q", [Context("Crab."), Context("The S-300V4 came."), Context("Salmon.")])
    assert reader.read == ["The S-300V4 came.", "Crab.", "Salmon."]  # nothing read twice
    assert list(first.relevance) == [5.0, -5.0] and list(again.relevance) == [-5.0, 5.0, -5.0]
    assert again.phrases[1].text == "S-300V4"


def test_a_follow_up_demotes_the_sentences_the_previous_answer_showed():
    from types import SimpleNamespace

    from qa.answering.answer import REPEAT_PENALTY, demote_repeats, sentence_key
    from qa.answering.scorer import Scored

    texts = ["Russia deployed the S-300V4.", "Japan protested.", "Bastion missiles came too."]
    table = _table([(0, 28), (29, 45), (46, 72)], texts, [0, 0, 0])
    logits = np.array([3.0, 3.0 - REPEAT_PENALTY / 2, 3.0 - 2 * REPEAT_PENALTY])
    scored = Scored([SimpleNamespace(doc_id="kurils")], table, logits, np.array([1.0]), 5.0)
    demoted = demote_repeats(scored, frozenset({sentence_key("Russia deployed the S-300V4.")}))
    # The repeated sentence falls behind one not far below it, not behind one far below.
    assert list(np.argsort(-demoted.sentence_logits)) == [1, 0, 2]
    assert demote_repeats(scored, frozenset({"unrelated"})) is scored


def test_the_web_reply_keeps_more_a_click_away():
    answer = _answer()
    more = " ".join(answer.passages[0].highlight.text.split()) + " [1]"
    html = render_reply(replace(answer, more=more), 1)
    assert '<details class="qa-more"><summary>More from the sources</summary>' in html
    assert 'class="qa-cite" href="#qa-t1-p1"' in html.split('<details class="qa-more">')[1]  # its marker links
    assert "<details" not in render_reply(answer, 1)
    assert replace(answer, more=more).to_dict()["more"] == more
