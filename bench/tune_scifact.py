"""Tune hybrid fusion (and BM25's k1/b) on SciFact's *train* qrels; check the choice once on test.

    python bench/tune_scifact.py [--data ../shared/data/scifact] [--out results/tuning.json]

Uses the index `qa eval --beir` caches (building it if needed). Dense and lexical chunk
rankings are computed once per query; each fusion variant then re-fuses them, so the grid
costs seconds, not re-indexing. Scores are document level, as in `qa eval --beir`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from qa import evaluation as ev
from qa.config import Settings
from qa.embedding.models import load_embedder
from qa.evaluation.beir import beir_id, index_beir, load_beir
from qa.retrieval.fusion import convex_combination, reciprocal_rank_fusion, strictly_decreasing
from qa.retrieval.search import Searcher
from qa.storage.local.lexical import Bm25Index
from qa.storage.local.snapshot import IndexLayout, Snapshot

DEPTH = 1000
METRICS = ["ndcg@10", "recall@100"]


def doc_scores(ids, scores, doc_of):
    return ev.document_run(ids, scores, doc_of, k=ev.CUTOFF)


def score(qrels, runs):
    values = ev.evaluate_run(qrels, runs, METRICS)
    return {m: round(ev.mean(v), 4) for m, v in values.items()}


def rankings(searcher, queries, vectors, lexical=None, depth=DEPTH):
    """qid -> (dense ids, dense scores, lexical ids, lexical scores), chunk level."""
    out = {}
    for qid, text in queries.items():
        dense = searcher.rank(text, "dense", depth, query_vector=vectors[qid])
        if lexical is None:
            lex = searcher.rank(text, "lexical", depth)
            lex_ids, lex_scores = lex.ids, lex.scores
        else:
            s, i = lexical.search(text, depth)
            lex_ids, lex_scores = i.tolist(), s.tolist()
        out[qid] = (dense.ids, dense.scores, lex_ids, lex_scores)
    return out


def _over_max(run: dict) -> dict:
    top = max(run.values(), default=0.0)
    return {i: (s / top if top > 0 else 0.0) for i, s in run.items()}


def fused_runs(ranked, doc_of, variant):
    """Document runs of one fusion variant."""
    kind, param = variant
    runs = {}
    for qid, (d_ids, d_scores, l_ids, l_scores) in ranked.items():
        if kind == "rrf":
            fused = reciprocal_rank_fusion([d_ids, l_ids], k=int(param))
        elif kind == "convex":
            fused = convex_combination([dict(zip(d_ids, d_scores)), dict(zip(l_ids, l_scores))], [1 - param, param])
        elif kind == "tmm":  # convex over scores divided by the list's maximum (theoretical minimum 0)
            dense, lexical = _over_max(dict(zip(d_ids, d_scores))), _over_max(dict(zip(l_ids, l_scores)))
            scores = {i: (1 - param) * dense.get(i, 0.0) + param * lexical.get(i, 0.0) for i in {*dense, *lexical}}
            fused = strictly_decreasing(sorted(scores.items(), key=lambda item: (-item[1], item[0])))
        elif kind == "rrf-doc":  # fuse document rankings instead of chunk rankings
            dd, ld = doc_scores(d_ids, d_scores, doc_of), doc_scores(l_ids, l_scores, doc_of)
            runs[qid] = dict(reciprocal_rank_fusion([list(dd), list(ld)], k=int(param))[: ev.CUTOFF])
            continue
        elif kind == "convex-doc":
            dd, ld = doc_scores(d_ids, d_scores, doc_of), doc_scores(l_ids, l_scores, doc_of)
            runs[qid] = dict(convex_combination([dd, ld], [1 - param, param])[: ev.CUTOFF])
            continue
        else:
            raise ValueError(kind)
        runs[qid] = doc_scores([i for i, _ in fused], [s for _, s in fused], doc_of)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--out", default="results/tuning.json")
    parser.add_argument("--skip-bm25", action="store_true", help="skip the k1/b grid")
    args = parser.parse_args()

    started = time.perf_counter()
    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.backend)
    index_settings, _ = index_beir(args.data, settings, embedder, progress=sys.stderr.isatty())
    snapshot = Snapshot.open_current(IndexLayout(Path(index_settings.index_dir)))
    searcher = Searcher(snapshot, embedder, index_settings)
    sources = {doc_id: source for source, (doc_id, _) in snapshot.catalog.sources().items()}
    chunks = ev.chunk_table(snapshot.catalog)
    doc_of = {c.id: beir_id(sources[c.doc_id]) for c in chunks}
    train, test = load_beir(args.data, "train"), load_beir(args.data, "test")
    print(
        f"{len(train.queries)} train queries, {len(test.queries)} test queries, {len(chunks)} chunks", file=sys.stderr
    )

    vectors = {}
    for data in (train, test):
        matrix = ev.embed_queries(searcher, list(data.queries.values()))
        vectors.update(zip(data.queries, matrix))
    ranked_train = rankings(searcher, train.queries, vectors)

    report: dict = {"train (depth 1000)": {}, "bm25_train": {}, "test": {}}
    single = {
        "dense": {q: doc_scores(r[0], r[1], doc_of) for q, r in ranked_train.items()},
        "lexical": {q: doc_scores(r[2], r[3], doc_of) for q, r in ranked_train.items()},
    }
    for name, runs in single.items():
        report["train (depth 1000)"][name] = score(train.qrels, runs)
    variants = [("rrf", k) for k in (1, 2, 5, 10, 20, 30, 60, 100)]
    variants += [("convex", a) for a in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)]
    variants += [("tmm", a) for a in (0.3, 0.4, 0.5)]
    variants += [("rrf-doc", k) for k in (5, 10, 60)] + [("convex-doc", a) for a in (0.3, 0.4, 0.5, 0.6)]
    for variant in variants:
        report["train (depth 1000)"][f"{variant[0]} {variant[1]}"] = score(
            train.qrels, fused_runs(ranked_train, doc_of, variant)
        )
        print(f"train {variant}: {report['train (depth 1000)'][f'{variant[0]} {variant[1]}']}", file=sys.stderr)

    # How deep each retriever's list goes before fusion (the product fuses Settings.candidates).
    report["depth_train"] = {}
    for depth in (100, 300):
        ranked = rankings(searcher, train.queries, vectors, depth=depth)
        for variant in (("rrf", 60), ("convex", 0.4), ("convex", 0.5), ("tmm", 0.4)):
            key = f"{variant[0]} {variant[1]} depth {depth}"
            report["depth_train"][key] = score(train.qrels, fused_runs(ranked, doc_of, variant))
            print(f"train {key}: {report['depth_train'][key]}", file=sys.stderr)

    # Whole-document BM25 (RETRIEVAL-NOTES): one lexical entry per document, fused with dense at document level.
    docs = {source: doc_id for doc_id, source in sources.items()}
    doc_texts = []
    doc_names = []
    for source, doc_id in sorted(docs.items()):
        doc_texts.append(snapshot.catalog.document(doc_id).text)
        doc_names.append(beir_id(source))
    whole = Bm25Index()
    whole.add(list(range(len(doc_texts))), doc_texts)
    for alpha in (0.4, 0.5, 0.6):
        runs = {}
        for qid, text in train.queries.items():
            s, i = whole.search(text, ev.CUTOFF)
            lexical_docs = {doc_names[j]: float(v) for j, v in zip(i.tolist(), s.tolist())}
            d_ids, d_scores = ranked_train[qid][0], ranked_train[qid][1]
            fused = convex_combination([doc_scores(d_ids, d_scores, doc_of), lexical_docs], [1 - alpha, alpha])
            runs[qid] = dict(fused[: ev.CUTOFF])
        report["train (depth 1000)"][f"whole-doc-bm25 convex-doc {alpha}"] = score(train.qrels, runs)

    if not args.skip_bm25:
        ids, texts = snapshot.catalog.all_chunks()
        for k1 in (0.9, 1.2, 1.5, 2.0):
            for b in (0.5, 0.75, 0.9):
                index = Bm25Index(k1=k1, b=b)
                index.add(ids.tolist(), texts)
                ranked = rankings(searcher, train.queries, vectors, lexical=index)
                lex = {q: doc_scores(r[2], r[3], doc_of) for q, r in ranked.items()}
                report["bm25_train"][f"k1={k1} b={b}"] = {
                    "lexical": score(train.qrels, lex),
                    "rrf 60": score(train.qrels, fused_runs(ranked, doc_of, ("rrf", 60))),
                    "rrf 10": score(train.qrels, fused_runs(ranked, doc_of, ("rrf", 10))),
                    "convex 0.5": score(train.qrels, fused_runs(ranked, doc_of, ("convex", 0.5))),
                }
                print(f"bm25 k1={k1} b={b}: {report['bm25_train'][f'k1={k1} b={b}']}", file=sys.stderr)

    # The test split, once: the old default, the chosen setting, and the best few on train.
    fused_train = {k: v for k, v in report["train (depth 1000)"].items() if k not in ("dense", "lexical")}
    best = sorted(fused_train, key=lambda k: -fused_train[k]["ndcg@10"])[:4]
    for depth in (1000, 300):
        ranked_test = rankings(searcher, test.queries, vectors, depth=depth)
        names = ["rrf 60", "convex 0.4"] + (best if depth == 1000 else [])
        for name in dict.fromkeys(names):
            if name.startswith("whole-doc"):
                continue
            kind, param = name.split()
            report["test"][f"{name} depth {depth}"] = score(
                test.qrels, fused_runs(ranked_test, doc_of, (kind, float(param)))
            )
    report["seconds"] = round(time.perf_counter() - started, 1)
    snapshot.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
