"""Tune first-stage retrieval on two collections at once, and report each.

    python -m bench.tune                       # the grid for the current index settings (QA_* variables)
    QA_CHUNK_CONTEXT=none QA_PARAGRAPH_SIZE=0 python -m bench.tune     # the same grid on another index
    python -m bench.tune --part extras         # the lexical and fusion ideas that were not kept

Tuning collections: SciFact's *train* queries (../shared/data/scifact, document level, nDCG@10)
and squad-dev-a's 4,566 questions over its own 24 articles (../shared/data/squad-dev-a, passage
level, Hit@1 and Hit@5). A setting is chosen for being good on both: the grid is ranked by the
mean of SciFact train nDCG@10 and squad-dev-a Hit@1, and each collection's own figures are
printed beside it. SciFact's test queries are never used here; `qa eval` reports them.

The indexes are the ones `qa eval` caches for the current settings (built if missing): chunk
context and paragraph size need their own index, so run the script once per such setting;
results/tuning.json keeps one entry per index setting. Within one index, dense and lexical chunk
rankings are computed once per query (depth 1000) and every fusion variant re-fuses them with
qa.retrieval.fusion.fuse_rankings, the function `qa ask` and `qa eval` use; BM25 variants are
rebuilt in memory from the lexical index's texts. A run takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embedding.models import load_embedder
from qa.retrieval.fusion import convex_combination, fuse_rankings, min_max, strictly_decreasing
from qa.storage.local.lexical import Bm25Index
from qa.training.retrieval_sets import Collection, Ranked, beir_collection, question_collection

DEPTH = 1000
REPO = Path(__file__).resolve().parent.parent


def first_stage(collection: Collection, depth: int = DEPTH) -> None:
    for qid, text in collection.queries.items():
        dense = collection.searcher.rank(text, "dense", depth, query_vector=collection.vectors[qid])
        lexical = collection.searcher.rank(text, "lexical", depth)
        collection.dense[qid] = (dense.ids, dense.scores)
        collection.lexical[qid] = (lexical.ids, lexical.scores)


# -- variants --------------------------------------------------------------------------------


def fused(collection: Collection, lexical: Ranked | None = None, dense: Ranked | None = None, **fusion) -> Ranked:
    """Every query's hybrid ranking with fuse_rankings (the product's fusion) and the given parameters."""
    lexical, dense = lexical or collection.lexical, dense or collection.dense
    out = {}
    for qid in collection.queries:
        ranked = fuse_rankings(dict(zip(*dense[qid])), dict(zip(*lexical[qid])), **fusion)
        out[qid] = ([i for i, _ in ranked], [s for _, s in ranked])
    return out


def lexical_with(collection: Collection, index, search=None, depth: int = DEPTH) -> Ranked:
    search = search or index.search
    out = {}
    for qid, text in collection.queries.items():
        scores, ids = search(text, depth)
        out[qid] = (ids.tolist(), scores.tolist())
    return out


def bm25(texts: Mapping[int, str], k1: float, b: float, method: str = "lucene", pairs: float = 0.0) -> Bm25Index:
    """A BM25 index over the texts, with adjacent-term pairs of the given weight (0: none)."""
    index = _Bm25Variant(k1=k1, b=b, pairs=pairs) if method != "lucene" else Bm25Index(k1=k1, b=b, pairs=pairs)
    if method != "lucene":
        index.method = method
    ids = list(texts)
    index.add(ids, [texts[i] for i in ids])
    index._ensure_built()
    return index


class _Bm25Variant(Bm25Index):
    """bm25s's other scoring variants (BM25+, BM25L, ATIRE), for comparison only."""

    method = "bm25+"

    def _ensure_built(self) -> None:
        import bm25s

        if not self._stale:
            return
        self._row_ids = np.fromiter(self._texts.keys(), dtype=np.int64, count=len(self._texts))
        self._retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self._retriever.index(self._tokenize(list(self._texts.values())), show_progress=False)
        self._df, self._stale = None, False


def _top_rows(index: Bm25Index, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, int(np.count_nonzero(scores > 0)))
    rows = np.argsort(-scores, kind="stable")[:k]
    return scores[rows], index._row_ids[rows]


