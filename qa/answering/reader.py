"""The reader: a cross-encoder that scores (question, sentence) pairs and marks the answer phrase.

A MiniLM encoder fine-tuned here (`qa fit reader`, qa.training.reader) with two heads on one
forward pass: a relevance logit on [CLS] (does this sentence answer the question?) and start/end
logits per token (the phrase that answers, within the sentence). It runs on ONNX Runtime with the
`tokenizers` package only: no torch at answer time. The model ships in qa/answering/reader/
(model.onnx, tokenizer.json, reader.json) and is opened on first use; `QA_READER=off` turns it off.

Each sentence is read with a little of its surroundings (`Context`): the document title, the last
words of the sentence before and the first words of the sentence after. `pair_text` builds that
second segment, the same way for training and for answering.

    from qa.answering import reader
    if reader.enabled():
        reading = reader.score(question, [reader.Context(text, before, after, title), ...])
        reading.relevance   # float32 logits, one per sentence, in order
        reading.phrases[i]  # Phrase(text, start, end, confidence, shown) or None; offsets within the sentence

Raises QAError when the model files are missing. Read only the few sentences that matter: each
one is a forward pass of the encoder.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import QAError

MODEL_DIR = Path(__file__).with_name("reader")
MAX_TOKENS = 128  # question + sentence with context, special tokens included
CONTEXT_WORDS = 8  # words of the neighbouring sentences read with a sentence
MAX_ANSWER_TOKENS = 24  # the longest phrase the span head may mark
SEPARATOR = " | "  # between title, words before, sentence, words after
BATCH = 32


@dataclass(frozen=True)
class Context:
    """A sentence and what stands around it (all optional but the sentence)."""

    sentence: str
    before: str = ""  # the previous sentence (its last words are read)
    after: str = ""  # the next sentence (its first words are read)
    title: str = ""  # the document's title


@dataclass(frozen=True)
class Phrase:
    """The answer phrase the span head marks in a sentence: char offsets within the sentence."""

    text: str
    start: int
    end: int
    confidence: float  # P(start) * P(end) of this span, among the sentence's tokens
    shown: bool  # confidence at or above the shipped threshold (precision target on validation data)


@dataclass(frozen=True)
class Reading:
    """What the reader says of a batch of sentences for one question, in the order given."""

    relevance: np.ndarray  # logits, one per sentence (higher: more likely to answer)
    phrases: list[Phrase | None]  # None when the sentence has no tokens left after truncation


def pair_text(context: Context | str) -> tuple[str, int, int]:
    """The second segment for a sentence, and where the sentence stands in it (start, end)."""
    if isinstance(context, str):
        context = Context(context)
    before = " ".join(context.before.split()[-CONTEXT_WORDS:])
    after = " ".join(context.after.split()[:CONTEXT_WORDS])
    head = " ".join(context.title.split()) + SEPARATOR + before + SEPARATOR
    return head + context.sentence + SEPARATOR + after, len(head), len(head) + len(context.sentence)


def enabled() -> bool:
    """False when QA_READER=off (the answer path then does without the reader)."""
    from qa.config import reader_setting

    return reader_setting() == "on"


def load_tokenizer(path: Path, max_tokens: int = MAX_TOKENS):
    """The `tokenizers` tokenizer from a tokenizer.json, truncating pairs as the reader reads them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens, strategy="longest_first")
    return tokenizer


