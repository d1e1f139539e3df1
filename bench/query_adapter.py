"""A linear query adapter fitted on judged queries: tried and not kept (docs/experiments/tried-and-not-kept.md).

    python -m bench.query_adapter                # fit, print the held-out figures (about 15 min on 2 cores)
    python -m bench.query_adapter --ridge 0.1    # a stronger pull towards the unchanged query

The adapter maps a query's vector q to normalise(q + qW) before dense search (W is dim x dim,
ridge-penalised towards zero, so towards the model's own query). It is fitted with a softmax over
each query's dense and lexical top 100 chunks (and every relevant chunk), relevant chunks against
the rest, on SciFact train and on half of squad-dev-a's articles (their questions), each
collection weighing the same. Printed, dense and hybrid (fusion alone, no re-ranking), without and
with the adapter:

  * SciFact test, all 300 queries, and split in two: those that share a judged abstract with some
    train query, and those that do not. The same 5,183 abstracts are searched for train and test
    queries, so an adapter can learn where train's judged abstracts lie, which says nothing of
    another collection;
  * squad-dev-a, the questions of the other half of its articles, which the fit never saw.

torch fits it (it is installed with sentence-transformers); nothing in qa/ uses it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa import evaluation as ev
from qa.config import Settings
from qa.embedding.models import load_embedder
from qa.training.retrieval_sets import Collection, beir_collection, question_collection

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEPTH = 100  # candidates per retriever in each query's softmax
TEMPERATURE = 0.05


def groups(collection: Collection, relevant: dict[str, set[int]]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per query with a relevant chunk: its vector, its candidates' vectors, which are relevant."""
    reader = collection.searcher.reader
    out = []
    for qid, text in collection.queries.items():
        positives = relevant.get(qid)
        if not positives:
            continue
        vector = collection.vectors[qid]
        _, dense = reader.search_dense(vector, DEPTH, None)
        _, lexical = reader.search_lexical(text, DEPTH, None)
        ids = list(dict.fromkeys([*map(int, dense), *map(int, lexical), *sorted(positives)]))
        labels = np.array([i in positives for i in ids])
        out.append((vector, reader.vectors_of(ids).astype(np.float32), labels))
    return out


def fit(data: list[list[tuple]], ridge: float) -> np.ndarray:
    """W minimising the mean (per collection) softmax loss + ridge * |W|^2, by L-BFGS."""
    import torch

    dim = data[0][0][0].shape[0]
    weight = torch.zeros(dim, dim, requires_grad=True)
    sets = [
        [(torch.tensor(q), torch.tensor(d), torch.tensor(y)) for q, d, y in collection_groups]
        for collection_groups in data
    ]
    optimiser = torch.optim.LBFGS([weight], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = ridge * (weight * weight).sum()
        for collection_groups in sets:
            total = 0.0
            for q, d, y in collection_groups:
                adapted = q + q @ weight
                s = d @ (adapted / adapted.norm()) / TEMPERATURE
                total = total + torch.logsumexp(s, 0) - torch.logsumexp(s[y], 0)
            loss = loss + total / len(collection_groups) / len(sets)
        loss.backward()
        return loss

    optimiser.step(closure)
    return weight.detach().numpy()


def adapted(vector: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    if weight is None:
        return vector
    out = vector + vector @ weight
    return (out / np.linalg.norm(out)).astype(np.float32)


def figures(collection: Collection, weight: np.ndarray | None) -> dict[str, float]:
    out = {}
    for mode in ("dense", "hybrid"):
        ranked = {}
        for qid, text in collection.queries.items():
            r = collection.searcher.rank(text, mode, 1000, query_vector=adapted(collection.vectors[qid], weight))
            ranked[qid] = (r.ids, r.scores)
        out[mode] = collection.score(ranked)[collection.headline]
    return out


def subset(collection: Collection, qids: set[str], name: str) -> Collection:
    return replace(
        collection,
        name=name,
        queries={q: t for q, t in collection.queries.items() if q in qids},
        qrels={q: r for q, r in collection.qrels.items() if q in qids},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ridge", type=float, default=0.01, help="penalty on |W|^2 (0.01)")
    args = parser.parse_args(argv)
    scifact, squad_dir = SHARED / "scifact", SHARED / "squad-dev-a"
    if not scifact.is_dir() or not squad_dir.is_dir():
        raise SystemExit(f"{SHARED} lacks scifact/ or squad-dev-a/: the tuning data lives beside the repository")
    started = time.perf_counter()
    settings = Settings.from_env().with_(rerank_depth=0)
    embedder = load_embedder(settings.model, settings.backend)
    train = beir_collection(str(scifact), "train", settings, embedder)
    test = beir_collection(str(scifact), "test", settings, embedder)
    squad = question_collection(str(squad_dir), settings, embedder)

    chunks_of: dict[str, set[int]] = {}
    for chunk, doc in train.doc_of_chunk.items():
        chunks_of.setdefault(doc, set()).add(chunk)
    judged = {doc for rels in train.qrels.values() for doc, grade in rels.items() if grade > 0}
    train_relevant = {
        q: {c for doc, grade in rels.items() if grade > 0 for c in chunks_of.get(doc, ())}
        for q, rels in train.qrels.items()
    }
    shared_docs = {q for q, rels in test.qrels.items() if any(g > 0 and d in judged for d, g in rels.items())}

    by_passage: dict[str, set[int]] = {}
    for chunk in ev.chunk_table(squad.snapshot.catalog):
        by_passage.setdefault(chunk.passage_id, set()).add(chunk.id)
    squad_relevant = {q: {c for p in rels for c in by_passage.get(p, ())} for q, rels in squad.qrels.items()}
    article = {q: squad.doc_of_chunk[min(c)] for q, c in squad_relevant.items() if c}
    articles = sorted(set(article.values()))
    fitted_on = set(articles[::2])  # every other article; the rest are held out
    fit_questions = {q for q, a in article.items() if a in fitted_on}
    held = subset(squad, set(article) - fit_questions, "squad-dev-a, held-out articles")
    print(
        f"fitting on {len(train.queries)} SciFact train queries and {len(fit_questions)} squad-dev-a questions"
        f" ({len(fitted_on)} of {len(articles)} articles)",
        file=sys.stderr,
    )
    fit_squad = subset(squad, fit_questions, "squad-dev-a, fitted articles")
    weight = fit([groups(train, train_relevant), groups(fit_squad, squad_relevant)], args.ridge)
    print(f"fitted in {time.perf_counter() - started:.0f} s; |W| = {np.linalg.norm(weight):.2f}", file=sys.stderr)

    rows = [
        subset(test, set(test.queries), "scifact test, all"),
        subset(test, shared_docs, "scifact test, sharing a judged abstract with train"),
        subset(test, set(test.queries) - shared_docs, "scifact test, sharing none"),
        held,
        fit_squad,
    ]
    print(f"{'queries':<56} {'n':>5} {'metric':>8} {'dense':>7} {'adapted':>8} {'hybrid':>7} {'adapted':>8}")
    for collection in rows:
        before, after = figures(collection, None), figures(collection, weight)
        print(
            f"{collection.name:<56} {len(collection.queries):>5} {collection.headline:>8} {before['dense']:>7.4f}"
            f" {after['dense']:>8.4f} {before['hybrid']:>7.4f} {after['hybrid']:>8.4f}"
        )
    for collection in (train, test, squad):
        collection.snapshot.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
