"""Turning scored candidates into cited passages and a short answer.

The passages are the candidates re-ranked by the passage model (qa.answering.scorer), with
overlapping chunks merged; each highlights its best sentence. The short answer leads with the
sentence most likely to hold the answer, then adds the others that come close (a question
that asks for several things finds them in several passages), each with its passage's marker.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from qa.answering.scorer import AnswerModels, Scored, softmax
from qa.retrieval.fusion import merge_overlapping
from qa.types import Answer, AnswerPhrase, Highlight, Passage

# The short answer: the best sentence, and up to LEAD_SENTENCES in all when others are about as
# likely to hold the answer (at least LEAD_SHARE of the best one's probability).
LEAD_SENTENCES = 3
LEAD_SHARE = 0.15
# In a follow-up, a sentence the previous answer showed loses this much of its logit (chosen on
# tests/data/dialogues.jsonl: `qa eval --dialogues`).
REPEAT_PENALTY = 4.0
_MARKERS = re.compile(r"\s*\[\d{1,3}\](?:;\s*)?")
NOTHING_FOUND = (
    "No relevant passage found in the corpus for this question. "
    "Try other words, another retrieval mode, or fewer filters."
)


@dataclass(frozen=True)
class Shown:
    """A passage as shown: its merged span, its candidates, and its sentences (rows of the table)."""

    parts: tuple[int, ...]  # candidate indices, best first
    start: int
    end: int
    rows: tuple[int, ...]  # sentence rows, in document order
    probability: float  # that it holds the answer, among the candidates


def rank_passages(scored: Scored, models: AnswerModels, k: int) -> list[Shown]:
    """The top k passages by the passage model, overlapping chunks merged, weak ones left out."""
    shares = softmax(scored.passage_logits)
    order = [int(i) for i in np.argsort(-scored.passage_logits, kind="stable")]
    # A passage strong enough to show by the passage model's own scores is shown: the reader, which
    # lifts the passage it vouches for far ahead, reorders passages but does not leave any out.
    fitted = scored.passage_logits if scored.fitted_passage_logits is None else scored.fitted_passage_logits
    fitted_shares = softmax(fitted)
    floor = models.passage_floor
    kept = [i for i in order if shares[i] >= floor or fitted_shares[i] >= floor] or order[:1]
    cands = scored.candidates
    merged = merge_overlapping([(i, cands[i].doc_id, cands[i].start, cands[i].end) for i in kept])
    shown = []
    owner = scored.sentences.candidate
    for parts, _, start, end in merged[:k]:
        rows = _distinct_sentences(scored, [r for r in range(len(owner)) if int(owner[r]) in parts])
        probability = float(sum(shares[p] for p in parts))  # the merged chunks' shares add up
        shown.append(Shown(tuple(int(p) for p in parts), start, end, tuple(rows), probability))
    return shown


def _distinct_sentences(scored: Scored, rows: list[int]) -> list[int]:
    """Each sentence once: overlapping chunks repeat sentences, and cut the ones at their edges."""
    spans = scored.sentences.spans
    logits = scored.sentence_logits
    best: dict[tuple[int, int], int] = {}
    for r in rows:
        key = (int(spans[r][0]), int(spans[r][1]))
        if key not in best or logits[r] > logits[best[key]]:
            best[key] = r
    keys = sorted(best)
    whole = [
        key
        for key in keys
        if not any(o != key and o[0] <= key[0] and key[1] <= o[1] for o in keys)  # a piece of a longer one
    ]
    return [best[key] for key in whole]


def build_answer(
    question: str,
    scored: Scored,
    models: AnswerModels,
    k: int,
    mode: str,
    threshold: float | None = None,
    searched_query: str = "",
    notes: tuple[str, ...] = (),
    shown_before: frozenset[str] = frozenset(),
) -> Answer:
    """The cited passages and the short answer, or "nothing found" when the gate says so.

    `threshold` is the gate's logit threshold (default: the fitted one); `shown_before` are the
    sentences (as `sentence_key` gives them) the previous answer showed.
    """
    threshold = models.gate_threshold if threshold is None else threshold
    # A question without a single content word ("what is it?") has nothing to look for.
    if not scored.candidates or not scored.terms or scored.gate_logit < threshold:
        return Answer(question, NOTHING_FOUND, (), mode, searched_query, notes)
    if shown_before:
        scored = demote_repeats(scored, shown_before)
    shown = rank_passages(scored, models, k)
    table = scored.sentences
    sentence_shares = softmax(scored.sentence_logits)
    passages = []
    for rank, item in enumerate(shown, start=1):
        cand = scored.candidates[item.parts[0]]
        text = passage_text(scored, item)
        if item.rows:
            best = max(item.rows, key=lambda r: scored.sentence_logits[r])
            s, e = int(table.spans[best][0]), int(table.spans[best][1])
            sentence_p = round(float(sentence_shares[best]), 4)
        else:  # a passage without a sentence boundary at all
            s, e, sentence_p = item.start, item.end, 0.0
        phrase = answer_phrase(scored, best, s) if item.rows else None
        scores = {"sentence": sentence_p, "fused": round(cand.fused, 6), "dense": round(cand.cosine, 6)}
        if cand.lexical:
            scores["lexical"] = round(cand.lexical, 6)
        if cand.rerank:
            scores["rerank"] = round(cand.rerank, 6)
        record = cand.record
        place = None
        for part in sorted(item.parts, key=lambda p: scored.candidates[p].start):
            found = scored.candidates[part].record
            if found is not None and found.chunk.place is not None:
                place = found.chunk.place if place is None else place.merged(found.chunk.place)
        passages.append(
            Passage(
                rank=rank,
                score=round(item.probability, 4),
                text=text,
                doc_id=cand.doc_id,
                title=record.title if record else cand.title,
                author=record.author if record else "",
                source=record.source if record else "",
                start=item.start,
                end=item.end,
                page=record.chunk.page if record else None,
                highlight=Highlight(s, e, text[s - item.start : e - item.start], phrase),
                date=record.date if record else "",
                chunk_id=cand.chunk_id,
                scores=scores,
                locator=place.label() if place else "",
            )
        )
    answer, more = short_answer(scored, models, shown, shown_before)
    return Answer(question, answer, tuple(passages), mode, searched_query, notes, more)


def answer_phrase(scored: Scored, row: int, sentence_start: int) -> AnswerPhrase | None:
    """The phrase the reader marked in a sentence, in document offsets, when it is confident of it."""
    phrase = scored.read.phrases.get(row)
    if phrase is None or not phrase.shown or not phrase.text.strip():
        return None
    return AnswerPhrase(sentence_start + phrase.start, sentence_start + phrase.end, phrase.text)


def passage_text(scored: Scored, item: Shown) -> str:
    """The document's text over a shown passage, put together from its chunks (each an exact slice)."""
    parts = sorted((scored.candidates[p] for p in item.parts), key=lambda c: c.start)
    text, end = parts[0].text, parts[0].end
    for cand in parts[1:]:
        if cand.end > end:
            text += cand.text[end - cand.start :]
            end = cand.end
    return text