def weighted_search(index: Bm25Index, weights: Mapping[str, float], k: int) -> tuple[np.ndarray, np.ndarray]:
    """BM25 with a weight per query term (RM3's expanded query)."""
    vocab = index._retriever.vocab_dict
    scores = np.zeros(len(index._row_ids), dtype=np.float32)
    for term, weight in weights.items():
        if term in vocab:
            scores += weight * index.scores([vocab[term]])
    return _top_rows(index, scores, k)


def rm3(index: Bm25Index, query: str, k: int, docs: int, terms: int, original: float):
    """RM3 (Abdul-Jaleel et al. 2004): expand the query with the top terms of the first pass's best chunks."""
    scores, ids = index.search(query, docs)
    asked = collections.Counter(t for t in index.query_terms(query) if t in index._retriever.vocab_dict)
    if not asked or not len(ids):
        return index.search(query, k)
    doc_weights = np.exp(scores - scores.max())
    doc_weights /= doc_weights.sum()
    model: collections.Counter = collections.Counter()
    for weight, row in zip(doc_weights, ids.tolist()):
        words = index.terms([index._texts[row]])[0]
        for term, count in collections.Counter(words).items():
            model[term] += weight * count / len(words)
    expansion = dict(model.most_common(terms))
    total, length = sum(expansion.values()), sum(asked.values())
    weights: collections.Counter = collections.Counter()
    for term, count in asked.items():
        weights[term] += original * count / length
    for term, value in expansion.items():
        weights[term] += (1 - original) * value / total
    return weighted_search(index, weights, k)


class _Bigrams(Bm25Index):
    """BM25 over terms and adjacent term pairs (a proximity signal), for comparison only."""

    def _tokens(self, text: str) -> list[str]:
        words = self.terms([text])[0]
        return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]

    def _ensure_built(self) -> None:
        import bm25s

        if not self._stale:
            return
        self._row_ids = np.fromiter(self._texts.keys(), dtype=np.int64, count=len(self._texts))
        self._retriever = bm25s.BM25(k1=self.k1, b=self.b)
        self._retriever.index([self._tokens(t) for t in self._texts.values()], show_progress=False)
        self._df, self._stale = None, False

    def search_pairs(self, query: str, k: int, pair_weight: float):
        self._ensure_built()
        words = self.terms([query])[0]
        weights = collections.Counter({w: 1.0 for w in words})
        for a, b in itertools.pairwise(words):
            weights[f"{a}_{b}"] += pair_weight
        return weighted_search(self, weights, k)


def three_way(collection: Collection, extra: Mapping[str, Mapping[int, float]], weights: Sequence[float]) -> Ranked:
    """Convex fusion of dense, lexical and a per-query chunk score (already in [0, 1])."""
    out = {}
    for qid in collection.queries:
        dense = dict(zip(*collection.dense[qid]))
        lexical = dict(zip(*collection.lexical[qid]))
        items = {*dense, *lexical}
        parts = [dict(zip(dense, min_max(list(dense.values())))), dict(zip(lexical, min_max(list(lexical.values()))))]
        scores = {i: weights[0] * parts[0].get(i, 0.0) + weights[1] * parts[1].get(i, 0.0) for i in items}
        for i in items:
            scores[i] += weights[2] * extra[qid].get(i, 0.0)
        ranked = strictly_decreasing(sorted(scores.items(), key=lambda item: -item[1]))
        out[qid] = ([i for i, _ in ranked], [s for _, s in ranked])
    return out


def document_scores(collection: Collection, k1: float, b: float) -> dict[str, dict[int, float]]:
    """Whole-document BM25 (title and text) of each chunk's document, divided by the best document's."""
    catalog = collection.snapshot.catalog
    doc_ids = sorted({r.chunk.doc_id for r in catalog.chunk_records(catalog.all_chunks()[0].tolist()).values()})
    texts = []
    for doc_id in doc_ids:
        doc = catalog.document(doc_id)
        texts.append(doc.text if doc.text.startswith(doc.title) else f"{doc.title}\n\n{doc.text}")
    index = Bm25Index.build(list(range(len(texts))), texts, k1=k1, b=b)
    position = {d: i for i, d in enumerate(doc_ids)}
    chunk_doc = {
        i: position[r.chunk.doc_id] for i, r in catalog.chunk_records(catalog.all_chunks()[0].tolist()).items()
    }
    out = {}
    for qid, text in collection.queries.items():
        scores, ids = index.search(text, len(texts))
        by_doc = np.zeros(len(texts))
        by_doc[ids] = scores
        top = by_doc.max() or 1.0
        out[qid] = {i: by_doc[d] / top for i, d in chunk_doc.items() if by_doc[d] > 0}
    return out


