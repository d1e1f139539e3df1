"""Fit the answer models (sentence scorer, passage re-ranker, relevance gate) and write their weights.

    python -m bench.fit_answers                 # fit, print the cross-validated figures, write the file
    python -m bench.fit_answers --check         # fit again and compare with the shipped file
    python -m bench.fit_answers --out FILE      # write elsewhere

Needs scikit-learn (`pip install -e ".[fit]"`); answering itself needs numpy only.

What it is fitted on (answerable questions, each candidate sentence labelled by whether it holds
one of the question's answer strings):
  * ../shared/data/squad-dev-a: 4,566 SQuAD v1.1 dev questions over its 24 Wikipedia articles;
  * tests/data/seed_questions.jsonl: 39 questions over the bundled corpus (weighted x5);
and, for the relevance gate, the off-topic questions of tests/data/offtopic_questions.txt asked
of both corpora. Each corpus is indexed with the default settings into a cache folder.
Figures are out-of-fold (5 folds; contiguous blocks of questions, so one article's questions
mostly share a fold). The gate's threshold is set for at most 0.5 % of answerable questions
refused, at the out-of-fold 0.4 % quantile of their gate scores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
POOL = 30  # candidates per question, as in qa.engine
FOLDS = 5
SEED_WEIGHT = 5.0
MAX_FALSE_REFUSALS = 0.005
THRESHOLD_QUANTILE = 0.004  # a little inside the 0.5 % allowed, for questions unlike these
FLOOR_QUANTILE = 0.002  # passages holding the answer that the floor may drop
ANSWER_SHARE = 0.6
ANSWER_MAX_SENTENCES = 3


@dataclass
class Item:
    """One question asked of one corpus: candidates, features and labels."""

    collection: str
    question: str
    answerable: bool
    sentence_features: np.ndarray
    sentence_owner: np.ndarray
    sentence_labels: np.ndarray
    passage_labels: np.ndarray
    q: object
    candidates: list
    sentences: object
    stems: object
    texts: dict  # doc_id -> text, shared by a collection's items
    patterns: list
    weight: float = 1.0


def collections(repo: Path) -> list[tuple[str, Path, Path, float]]:
    squad = SHARED / "squad-dev-a"
    if not squad.is_dir():
        raise SystemExit(f"{squad} is missing: the tuning data lives beside the repository in ../shared/data")
    return [
        ("squad-dev-a", squad / "corpus", squad / "questions.jsonl", 1.0),
        ("seed", repo / "corpus", repo / "tests" / "data" / "seed_questions.jsonl", SEED_WEIGHT),
    ]


def open_collection(name: str, corpus: Path, cache: Path):
    from qa.config import Settings
    from qa.engine import open_index

    settings = Settings.from_env()
    key = json.dumps(
        [
            name,
            str(corpus.resolve()),
            settings.model,
            settings.backend,
            settings.chunk_size,
            settings.chunk_overlap,
            settings.sentence_vectors,
        ],
    )
    folder = cache / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    engine = open_index(folder, corpus, settings=settings, progress=True)
    engine.update()  # the corpus may have changed since the cached index was built
    return engine


def gather(engine, name: str, questions: list[dict], answerable: bool, weight: float) -> list[Item]:
    from qa.answering.features import Stems, question_terms, sentence_table
    from qa.evaluation.questions import answer_pattern

    searcher = engine._searcher
    lexical = searcher.snapshot.lexical
    stems = Stems(lexical.stem_words)
    stop = lexical.stopword_set()
    vectors = searcher.embedder.encode([q["question"] for q in questions])
    documents: dict[str, str] = {}
    items = []
    for question, vector in zip(questions, vectors, strict=True):
        cands = searcher.candidates(question["question"], "hybrid", POOL, None, vector)
        q = question_terms(question["question"], vector, lexical)
        table = sentence_table(q, cands, stems, stop)
        patterns = [answer_pattern(a) for a in question.get("answers", [])]
        for cand in cands:
            if cand.doc_id not in documents:
                documents[cand.doc_id] = searcher.snapshot.catalog.document(cand.doc_id).text
        items.append(
            Item(
                name,
                question["question"],
                answerable,
                table.features,
                table.candidate,
                np.array([any(p.search(t) for p in patterns) for t in table.texts], dtype=bool),
                np.array([any(p.search(c.text) for p in patterns) for c in cands], dtype=bool),
                q,
                cands,
                table,
                stems,
                documents,
                patterns,
                weight,
            )
        )
    return items


def read_questions(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_offtopic(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [{"question": line.strip()} for line in lines if line.strip() and not line.startswith("#")]


def folds_of(items: list[Item]) -> np.ndarray:
    """Contiguous folds within each collection and kind, so one article's questions mostly share one."""
    fold = np.zeros(len(items), dtype=int)
    groups: dict[tuple[str, bool], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault((item.collection, item.answerable), []).append(i)
    for members in groups.values():
        for k, part in enumerate(np.array_split(np.array(members), FOLDS)):
            fold[part] = k
    return fold


def fit_linear(rows: np.ndarray, labels: np.ndarray, weights: np.ndarray, names, balanced: bool = False):
    from sklearn.linear_model import LogisticRegression

    from qa.answering.scorer import LinearModel

    mean = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced" if balanced else None)
    model.fit((rows - mean) / scale, labels, sample_weight=weights)
    return LinearModel(tuple(names), mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


def passage_rows(item: Item, sentence_logits: np.ndarray) -> np.ndarray:
    from qa.answering.features import passage_table

    return passage_table(item.q, item.candidates, item.sentences, sentence_logits, item.stems)


def gate_row(item: Item, sentence_logits: np.ndarray, passage_logits: np.ndarray) -> np.ndarray:
    from qa.answering.features import question_features

    return question_features(
        item.q, item.candidates, item.sentences, passage_logits, sentence_logits, item.stems, item.question
    )


def fit_all(items: list[Item]):
    """Out-of-fold logits for the figures and thresholds, then the final models on everything."""
    from qa.answering.features import PASSAGE_FEATURES, QUESTION_FEATURES, SENTENCE_FEATURES

    fold = folds_of(items)
    answerable = [i for i, it in enumerate(items) if it.answerable]

    def sentence_data(ids):
        rows = np.concatenate([items[i].sentence_features for i in ids])
        labels = np.concatenate([items[i].sentence_labels for i in ids])
        weights = np.concatenate([np.full(len(items[i].sentence_labels), items[i].weight) for i in ids])
        return rows, labels, weights

    oof_sentence: dict[int, np.ndarray] = {}
    oof_passage: dict[int, np.ndarray] = {}
    oof_gate: dict[int, float] = {}
    passage_inputs: dict[int, np.ndarray] = {}
    for k in range(FOLDS):
        train = [i for i in answerable if fold[i] != k]
        sentence_model = fit_linear(*sentence_data(train), SENTENCE_FEATURES)
        # The passage model learns on out-of-fold sentence logits, as it will meet them.
        for i in range(len(items)):
            if fold[i] == k:
                oof_sentence[i] = sentence_model.logits(items[i].sentence_features)
                passage_inputs[i] = passage_rows(items[i], oof_sentence[i])
    for k in range(FOLDS):
        train = [i for i in answerable if fold[i] != k]
        rows = np.concatenate([passage_inputs[i] for i in train])
        labels = np.concatenate([items[i].passage_labels for i in train])
        weights = np.concatenate([np.full(len(items[i].passage_labels), items[i].weight) for i in train])
        passage_model = fit_linear(rows, labels, weights, PASSAGE_FEATURES)
        for i in range(len(items)):
            if fold[i] == k:
                oof_passage[i] = passage_model.logits(passage_inputs[i])
    gate_inputs = {i: gate_row(items[i], oof_sentence[i], oof_passage[i]) for i in range(len(items))}
    gate_labels = np.array([it.answerable for it in items])
    gate_weights = np.array([it.weight for it in items])
    for k in range(FOLDS):
        train = [i for i in range(len(items)) if fold[i] != k]
        gate_model = fit_linear(
            np.stack([gate_inputs[i] for i in train]), gate_labels[train], gate_weights[train], QUESTION_FEATURES, True
        )
        for i in range(len(items)):
            if fold[i] == k:
                oof_gate[i] = float(gate_model.logits(gate_inputs[i][None, :])[0])

    final_sentence = fit_linear(*sentence_data(answerable), SENTENCE_FEATURES)
    rows = np.concatenate([passage_inputs[i] for i in answerable])
    labels = np.concatenate([items[i].passage_labels for i in answerable])
    weights = np.concatenate([np.full(len(items[i].passage_labels), items[i].weight) for i in answerable])
    final_passage = fit_linear(rows, labels, weights, PASSAGE_FEATURES)
    final_gate = fit_linear(
        np.stack([gate_inputs[i] for i in range(len(items))]), gate_labels, gate_weights, QUESTION_FEATURES, True
    )
    return (final_sentence, final_passage, final_gate), (oof_sentence, oof_passage, oof_gate)


def report(items: list[Item], oof, models) -> dict:
    """What `ask` would show, from the out-of-fold scores, through the same passage and answer code."""
    from qa.answering.answer import rank_passages
    from qa.answering.scorer import Scored

    oof_sentence, oof_passage, oof_gate = oof
    out = {}
    for name in sorted({it.collection for it in items}):
        ids = [i for i, it in enumerate(items) if it.collection == name and it.answerable]
        off = [i for i, it in enumerate(items) if it.collection == name and not it.answerable]
        hit1 = hit5 = highlight = short = refused = 0
        lengths = []
        for i in ids:
            item = items[i]
            if oof_gate[i] < models.gate_threshold or not item.candidates:
                refused += 1
                continue
            scored = Scored(item.candidates, item.sentences, oof_sentence[i], oof_passage[i], oof_gate[i])
            shown = rank_passages(scored, models, 5)
            holds = [bool(item.passage_labels[list(p.parts)].any()) for p in shown]
            hit1 += holds[0]
            hit5 += any(holds)
            if shown[0].rows:
                best = max(shown[0].rows, key=lambda r: oof_sentence[i][r])
                highlight += bool(item.sentence_labels[best])
            answer = _short_answer_text(scored, models, shown, item)
            lengths.append(answer.count(" ["))
            short += any(p.search(answer) for p in item.patterns)
        n = max(1, len(ids))
        out[name] = {
            "answerable": len(ids),
            "false_nothing_found": round(refused / n, 4),
            "hit@1": round(hit1 / n, 4),
            "hit@5": round(hit5 / n, 4),
            "highlight": round(highlight / n, 4),
            "short_answer": round(short / n, 4),
            "answer_sentences": round(float(np.mean(lengths)) if lengths else 0.0, 2),
            "offtopic": len(off),
            "offtopic_refused": round(sum(oof_gate[i] < models.gate_threshold for i in off) / max(1, len(off)), 4),
        }
    return out


def _short_answer_text(scored, models, shown, item: Item) -> str:
    from qa.answering.answer import short_answer

    return short_answer(scored, models, shown, item.texts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="where to write the models (default: the shipped file)")
    parser.add_argument("--check", action="store_true", help="fit and compare with the shipped file; write nothing")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "qa" / "fit", help="index cache")
    parser.add_argument("--limit", type=int, help="only the first N questions of each set (a quick dry run)")
    args = parser.parse_args(argv)

    from qa.answering.scorer import MODELS_FILE, AnswerModels

    started = time.perf_counter()
    items: list[Item] = []
    offtopic = read_offtopic(REPO / "tests" / "data" / "offtopic_questions.txt")
    sizes = {}
    for name, corpus, questions_file, weight in collections(REPO):
        engine = open_collection(name, corpus, args.cache)
        questions = read_questions(questions_file)[: args.limit]
        items += gather(engine, name, questions, True, weight)
        items += gather(engine, name, offtopic[: args.limit], False, weight)
        sizes[name] = {"questions": len(questions), "offtopic": len(offtopic[: args.limit]), "weight": weight}
        print(f"{name}: {len(questions)} questions + {len(offtopic)} off-topic gathered", file=sys.stderr)
    (sentence, passage, gate), oof = fit_all(items)

    answerable = [i for i, it in enumerate(items) if it.answerable]
    threshold = float(np.quantile([oof[2][i] for i in answerable], THRESHOLD_QUANTILE))
    top5 = []
    for i in answerable:
        order = np.argsort(-oof[1][i])[:5]
        top5.append(oof[1][i][order][items[i].passage_labels[order]])
    floor = float(np.quantile(np.concatenate(top5), FLOOR_QUANTILE))
    models = AnswerModels(sentence, passage, gate, threshold, floor, ANSWER_SHARE, ANSWER_MAX_SENTENCES, {})
    figures = report(items, oof, models)
    models = replace(
        models,
        meta={
            "script": "python -m bench.fit_answers",
            "sets": sizes,
            "offtopic_file": "tests/data/offtopic_questions.txt",
            "pool": POOL,
            "cross_validated": figures,
        },
    )
    print(json.dumps(figures, indent=2))
    text = json.dumps(models.to_dict(), indent=1) + "\n"
    if args.check:
        shipped = json.loads(MODELS_FILE.read_text(encoding="utf-8"))
        same = shipped == json.loads(text)
        print("the shipped models are reproduced exactly" if same else "the shipped models differ from this fit")
        return 0 if same else 1
    out = args.out or MODELS_FILE
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
