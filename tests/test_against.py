"""qa.testing.against: an earlier commit's benchmark figures beside this checkout's (`python -m bench.against`)."""

from __future__ import annotations

import json

import pytest

from qa.testing.against import compare, compare_indexing, print_report


def _row(chunks: int, lexical: float, dense: float, hybrid: float) -> dict:
    return {"chunks": chunks, "lexical_p50_ms": lexical, "dense_p50_ms": dense, "hybrid_p50_ms": hybrid}


def test_compare_takes_the_ratio_of_the_medians_over_rounds():
    base = [[_row(100, 1.0, 2.0, 4.0)], [_row(100, 1.0, 2.0, 6.0)], [_row(100, 3.0, 2.0, 5.0)]]
    new = [[_row(100, 0.5, 2.0, 4.0)], [_row(100, 0.5, 3.0, 3.0)], [_row(100, 0.5, 1.0, 6.0)]]
    rows = {row["mode"]: row for row in compare(base, new)}
    assert set(rows) == {"lexical", "dense", "hybrid"}
    hybrid = rows["hybrid"]
    assert (hybrid["old_p50_ms"], hybrid["new_p50_ms"]) == (5.0, 4.0)
    assert hybrid["ratio"] == pytest.approx(0.8)
    assert hybrid["round_ratios"] == pytest.approx([1.0, 0.5, 1.2])
    assert rows["lexical"]["ratio"] == pytest.approx(0.5)
    assert all(row["chunks"] == 100 for row in rows.values())


def _build(docs: int, chunks: int, seconds: float, sentence_vectors: str | None = "late") -> dict:
    row = {"documents": docs, "chunks": chunks, "full_build_s": seconds, "build_chunks_per_s": chunks / seconds}
    if sentence_vectors:  # commits before sentence evidence wrote no such key
        row["sentence_vectors"] = sentence_vectors
    return row


def test_indexing_is_compared_in_documents_per_second_of_the_late_build():
    base = [[_build(1000, 4000, 40.0, None)], [_build(1000, 4000, 50.0, None)], [_build(1000, 4000, 20.0, None)]]
    # this checkout cuts fewer chunks; its "alone" build comes after and is not the one compared
    new = [[_build(1000, 3000, 50.0), _build(1000, 3000, 500.0, "alone")] for _ in range(3)]
    [row] = compare_indexing(base, new)
    assert (row["old_docs_per_s"], row["new_docs_per_s"]) == (25.0, 20.0)
    assert row["ratio"] == pytest.approx(0.8)
    assert row["round_ratios"] == pytest.approx([0.8, 1.0, 0.4])
    assert (row["old_chunks"], row["new_chunks"], row["new_chunks_per_s"]) == (4000, 3000, 60.0)


def test_a_saved_indexing_run_is_printed_again(capsys):
    rows = compare_indexing([[_build(1000, 4000, 40.0, None)]], [[_build(1000, 3000, 50.0)]])
    saved = json.dumps({"part": "indexing", "commit": "abc", "head": "def", "rounds": 1, "rows": rows})
    print_report(json.loads(saved))
    out = capsys.readouterr().out
    assert "None" not in out and out.count("\n| 1,000 |") == 1
    assert "Full build" in out and "| 1,000 | 4,000 | 3,000 | 100.0 | 60.0 | 25.0 | 20.0 | 0.80 | 0.80 |" in out


def test_a_saved_run_is_printed_again(capsys):
    base = [[_row(100_000, 1.0, 2.0, 4.0)]]
    new = [[_row(100_000, 0.5, 2.0, 4.4)]]
    saved = json.dumps({"commit": "abc", "head": "def", "rounds": 1, "rows": compare(base, new)})
    print_report(json.loads(saved))  # a run saved before --part existed: latency
    out = capsys.readouterr().out
    assert "against abc" in out and "| 100,000 | hybrid | 4.00 | 4.40 | 1.10 | 1.10 |" in out