def adaptive(collection: Collection, base: float, slope: float, k: int, candidates: int) -> Ranked:
    """A per-query lexical weight from how peaked each retriever's scores are (top-1 vs top-k gap)."""

    def peak(values: Sequence[float]) -> float:
        v = np.sort(np.asarray(values, dtype=float))[::-1]
        return 0.0 if len(v) < 2 or v[0] == v[-1] else float((v[0] - v[min(k, len(v) - 1)]) / (v[0] - v[-1]))

    out = {}
    for qid in collection.queries:
        dense = dict(zip(*(x[:candidates] for x in collection.dense[qid])))
        lexical = dict(zip(*(x[:candidates] for x in collection.lexical[qid])))
        weight = min(0.9, max(0.1, base + slope * (peak(list(lexical.values())) - peak(list(dense.values())))))
        ranked = convex_combination([dense, lexical], [1 - weight, weight])
        out[qid] = ([i for i, _ in ranked], [s for _, s in ranked])
    return out


def zscore_fusion(collection: Collection, weight: float, candidates: int) -> Ranked:
    def z(run: dict[int, float]) -> dict[int, float]:
        v = np.array(list(run.values()), dtype=float)
        sd = v.std() if len(v) > 1 else 0.0
        return {i: (s - v.mean()) / sd if sd > 0 else 0.0 for i, s in run.items()}

    out = {}
    for qid in collection.queries:
        dense = z(dict(zip(*(x[:candidates] for x in collection.dense[qid]))))
        lexical = z(dict(zip(*(x[:candidates] for x in collection.lexical[qid]))))
        floor_d, floor_l = min(dense.values(), default=0.0), min(lexical.values(), default=0.0)
        scores = {
            i: (1 - weight) * dense.get(i, floor_d) + weight * lexical.get(i, floor_l) for i in {*dense, *lexical}
        }
        ranked = strictly_decreasing(sorted(scores.items(), key=lambda item: -item[1]))
        out[qid] = ([i for i, _ in ranked], [s for _, s in ranked])
    return out


def dense_feedback(collection: Collection, top: int, beta: float, weight: float) -> Ranked:
    """Rocchio feedback on the query vector from the top hybrid chunks, then dense search again."""
    ids, _ = collection.snapshot.catalog.all_chunks()
    matrix = collection.snapshot.vectors.vectors(ids)
    row = {int(i): j for j, i in enumerate(ids)}
    out = {}
    for qid in collection.queries:
        first = fuse_rankings(
            dict(zip(*collection.dense[qid])), dict(zip(*collection.lexical[qid])), lexical_weight=weight
        )
        vector = collection.vectors[qid] + beta * matrix[[row[i] for i, _ in first[:top]]].mean(axis=0)
        sims = matrix @ (vector / np.linalg.norm(vector))
        order = np.argsort(-sims)[:DEPTH]
        out[qid] = ([int(ids[j]) for j in order], [float(sims[j]) for j in order])
    return out


# -- the run ---------------------------------------------------------------------------------


