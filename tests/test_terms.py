"""The shared Analyzer: bm25s's analysis, with stems memoised per word."""

from __future__ import annotations

import threading

from qa.terms import Analyzer

TEXT = "The cities' populations grew; running runners ran past the running water in 1905."


def test_memoised_stems_are_the_stemmer_s():
    analyzer = Analyzer()
    words = ["running", "cities", "populations", "running", "ran", "the"]
    assert analyzer.stem_words(words) == analyzer.stemmer().stemWords(words)
    assert analyzer.stem_words(words) == analyzer.stemmer().stemWords(words)  # from the memo
    assert analyzer.stem_words([]) == []


def test_terms_are_the_same_with_a_cold_or_full_memo():
    cold = Analyzer().terms([TEXT, "", "a b"])
    analyzer = Analyzer()
    analyzer.MAX_MEMO = 3  # starts again every few words
    assert [analyzer.terms([TEXT, "", "a b"]) for _ in range(3)] == [cold] * 3
    assert cold[0][:3] == ["citi", "popul", "grew"]
    assert cold[1:] == [[], []]  # empty, and one-letter words only


def test_the_memo_is_shared_safely_across_threads():
    analyzer = Analyzer()
    analyzer.MAX_MEMO = 50
    expected = Analyzer().terms([f"{TEXT} word{i} other{i}" for i in range(200)])
    results: list[list[list[str]]] = []

    def work() -> None:
        results.append(analyzer.terms([f"{TEXT} word{i} other{i}" for i in range(200)]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


MIXED = [
    TEXT,
    "S-300V4 and Bastion-P: Russia's anti-ship missiles (2016), the T72B3 tanks, Итуруп and 択捉島.",
    "naïve café_au_lait x y z 12 3 — e-mail: a.b@c.org; über-Straße ÉTÉ",
    "",
    "a",
]


def test_terms_are_bm25s_s_own():
    import bm25s
    import Stemmer

    ours = Analyzer().terms(MIXED)
    theirs = bm25s.tokenize(
        MIXED, stopwords="en_plus", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False
    )
    assert ours == [list(t) for t in theirs]


def test_the_faster_token_pattern_finds_bm25s_s_words():
    import random
    import re

    from qa.terms import BM25S_TOKEN, TOKEN

    reference = re.compile(BM25S_TOKEN)
    rng = random.Random(0)
    alphabet = "ab_1é中 .-'’\u0301\u00a0ßİ\t\n"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert TOKEN.findall(text) == reference.findall(text), text
