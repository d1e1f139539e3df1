"""An earlier commit's benchmark figures beside this checkout's: `python -m bench.against` runs
both trees' `bench.run` in turn, round after round, and compares their rows here.

The ratio is of the medians over the rounds; the range is the rounds' own ratios.
"""

from __future__ import annotations

import statistics

MODES = ("lexical", "dense", "hybrid")


def compare_indexing(base: list[list[dict]], new: list[list[dict]]) -> list[dict]:
    """The full build with late sentence vectors (or none, before they existed): documents and
    chunks per second, the median over the rounds on each side, and the documents' ratio."""

    def build(rows: list[dict]) -> dict:
        return next(r for r in rows if r.get("sentence_vectors", "late") == "late")

    def docs_per_s(row: dict) -> float:
        return row["documents"] / row["full_build_s"]

    old = [build(run) for run in base]
    now = [build(run) for run in new]
    old_docs = statistics.median(docs_per_s(r) for r in old)
    new_docs = statistics.median(docs_per_s(r) for r in now)
    return [
        {
            "documents": now[0]["documents"],
            "old_chunks": old[0]["chunks"],
            "new_chunks": now[0]["chunks"],
            "old_docs_per_s": old_docs,
            "new_docs_per_s": new_docs,
            "old_chunks_per_s": statistics.median(r["build_chunks_per_s"] for r in old),
            "new_chunks_per_s": statistics.median(r["build_chunks_per_s"] for r in now),
            "ratio": new_docs / old_docs,
            "round_ratios": [docs_per_s(n) / docs_per_s(o) for n, o in zip(now, old, strict=True)],
        }
    ]


def compare(base: list[list[dict]], new: list[list[dict]]) -> list[dict]:
    """Per scale and mode: the median p50 over the rounds on each side, their ratio and the rounds' range."""
    rows = []
    for i, first in enumerate(new[0]):
        for mode in MODES:
            key = f"{mode}_p50_ms"
            old = [run[i][key] for run in base]
            now = [run[i][key] for run in new]
            ratios = [n / o for n, o in zip(now, old, strict=True) if o > 0]
            rows.append(
                {
                    "chunks": first["chunks"],
                    "mode": mode,
                    "old_p50_ms": statistics.median(old),
                    "new_p50_ms": statistics.median(now),
                    "ratio": statistics.median(now) / statistics.median(old),
                    "round_ratios": ratios,
                }
            )
    return rows


def print_report(data: dict) -> None:
    head = f"this checkout ({data['head']}) against {data['commit']},\n{data['rounds']} rounds each, run in turn"
    if data.get("part", "latency") == "indexing":
        heading = f"## Full build, onnx-int8: {head} (the same SciFact abstracts; model already loaded)"
        columns = ["docs", "old chunks", "new chunks", "old chunks/s", "new chunks/s", "old docs/s", "new docs/s"]
        cells = [
            [
                f"{row['documents']:,}",
                f"{row['old_chunks']:,}",
                f"{row['new_chunks']:,}",
                *(
                    f"{row[k]:.1f}"
                    for k in ("old_chunks_per_s", "new_chunks_per_s", "old_docs_per_s", "new_docs_per_s")
                ),
            ]
            for row in data["rows"]
        ]
        ratio = "new / old docs/s"
    else:
        heading = f"## Query latency p50: {head} (retrieval incl. query embedding)"
        columns = ["chunks", "mode", "old p50 ms", "new p50 ms"]
        cells = [
            [f"{row['chunks']:,}", row["mode"], f"{row['old_p50_ms']:.2f}", f"{row['new_p50_ms']:.2f}"]
            for row in data["rows"]
        ]
        ratio = "new / old"
    print(heading + "\n")
    columns += [ratio, "rounds' new / old"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row, first in zip(data["rows"], cells, strict=True):
        spread = ", ".join(f"{x:.2f}" for x in row["round_ratios"])
        print("| " + " | ".join([*first, f"{row['ratio']:.2f}", spread]) + " |")
