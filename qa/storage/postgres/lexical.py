"""The lexical side in SQL: chunk terms as a tsvector literal (the local store's analysis, with
positions), and the BM25 parameters both stores share."""

from __future__ import annotations

from qa.terms import Analyzer, term_pairs

# BM25 parameters when none are given: the defaults of Settings (QA_BM25_K1/B) and of the local
# store's Bm25Index, so that both rank alike.
K1, B = 0.9, 0.4
# PostgreSQL keeps at most 256 positions per lexeme and refuses lexemes over 2 KB.
MAX_POSITIONS = 256
MAX_LEXEME_BYTES = 1000


def quote_lexeme(term: str) -> str:
    """A lexeme as tsvector and tsquery input spell it: quoted, quotes doubled, backslashes escaped."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(analyzer: Analyzer, text: str, pairs: bool = False) -> tuple[str, int]:
    """(tsvector literal of text's terms with positions, number of indexed terms).

    With pairs, each two adjacent terms are also a lexeme "a b" at the first one's position, and
    count in the text's length, as in the local store's index (qa.terms.indexed_terms)."""
    terms = analyzer.terms([text])[0]
    positions: dict[str, list[int]] = {}
    for position, term in enumerate(terms, start=1):
        if len(term.encode("utf-8")) <= MAX_LEXEME_BYTES:
            positions.setdefault(term, []).append(min(position, 16383))
    joined = term_pairs(terms) if pairs else []
    for position, pair in enumerate(joined, start=1):
        if len(pair.encode("utf-8")) <= MAX_LEXEME_BYTES:
            positions.setdefault(pair, []).append(min(position, 16383))
    parts = [f"{quote_lexeme(term)}:{','.join(map(str, places[:MAX_POSITIONS]))}" for term, places in positions.items()]
    return " ".join(parts), len(terms) + len(joined)
