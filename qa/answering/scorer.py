"""The fitted answer models: sentence scorer, passage re-ranker and relevance gate (numpy only).

The weights live in `answer_models.json` beside this module, written by `qa fit answers`
(which anyone can rerun to reproduce it). The models read the standardised features of
qa.answering.features: the sentence and passage models are linear conditional logits, fitted to
rank a question's candidates (their softmax is the probability that a candidate holds the
answer); the relevance gate is an additive logistic regression (one fitted curve per feature,
qa.linear.AdditiveModel) whose threshold was chosen on labelled answerable and off-topic
questions (see the file's "fitted_on" and docs/answers.md).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.answering.features import (
    PASSAGE_FEATURES,
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    Analyser,
    QuestionTerms,
    SentenceTable,
    passage_table,
    question_features,
    sentence_table,
)
from qa.answering.reading import Combination, Read, read_best
from qa.errors import QAError
from qa.linear import AdditiveModel, LinearModel, model_from_dict
from qa.retrieval.search import Candidate

if TYPE_CHECKING:
    from qa.answering.local import LocalModels
    from qa.answering.reader import Reader

MODELS_FILE = Path(__file__).with_name("answer_models.json")
FORMAT = 1
REFIT = "qa fit answers"


def models_file(sentence_vectors: str = "late") -> Path:
    """The models fitted on an index whose sentence vectors are made `sentence_vectors` (their
    cosines differ: late-chunked ones see their chunk, ones encoded alone do not)."""
    if sentence_vectors == "late":
        return MODELS_FILE
    return MODELS_FILE.with_name(f"answer_models-{sentence_vectors}.json")


def refit_command(path: Path) -> str:
    """The command that rewrites a shipped models file."""
    method = path.stem.partition("-")[2]
    return f"QA_SENTENCE_VECTORS={method} {REFIT}" if method else REFIT


@dataclass(frozen=True)
class AnswerModels:
    sentence: LinearModel | AdditiveModel
    passage: LinearModel | AdditiveModel
    gate: LinearModel | AdditiveModel
    # The question is answered when the gate's logit reaches this (chosen for <= 0.5 % false
    # "nothing found" on answerable questions); passages whose probability of holding the answer
    # (the softmax of the passage scores) is below `passage_floor` are not shown.
    gate_threshold: float
    passage_floor: float
    # A sentence joins the short answer when its probability is at least this share of the best one's.
    answer_share: float
    answer_max_sentences: int
    meta: dict

    @classmethod
    def from_dict(cls, data: dict, source: Path = MODELS_FILE) -> AnswerModels:
        name, refit = source.name, refit_command(source)
        if data.get("format") != FORMAT:
            raise QAError(f"{name} has format {data.get('format')}, not {FORMAT}; refit it with `{refit}`")
        return cls(
            sentence=model_from_dict(data["sentence"], SENTENCE_FEATURES, "sentence", name, refit),
            passage=model_from_dict(data["passage"], PASSAGE_FEATURES, "passage", name, refit),
            gate=model_from_dict(data["gate"], QUESTION_FEATURES, "gate", name, refit),
            gate_threshold=float(data["gate_threshold"]),
            passage_floor=float(data["passage_floor"]),
            answer_share=float(data["answer_share"]),
            answer_max_sentences=int(data["answer_max_sentences"]),
            meta=dict(data.get("fitted_on", {})),
        )

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "sentence": self.sentence.to_dict(),
            "passage": self.passage.to_dict(),
            "gate": self.gate.to_dict(),
            "gate_threshold": round(self.gate_threshold, 6),
            "passage_floor": round(self.passage_floor, 6),
            "answer_share": round(self.answer_share, 6),
            "answer_max_sentences": self.answer_max_sentences,
            "fitted_on": self.meta,
        }


@functools.lru_cache(maxsize=4)
def load_models(path: Path = MODELS_FILE) -> AnswerModels:
    path = Path(path)
    refit = refit_command(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AnswerModels.from_dict(data, path)
    except FileNotFoundError:
        raise QAError(f"the answer models file {path} is missing; reinstall qa or run `{refit}`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QAError(f"cannot read the answer models in {path} ({exc}); run `{refit}`") from None


@dataclass(frozen=True)
class Scored:
    """Every candidate of a question, scored."""

    candidates: list[Candidate]
    sentences: SentenceTable
    sentence_logits: np.ndarray  # one per row of `sentences`
    passage_logits: np.ndarray  # one per candidate
    gate_logit: float
    terms: int = 1  # the question's content terms (none: nothing to look for)
    read: Read = field(default_factory=Read)  # what the reader said of the sentences it read
    # The sentence model's own logits (the same as sentence_logits without the reader): the short
    # answer's length is judged on them, so the reader reorders sentences but does not drop them.
    fitted_logits: np.ndarray | None = None
    fitted_passage_logits: np.ndarray | None = None  # likewise the passage model's: which passages are shown


def score(
    models: AnswerModels,
    question: str,
    q: QuestionTerms,
    candidates: list[Candidate],
    analyser: Analyser,
    reading: tuple[Reader, Combination] | None = None,
    local: LocalModels | None = None,
) -> Scored:
    """Every candidate scored; with `reading`, the reader re-reads the best sentences (qa.answering.reading).

    The relevance gate judges the fitted models' own scores, with or without the reader. With
    `local` (a corpus's own correction, qa.answering.local) its sentence and passage models rank,
    while the gate still judges the shipped models' scores, which its threshold was chosen on.
    """
    sentences = sentence_table(q, candidates, analyser)
    fitted = models.sentence.logits(sentences.features)
    passages = passage_table(q, candidates, sentences, fitted, analyser)
    passage_logits = models.passage.logits(passages)
    gate = models.gate.logits(
        question_features(q, candidates, sentences, passage_logits, fitted, analyser, question)[None, :]
    )
    if local is not None:
        models = local.over(models)
        fitted = models.sentence.logits(sentences.features)
        passage_logits = models.passage.logits(passage_table(q, candidates, sentences, fitted, analyser))
    scored = Scored(
        candidates,
        sentences,
        fitted,
        passage_logits,
        float(gate[0]),
        len(q.terms),
        fitted_logits=fitted,
        fitted_passage_logits=passage_logits,
    )
    return scored if reading is None else reread(scored, models, question, q, analyser, *reading)


def reread(
    scored: Scored,
    models: AnswerModels,
    question: str,
    q: QuestionTerms,
    analyser: Analyser,
    reader: Reader,
    combination: Combination,
) -> Scored:
    """`scored` (the fitted models' scores) with the reader's say added to its best sentences, and
    the passages ranked again from them when the combination says so."""
    fitted = scored.sentence_logits if scored.fitted_logits is None else scored.fitted_logits
    logits, read = read_best(reader, question, scored.candidates, scored.sentences, fitted, combination)
    passage_logits = scored.passage_logits
    if combination.passages:
        passages = passage_table(q, scored.candidates, scored.sentences, logits, analyser)
        passage_logits = models.passage.logits(passages)
    return dataclasses.replace(scored, sentence_logits=logits, passage_logits=passage_logits, read=read)


def sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def softmax(scores: np.ndarray) -> np.ndarray:
    """The sentence and passage models score candidates against each other (a conditional logit):
    their softmax is each candidate's probability of being the one that holds the answer."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores
    e = np.exp(scores - scores.max())
    return e / e.sum()