def judged(rows: dict[str, list[dict]], collections_: Sequence[Collection]) -> list[tuple[str, float]]:
    """Variants best first by the mean of each collection's headline figure."""
    order = []
    for name, results in rows.items():
        order.append((name, float(np.mean([r[c.headline] for r, c in zip(results, collections_)]))))
    return sorted(order, key=lambda item: -item[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", default=str(REPO.parent / "shared" / "data" / "scifact"))
    parser.add_argument("--squad", default=str(REPO.parent / "shared" / "data" / "squad-dev-a"))
    parser.add_argument("--out", default=str(REPO / "results" / "tuning.json"))
    parser.add_argument(
        "--part",
        action="append",
        choices=["bm25", "fusion", "extras"],
        help="run only this part (repeatable; default bm25 and fusion): BM25 parameters and variants, "
        "fusion method / weight / candidates, or the ideas that were tried and not kept",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.backend)
    tuning = [
        beir_collection(args.scifact, "train", settings, embedder),
        question_collection(args.squad, settings, embedder),
    ]
    for collection in tuning:
        first_stage(collection)
    rows: dict[str, list[dict]] = {}

    def record(name: str, results: list[dict]) -> None:
        rows[name] = results
        cells = "  ".join(
            f"{c.name}: " + " ".join(f"{m} {v:.4f}" for m, v in r.items()) for c, r in zip(tuning, results)
        )
        print(f"{name:<44} {cells}", file=sys.stderr, flush=True)

    record("dense alone", [c.score(c.dense) for c in tuning])
    own = f"k1={settings.bm25_k1:g} b={settings.bm25_b:g} pairs {settings.bm25_pairs:g}"
    record(f"lexical alone ({own})", [c.score(c.lexical) for c in tuning])
    parts = args.part or ["bm25", "fusion"]
    # BM25 parameters and variants, each fused with the defaults.
    lexical_variants: dict[str, list[Ranked]] = {}
    pairs = settings.bm25_pairs
    for k1, b in itertools.product((0.6, 0.9, 1.2, 1.5), (0.25, 0.4, 0.75)) if "bm25" in parts else ():
        lexical_variants[f"bm25 k1={k1} b={b} pairs {pairs:g}"] = [
            lexical_with(c, bm25(c.texts(), k1, b, pairs=pairs)) for c in tuning
        ]
    for weight in (0.0, 0.1, 0.5, 1.0) if "bm25" in parts else ():
        lexical_variants[f"bm25 k1={settings.bm25_k1:g} b={settings.bm25_b:g} pairs {weight:g}"] = [
            lexical_with(c, bm25(c.texts(), settings.bm25_k1, settings.bm25_b, pairs=weight)) for c in tuning
        ]
    for method in ("bm25+", "bm25l") if "bm25" in parts else ():
        lexical_variants[f"{method} k1=0.9 b=0.4 pairs {pairs:g}"] = [
            lexical_with(c, bm25(c.texts(), 0.9, 0.4, method, pairs=pairs)) for c in tuning
        ]
    for name, per_collection in lexical_variants.items():
        record(f"{name}: lexical", [c.score(lex) for c, lex in zip(tuning, per_collection)])
        record(
            f"{name}: hybrid convex 0.5",
            [c.score(fused(c, lex, lexical_weight=0.5, candidates=DEPTH)) for c, lex in zip(tuning, per_collection)],
        )
    # Fusion: method, weight, candidates per retriever.
    for candidates in (100, 300, 1000) if "fusion" in parts else ():
        for weight in (0.3, 0.4, 0.45, 0.5, 0.55, 0.6):
            record(
                f"convex {weight} candidates {candidates}",
                [c.score(fused(c, lexical_weight=weight, candidates=candidates)) for c in tuning],
            )
        for k in (10, 60):
            record(
                f"rrf k={k} candidates {candidates}",
                [c.score(fused(c, method="rrf", rrf_k=k, candidates=candidates)) for c in tuning],
            )
    if "extras" in parts:
        for c in tuning:
            c.plain = bm25(c.texts(), settings.bm25_k1, settings.bm25_b, pairs=settings.bm25_pairs)  # type: ignore[attr-defined]
        for docs, terms, original in ((10, 10, 0.5), (5, 10, 0.7), (10, 20, 0.7), (3, 5, 0.8)):
            lex = [
                lexical_with(c, None, lambda q, k, c=c, n=(docs, terms, original): rm3(c.plain, q, k, *n))
                for c in tuning
            ]
            record(f"rm3 {docs} docs {terms} terms {original}: lexical", [c.score(x) for c, x in zip(tuning, lex)])
            record(
                f"rm3 {docs} docs {terms} terms {original}: hybrid 0.5",
                [c.score(fused(c, x, lexical_weight=0.5, candidates=DEPTH)) for c, x in zip(tuning, lex)],
            )
        for c in tuning:
            body = {i: r.chunk.text for i, r in c.snapshot.catalog.chunk_records(list(c.texts())).items()}
            prefix = {i: t[: len(t) - len(body[i])] for i, t in c.texts().items()}
            c.fields = (  # type: ignore[attr-defined]
                bm25(body, settings.bm25_k1, settings.bm25_b),
                bm25({i: p or "-" for i, p in prefix.items()}, settings.bm25_k1, settings.bm25_b),
            )
        for title_weight in (0.3, 0.5, 1.0):

            def two_fields(query, k, c, w=title_weight):
                body, title = c.fields
                total = np.zeros(len(body._row_ids), dtype=np.float32)
                for index, weight in ((body, 1.0), (title, w)):
                    ids = [
                        index._retriever.vocab_dict[t]
                        for t in index.query_terms(query)
                        if t in index._retriever.vocab_dict
                    ]
                    if ids:
                        total += weight * index.scores(ids)
                return _top_rows(body, total, k)

            lex = [lexical_with(c, None, lambda q, k, c=c: two_fields(q, k, c)) for c in tuning]
            record(
                f"title as a field (weight {title_weight}): hybrid 0.5",
                [c.score(fused(c, x, lexical_weight=0.5, candidates=DEPTH)) for c, x in zip(tuning, lex)],
            )
        for c in tuning:
            c.pairs = _Bigrams(k1=settings.bm25_k1, b=settings.bm25_b)  # type: ignore[attr-defined]
            c.pairs.add(list(c.texts()), list(c.texts().values()))
        for pair_weight in (0.25, 0.5):
            lex = [
                lexical_with(c, None, lambda q, k, c=c, w=pair_weight: c.pairs.search_pairs(q, k, w)) for c in tuning
            ]
            record(
                f"term pairs (weight {pair_weight}): hybrid 0.5",
                [c.score(fused(c, x, lexical_weight=0.5, candidates=DEPTH)) for c, x in zip(tuning, lex)],
            )
        docs = [document_scores(c, settings.bm25_k1, settings.bm25_b) for c in tuning]
        for weights in ((0.5, 0.4, 0.1), (0.5, 0.35, 0.15), (0.5, 0.3, 0.2), (0.45, 0.35, 0.2)):
            record(
                f"whole-document BM25 {weights}",
                [c.score(three_way(c, d, weights)) for c, d in zip(tuning, docs)],
            )
        for base, slope, k in ((0.45, 0.5, 3), (0.45, 0.5, 10), (0.5, 0.5, 10)):
            record(
                f"adaptive weight {base} + {slope} * peak@{k} gap",
                [c.score(adaptive(c, base, slope, k, DEPTH)) for c in tuning],
            )
        for weight in (0.4, 0.5):
            record(f"z-score convex {weight}", [c.score(zscore_fusion(c, weight, DEPTH)) for c in tuning])
        for top, beta in ((3, 0.3), (1, 0.3)):
            dense = [dense_feedback(c, top, beta, 0.5) for c in tuning]
            record(
                f"dense feedback top {top} beta {beta}: hybrid 0.5",
                [c.score(fused(c, dense=d, lexical_weight=0.5, candidates=DEPTH)) for c, d in zip(tuning, dense)],
            )
    order = judged(rows, tuning)
    label = (
        f"context={settings.chunk_context} paragraph={max(settings.paragraph_size, settings.chunk_size)} "
        f"chunk={settings.chunk_size}/{settings.chunk_overlap} bm25={settings.bm25_k1:g}/{settings.bm25_b:g}"
        f" pairs={settings.bm25_pairs:g}"
    )
    entry = {
        "index": label,
        "collections": [{"name": c.name, "queries": len(c.queries), "headline": c.headline} for c in tuning],
        "criterion": "mean of " + " and ".join(f"{c.name} {c.headline}" for c in tuning),
        "variants": {name: dict(zip([c.name for c in tuning], results)) for name, results in rows.items()},
        "best": order[:10],
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    saved = json.loads(out.read_text()) if out.exists() else {}
    saved[label] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"\n{label}: best by the {entry['criterion']}")
    for name, value in order[:12]:
        print(f"  {value:.4f}  {name:<44} " + "  ".join(f"{k} {v}" for k, v in entry["variants"][name].items()))
    for collection in tuning:
        collection.snapshot.close()
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