@dataclass
class Encoded:
    """A padded batch and, per pair, which tokens belong to the sentence itself."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    sentence_mask: np.ndarray  # bool (batch, tokens)
    offsets: list[list[tuple[int, int]]]  # char offsets of each token within the second segment
    sentence_starts: list[int]  # where the sentence starts in the second segment


def encode_pairs(tokenizer, question: str | Sequence[str], contexts: Sequence[Context | str]) -> Encoded:
    """Token ids for (question, sentence-with-context) pairs; one question for all, or one per pair."""
    questions = [question] * len(contexts) if isinstance(question, str) else list(question)
    texts = [pair_text(c) for c in contexts]
    encodings = tokenizer.encode_batch([(q, t[0]) for q, t in zip(questions, texts, strict=True)])
    width = max((len(e.ids) for e in encodings), default=1)
    n = len(encodings)
    ids = np.zeros((n, width), dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    types = np.zeros((n, width), dtype=np.int64)
    inside = np.zeros((n, width), dtype=bool)
    offsets: list[list[tuple[int, int]]] = []
    for i, (e, (_, start, end)) in enumerate(zip(encodings, texts, strict=True)):
        k = len(e.ids)
        ids[i, :k] = e.ids
        mask[i, :k] = e.attention_mask
        types[i, :k] = e.type_ids
        seq = e.sequence_ids
        offs = list(e.offsets)
        for j in range(k):
            if seq[j] == 1 and offs[j][1] > offs[j][0] and start <= offs[j][0] and offs[j][1] <= end:
                inside[i, j] = True
        offsets.append([(a - start, b - start) for a, b in offs])
    return Encoded(ids, mask, types, inside, offsets, [t[1] for t in texts])


def best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, inside: np.ndarray, longest: int = MAX_ANSWER_TOKENS
) -> tuple[int, int, float] | None:
    """The most likely (start token, end token, probability) among the sentence's tokens."""
    where = np.flatnonzero(inside)
    if where.size == 0:
        return None
    s = start_logits[where].astype(np.float64)
    e = end_logits[where].astype(np.float64)
    ps = np.exp(s - s.max())
    ps /= ps.sum()
    pe = np.exp(e - e.max())
    pe /= pe.sum()
    joint = np.triu(np.outer(ps, pe)) - np.triu(np.outer(ps, pe), longest)
    i, j = np.unravel_index(int(np.argmax(joint)), joint.shape)
    return int(where[i]), int(where[j]), float(joint[i, j])


def phrases_of(
    encoded: Encoded,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    sentences: Sequence[str],
    threshold: float = math.inf,
) -> list[Phrase | None]:
    out: list[Phrase | None] = []
    for i, sentence in enumerate(sentences):
        found = best_span(start_logits[i], end_logits[i], encoded.sentence_mask[i])
        if found is None:
            out.append(None)
            continue
        a, b, p = found
        start, end = encoded.offsets[i][a][0], encoded.offsets[i][b][1]
        out.append(Phrase(sentence[start:end], start, end, p, p >= threshold))
    return out


class Reader:
    """The ONNX reader in a folder (model.onnx, tokenizer.json, reader.json), opened on first use."""

    def __init__(self, folder: Path = MODEL_DIR) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._session = None
        self._tokenizer = None
        self._settings: dict = {}

    @property
    def settings(self) -> dict:
        self._loaded()
        return self._settings

    def _loaded(self):
        with self._lock:
            if self._session is None:
                model = self.folder / "model.onnx"
                tokenizer = self.folder / "tokenizer.json"
                missing = [p.name for p in (model, tokenizer) if not p.is_file()]
                if missing:
                    raise QAError(
                        f"the reader model is missing ({', '.join(missing)} in {self.folder}); "
                        "retrain it with `qa fit reader`, or set QA_READER=off"
                    )
                meta = self.folder / "reader.json"
                self._settings = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
                self._tokenizer = load_tokenizer(tokenizer, int(self._settings.get("max_tokens", MAX_TOKENS)))
                self._session = open_session(model)
            return self._session, self._tokenizer

    def score(self, question: str, sentences: Sequence[Context | str]) -> Reading:
        """Relevance logits and answer phrases for the sentences (each a Context or a bare sentence)."""
        session, tokenizer = self._loaded()
        threshold = float(self._settings.get("phrase_threshold", math.inf))
        contexts = [c if isinstance(c, Context) else Context(c) for c in sentences]
        relevance = np.zeros(len(contexts), dtype=np.float32)
        phrases: list[Phrase | None] = []
        for lo in range(0, len(contexts), BATCH):
            part = contexts[lo : lo + BATCH]
            encoded = encode_pairs(tokenizer, question, part)
            rel, start, end = session.run(
                None,
                {
                    "input_ids": encoded.input_ids,
                    "attention_mask": encoded.attention_mask,
                    "token_type_ids": encoded.token_type_ids,
                },
            )
            relevance[lo : lo + len(part)] = rel.reshape(-1)
            phrases.extend(phrases_of(encoded, start, end, [c.sentence for c in part], threshold))
        return Reading(relevance, phrases)


def open_session(model: Path):
    """A one-thread ONNX Runtime session (the embedder's options); nothing is written beside the
    model, which may stand in a read-only package folder."""
    import onnxruntime as ort

    from qa.embedding.onnx import session_options

    options = session_options(ort, 1, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


_shared: Reader | None = None
_shared_lock = threading.Lock()


def shared_reader() -> Reader:
    """The process-wide reader over the shipped model (opened lazily, on its first score)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Reader(MODEL_DIR)
        return _shared


def score(question: str, sentences: Sequence[Context | str]) -> Reading:
    """The shipped reader's relevance logits and answer phrases for the sentences, in order."""
    return shared_reader().score(question, sentences)