def demote_repeats(scored: Scored, shown_before: frozenset[str]) -> Scored:
    """A follow-up asks for something new: the sentences the previous answer showed lose
    REPEAT_PENALTY of their logits, so one leads again only when it is far ahead of the rest."""
    texts = scored.sentences.texts
    repeated = np.array([sentence_key(t) in shown_before for t in texts], dtype=bool)
    if not repeated.any():
        return scored
    return dataclasses.replace(scored, sentence_logits=scored.sentence_logits - REPEAT_PENALTY * repeated)


def sentence_key(sentence: str) -> str:
    """A sentence as compared across answers: its words, case folded."""
    return " ".join(sentence.split()).casefold()


def answer_sentences(answer: Answer) -> list[str]:
    """The sentences of a short answer, without their citation markers."""
    return [part for part in (p.strip() for p in _MARKERS.split(answer.answer)) if part]


def short_answer(
    scored: Scored, models: AnswerModels, shown: list[Shown], shown_before: frozenset[str] = frozenset()
) -> tuple[str, str]:
    """The short answer and what more bears on the question, each as sentences with their markers.

    The short answer leads with the best sentence of the shown passages; another joins it when it
    is nearly as likely (LEAD_SHARE of the best one's probability), up to LEAD_SENTENCES, those of
    other passages first: another answer item, or the same answer from elsewhere. The others close
    to the best (the answer models' `answer_share`) are the "more". A sentence in
    `shown_before` (just shown in the previous answer) is added only as the best."""
    table = scored.sentences
    rows = [(r, rank) for rank, item in enumerate(shown, start=1) for r in item.rows]
    if not rows:
        return f"{' '.join(passage_text(scored, shown[0]).split())} [1]", ""
    rows.sort(key=lambda pair: -scored.sentence_logits[pair[0]])
    # Softmax ratios are score differences: a sentence within log(share) of the best one joins.
    # Judged on the sentence model's own scores, so that the reader (which moves its best sentence
    # far ahead) reorders the sentences without leaving the others out.
    fitted = scored.sentence_logits if scored.fitted_logits is None else scored.fitted_logits
    top = float(max(fitted[row] for row, _ in rows))
    cutoff = top + math.log(models.answer_share)
    lead_cutoff = top + math.log(LEAD_SHARE)
    picked: list[tuple[str, int, float]] = []  # (sentence with marker, passage rank, fitted logit)
    seen: set[str] = set()
    used: list[tuple[str, int, int]] = []
    for row, rank in rows:
        if len(picked) == models.answer_max_sentences:
            break
        if picked and float(fitted[row]) < cutoff:
            continue
        doc_id = scored.candidates[int(table.candidate[row])].doc_id
        start, end = int(table.spans[row][0]), int(table.spans[row][1])
        sentence = " ".join(table.texts[row].split())
        if sentence.casefold() in seen or any(d == doc_id and s < end and start < e for d, s, e in used):
            continue
        if picked and sentence_key(sentence) in shown_before:
            continue
        seen.add(sentence.casefold())
        used.append((doc_id, start, end))
        picked.append((f"{sentence} [{rank}]", rank, float(fitted[row])))
    # The lead: the best sentence, then the nearly-as-likely ones, those of other passages first
    # (another answer item, or the same answer from elsewhere); each stays in its place in the order.
    close = [i for i in range(1, len(picked)) if picked[i][2] >= lead_cutoff]
    close.sort(key=lambda i: (picked[i][1] == picked[0][1], i))
    lead = {0, *close[: LEAD_SENTENCES - 1]}
    return (
        " ".join(text for i, (text, _, _) in enumerate(picked) if i in lead),
        " ".join(text for i, (text, _, _) in enumerate(picked) if i not in lead),
    )


def phrase_ranges(answer: Answer) -> list[tuple[int, int]]:
    """Where the answer phrases stand in `answer.answer` (character ranges, in order): each passage
    whose highlight has a phrase the reader is confident of, found in that passage's sentence of
    the short answer. Interfaces set these in bold."""
    ranges: list[tuple[int, int]] = []
    text = answer.answer
    for passage in answer.passages:
        phrase = passage.highlight.answer
        if phrase is None:
            continue
        sentence = " ".join(passage.highlight.text.split())
        at = text.find(f"{sentence} [{passage.rank}]")
        if at < 0:
            continue
        inside = sentence.find(" ".join(phrase.text.split()))
        if inside >= 0:
            ranges.append((at + inside, at + inside + len(" ".join(phrase.text.split()))))
    return sorted(ranges)


def with_marks(text: str, ranges: list[tuple[int, int]], opening: str, closing: str, escape=lambda s: s) -> str:
    """`text` with each range wrapped in opening/closing, the rest passed through `escape`."""
    out, last = [], 0
    for start, end in ranges:
        if start < last:
            continue
        out += [escape(text[last:start]), opening, escape(text[start:end]), closing]
        last = end
    out.append(escape(text[last:]))
    return "".join(out)
