"""Features of candidate sentences, passages and questions: what the answer models weigh.

Pure functions over plain data (numpy arrays, strings), shared by answering (`ask`) and by the
fit (`qa fit answers`, qa.training.answers), so the models are fitted on exactly what they see.

* A sentence is scored by its cosine to the question (its late-chunked vector), the share of
  the question's terms it holds (idf-weighted, stemmed; and by shared prefixes, for "respond"
  and "response"; and by near-synonyms, through word vectors: soft coverage), the terms in the
  sentences around it, how close together the terms stand,
  whether it holds the kind of thing the question asks for (qa.answering.answer_types) that
  the question does not already say, and its passage's retrieval scores.
* A passage by its retrieval scores and its best sentences.
* A question (for the relevance gate) by how well the best candidates match at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.answering.answer_types import (
    KINDS,
    QuestionKind,
    capitalised,
    dates,
    has_place_cue,
    numbers,
    question_kind,
)
from qa.embedding.words import WordVectors
from qa.memo import LruMemo
from qa.retrieval.rerank import QueryTerms
from qa.retrieval.search import Candidate
from qa.terms import TOKEN, Analyzer  # its words are the lexical index's
from qa.vocabulary import spellable

PREFIX = 5  # words sharing their first 5 letters count as the same word for the fuzzy overlap
_ANAPHOR = re.compile(
    r"^(this|these|that|those|it|its|he|his|she|her|they|their|there|such|the latter|the former)\b", re.I
)
_REASON = re.compile(r"\b(because|due to|since|so that|as a result|in order to|caused|led to|thanks to)\b", re.I)

SENTENCE_FEATURES = (
    "cosine",
    "cosine_gap",  # below the best sentence cosine of the question
    "coverage",
    "coverage_gap",
    "coverage_prefix",
    "coverage_context",  # with the sentences before and after
    "coverage_before",
    "coverage_after",
    "refers_back",  # opens with "This", "It", "He"...: the sentence before names the subject
    "new_words",  # content words the question does not have
    "cosine_in_passage",  # below the best sentence of its own passage
    "coverage_in_passage",
    "proximity",
    "phrases",  # the question's consecutive terms found together, in order (sequential dependence)
    "new_names",
    "new_numbers",
    "new_date",
    "restating",  # share of the sentence's words already in the question
    "length",
    "first_in_passage",
    # When no candidate holds much of the question's wording (a paraphrase), meaning must decide.
    "cosine_gap_unmatched",
    "cosine_in_passage_unmatched",
    *(f"kind_{k}" for k in KINDS),
    *(f"match_{k}" for k in KINDS),
    "passage_rank",
    "passage_fused",
    "passage_cosine",
    "passage_lexical",
    "passage_coverage",
    "soft_coverage",  # near-synonyms count too (word vectors): "frontier" for "border"
    "soft_coverage_gap",
)
SOFT_COLUMN = SENTENCE_FEATURES.index("soft_coverage")
PASSAGE_FEATURES = (
    "rank",
    "fused",
    "cosine",
    "cosine_gap",
    "cosine_gap_unmatched",
    "lexical",
    "coverage",
    "coverage_title",
    "best_sentence",
    "best_sentence_gap",
    "second_sentence",
    "document_support",
    "rerank_gap",  # the hybrid re-ranker's score below the best candidate's (0 when not re-ranked)
)
QUESTION_FEATURES = (
    "best_passage",
    "best_sentence",
    "best_cosine",
    "best_sentence_cosine",
    "best_coverage",
    "unknown_terms",  # idf-weighted share of the question's terms the corpus never uses
    "terms",
    "missing_from_pool",  # ... that none of the ten best candidates holds
    "names_missing",  # capitalised question words the best passage lacks
    "cosine_spread",  # best candidate cosine above the median one: one passage stands out
    "cosine_lead",
    "top_coverage",  # of the best passage
    "rarest_term_present",
    "weight_of_rarest",
    "passage_margin",  # best passage logit above the second
    "best_soft_coverage",  # near-synonyms counted: an off-topic question's words find some everywhere
)


@dataclass(frozen=True)
class QuestionTerms:
    """The question as the scorers see it."""

    vector: np.ndarray | None  # None in lexical mode: cosines are then 0
    terms: tuple[str, ...]  # stemmed, stop words removed, unique
    weights: np.ndarray  # idf of each term, summing to 1
    unknown: float  # idf-weighted share of terms absent from the corpus
    words: frozenset[str]  # lower-case words of the question (for "new" names and numbers)
    prefixes: frozenset[str]
    kind: QuestionKind
    order: tuple[str, ...] = ()  # the terms as they come in the question, repeats kept
    weight_of: dict[str, float] = field(default_factory=dict)

    def says(self, phrase: str) -> bool:
        """Whether the question already has every word of `phrase` ("Putin's", "Russo-Japanese")."""
        parts = TOKEN.findall(phrase.lower())
        return bool(parts) and all(p in self.words for p in parts)

    @classmethod
    def build(
        cls,
        question: str,
        vector: np.ndarray | None,
        terms: Sequence[str],
        idf: dict[str, float],
        known: Callable[[str], bool],
        kind: QuestionKind,
        stopwords: frozenset[str],
    ) -> QuestionTerms:
        unique = tuple(dict.fromkeys(terms))
        raw = np.array([idf.get(t, 0.0) for t in unique], dtype=np.float64)
        total = float(raw.sum())
        weights = raw / total if total > 0 else np.full(len(unique), 1.0 / max(1, len(unique)))
        unknown = float(sum(w for t, w in zip(unique, weights) if not known(t))) if unique else 1.0
        words = frozenset(w.lower() for w in TOKEN.findall(question))
        content = [w for w in words if w not in stopwords]
        prefixes = frozenset(w[:PREFIX] for w in content if len(w) >= PREFIX)
        weight_of = dict(zip(unique, (float(w) for w in weights)))
        return cls(vector, unique, weights, unknown, words, prefixes, kind, tuple(terms), weight_of)


def question_terms(question: str, vector: np.ndarray | None, reader, terms: QueryTerms | None = None) -> QuestionTerms:
    """The question's terms and weights as the index (a qa.storage IndexReader) sees them; `terms`,
    when given, are QueryTerms.of(question, reader) already looked up (the re-ranker's)."""
    terms = terms or QueryTerms.of(question, reader)
    return QuestionTerms.build(
        question,
        vector,
        terms.ordered,
        terms.idf,
        lambda t: terms.df.get(t, 0) > 0,
        question_kind(question),
        reader.analyzer.stopword_set(),
    )


@dataclass(frozen=True)
class SentenceFacts:
    """What a sentence holds, whatever the question: computed once per chunk and kept."""

    stems: tuple[str, ...]  # every word's stem, in order (stop words too: positions count them)
    stem_set: frozenset[str]
    prefixes: frozenset[str]  # stems and the first PREFIX letters of longer words
    positions: dict[str, tuple[int, ...]]  # stem -> where it stands
    content: tuple[str, ...]  # stems of the words that are not stop words
    names: tuple[str, ...]  # capitalised words (lower case), the first word left out
    numbers: tuple[str, ...]
    dates: tuple[str, ...]  # years, centuries and month names
    place: bool
    reason: bool
    anaphor: bool
    words: int
    vocabulary: tuple[str, ...] = ()  # its distinct words that have word vectors (qa.embedding.words)


@dataclass(frozen=True)
class ChunkFacts:
    sentences: tuple[SentenceFacts, ...]
    stem_set: frozenset[str]  # of the whole chunk
    title_stems: frozenset[str]


class Analyser:
    """Question-independent facts of candidate chunks, memoised (the same chunks answer many questions)."""

    MAX_CHUNKS = 20_000

    def __init__(self, analyzer: Analyzer, words: WordVectors | None = None) -> None:
        """`analyzer` is the index's (qa.terms.Analyzer): its memoised stems and its stop
        words; `words` gives word vectors for soft coverage (None: only exact matches count)."""
        self.stems = analyzer.stem_words
        self.stopwords = analyzer.stopword_set()
        self.words = words
        self._memo: LruMemo[ChunkFacts] = LruMemo(self.MAX_CHUNKS)

    def __call__(self, cand: Candidate) -> ChunkFacts:
        key = (cand.text, cand.title, cand.start, cand.sentence_spans.tobytes())
        found = self._memo.get(key)
        if found is None:
            found = self._analyse(cand)
            self._memo.put(key, found)
        return found

    def _analyse(self, cand: Candidate) -> ChunkFacts:
        sentences = []
        for text in cand.sentence_texts():
            words = TOKEN.findall(text.lower())
            stems = self.stems(words)
            positions: dict[str, list[int]] = {}
            for i, stem in enumerate(stems):
                positions.setdefault(stem, []).append(i)
            sentences.append(
                SentenceFacts(
                    stems=tuple(stems),
                    stem_set=frozenset(stems),
                    prefixes=frozenset(stems) | {w[:PREFIX] for w in words if len(w) >= PREFIX},
                    positions={k: tuple(v) for k, v in positions.items()},
                    content=tuple(s for w, s in zip(words, stems) if w not in self.stopwords),
                    names=tuple(capitalised(text)),
                    numbers=tuple(numbers(text)),
                    dates=tuple(dates(text)),
                    place=has_place_cue(text),
                    reason=bool(_REASON.search(text)),
                    anaphor=bool(_ANAPHOR.match(text)),
                    words=len(words),
                    vocabulary=tuple(dict.fromkeys(w for w in words if spellable(w) and w not in self.stopwords)),
                )
            )
        chunk = frozenset(self.stems(TOKEN.findall(cand.text.lower())))
        title = frozenset(self.stems(TOKEN.findall(cand.title.lower()))) if cand.title else frozenset()
        return ChunkFacts(tuple(sentences), chunk, title)


@dataclass(frozen=True)
class SentenceTable:
    """Every candidate sentence of a question: features and where each row comes from."""

    features: np.ndarray  # (rows, len(SENTENCE_FEATURES))
    candidate: np.ndarray  # (rows,) index into the candidates
    spans: np.ndarray  # (rows, 2) document offsets
    texts: list[str]
    cosines: np.ndarray
    coverage: np.ndarray


def _coverage(present: frozenset[str] | set[str], q: QuestionTerms) -> float:
    return float(sum(w for t, w in zip(q.terms, q.weights) if t in present))


def _prefix_coverage(facts: SentenceFacts, q: QuestionTerms) -> float:
    present = facts.prefixes
    hit = 0.0
    for term, weight in zip(q.terms, q.weights):
        if term in present or (len(term) >= PREFIX and term[:PREFIX] in present):
            hit += weight
    return hit


def _proximity(facts: SentenceFacts, q: QuestionTerms) -> float:
    """Matched question terms per word of the shortest stretch holding them all (1 = side by side)."""
    found = [facts.positions[t] for t in q.terms if t in facts.positions]
    if len(found) < 2:
        return 0.0
    first = min(p[0] for p in found)
    last = max(p[-1] for p in found)
    return len(found) / (last - first + 1)


def _phrases(facts: SentenceFacts, q: QuestionTerms, window: int = 3) -> float:
    """Share (idf-weighted) of the question's adjacent term pairs that stand within `window` words, in order."""
    if len(q.order) < 2:
        return 0.0
    where = facts.positions
    found = total = 0.0
    for a, b in zip(q.order, q.order[1:]):
        weight = q.weight_of.get(a, 0.0) + q.weight_of.get(b, 0.0)
        total += weight
        if any(0 < j - i <= window for i in where.get(a, ()) for j in where.get(b, ())):
            found += weight
    return found / total if total > 0 else 0.0


# OpenBLAS multiplies on several threads above ~262k multiply-adds (m * n * k); its threads then
# spin after the call and slow the encoder and all else on two cores (seed set, ask p50: 24.9 ms
# with one threaded product a question, 13.3 ms without).
_ONE_THREAD_MNK = 200_000


def one_thread_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T, in blocks of b's rows small enough that BLAS keeps each on the calling thread."""
    block = max(1, _ONE_THREAD_MNK // max(1, a.shape[0] * a.shape[1]))
    if len(b) <= block:
        return a @ b.T
    return np.concatenate([a @ b[i : i + block].T for i in range(0, len(b), block)], axis=1)


SOFT_FLOOR = 0.35  # word cosines up to this count nothing; from it to 1 they count linearly (0 to 1)


def soft_coverage(
    q: QuestionTerms, sentences: Sequence[SentenceFacts], analyser: Analyser, exact: np.ndarray | None = None
) -> np.ndarray:
    """Per sentence, the idf-weighted share of the question's terms it holds, where a term the
    sentence lacks counts by how close its word comes to one of the sentence's words (its word
    vector's cosine, rescaled from SOFT_FLOOR..1 to 0..1). Without word vectors: exact coverage.

    Out of fold on squad-dev-a (qa fit answers), as two sentence features: highlight 0.809 ->
    0.818; floors 0.2-0.5 all gain 0.006-0.009. `exact`: the exact coverage, if already computed."""
    if exact is None:
        exact = np.array([_coverage(f.stem_set, q) for f in sentences])
    if analyser.words is None or not len(sentences) or not q.terms:
        return exact
    word_of: dict[str, str] = {}
    spelt = sorted(w for w in q.words if spellable(w) and w not in analyser.stopwords)
    for word, stem in zip(spelt, analyser.stems(spelt), strict=True):
        word_of.setdefault(stem, word)
    soft_terms = [(i, word_of[t]) for i, t in enumerate(q.terms) if t in word_of]
    if not soft_terms:
        return exact
    vocabulary = list(dict.fromkeys(w for f in sentences for w in f.vocabulary))
    if not vocabulary:
        return exact
    column = {w: j for j, w in enumerate(vocabulary)}
    vectors = analyser.words.vectors([w for _, w in soft_terms] + vocabulary)
    k = len(soft_terms)
    credit = np.clip((one_thread_product(vectors[:k], vectors[k:]) - SOFT_FLOOR) / (1.0 - SOFT_FLOOR), 0.0, 1.0)
    having = [r for r, f in enumerate(sentences) if f.vocabulary]
    columns = np.array([column[w] for r in having for w in sentences[r].vocabulary])
    starts = np.cumsum([0] + [len(sentences[r].vocabulary) for r in having[:-1]])
    best = np.maximum.reduceat(credit[:, columns], starts, axis=1)  # (terms, sentences having words)
    terms = [q.terms[i] for i, _ in soft_terms]
    lacking = np.array([[t not in sentences[r].stem_set for r in having] for t in terms])  # exact ones count already
    weights = np.asarray(q.weights, dtype=np.float64)[[i for i, _ in soft_terms]]
    out = exact.copy()
    out[having] += weights @ (best * lacking)
    return out


def sentence_table(q: QuestionTerms, candidates: Sequence[Candidate], analyser: Analyser) -> SentenceTable:
    """Features of every sentence of every candidate, in candidate then sentence order."""
    owner: list[int] = []
    spans: list[tuple[int, int]] = []
    texts: list[str] = []
    cosines: list[float] = []
    per_sentence: list[SentenceFacts] = []
    chunks = [analyser(cand) for cand in candidates]
    for index, cand in enumerate(candidates):
        sims = cand.sentence_vectors @ q.vector if q.vector is not None and len(cand.sentence_vectors) else None
        for row, (text, facts) in enumerate(zip(cand.sentence_texts(), chunks[index].sentences, strict=True)):
            per_sentence.append(facts)
            owner.append(index)
            spans.append((int(cand.sentence_spans[row][0]), int(cand.sentence_spans[row][1])))
            texts.append(text)
            cosines.append(float(sims[row]) if sims is not None else 0.0)
    n = len(texts)
    if n == 0:
        empty = np.zeros((0, len(SENTENCE_FEATURES)), np.float32)
        return SentenceTable(empty, np.zeros(0, np.int64), np.zeros((0, 2), np.int64), [], np.zeros(0), np.zeros(0))
    coverage = np.array([_coverage(f.stem_set, q) for f in per_sentence])
    soft = soft_coverage(q, per_sentence, analyser, coverage)
    best_soft = float(soft.max())
    cos = np.array(cosines)
    best_cos, best_cov = float(cos.max()), float(coverage.max())
    top_fused = max(c.fused for c in candidates) or 1.0
    top_lexical = max(c.lexical for c in candidates) or 1.0
    passage_coverage = [_coverage(c.stem_set, q) for c in chunks]
    passage_best_cos: dict[int, float] = {}
    passage_best_cov: dict[int, float] = {}
    for i, index in enumerate(owner):
        passage_best_cos[index] = max(passage_best_cos.get(index, -1.0), cos[i])
        passage_best_cov[index] = max(passage_best_cov.get(index, 0.0), coverage[i])
    kind_onehot = [1.0 if q.kind.kind == k else 0.0 for k in KINDS]
    focus_stem = analyser.stems([q.kind.focus])[0] if q.kind.focus else ""
    wanted = frozenset(q.terms)
    rows: list[list[float]] = []
    for i in range(n):
        facts = per_sentence[i]
        cand_index = owner[i]
        cand = candidates[cand_index]
        first = i == 0 or owner[i - 1] != cand_index
        last = i + 1 == n or owner[i + 1] != cand_index
        before = coverage[i - 1] if not first else 0.0
        after = coverage[i + 1] if not last else 0.0
        context = set(facts.stem_set)
        if not first:
            context |= per_sentence[i - 1].stem_set
        if not last:
            context |= per_sentence[i + 1].stem_set
        content = facts.content
        restating = sum(1 for c in content if c in wanted) / len(content) if content else 0.0
        names = [w for w in facts.names if not q.says(w)]
        nums = [x for x in facts.numbers if x not in q.words]
        date = 1.0 if any(not q.says(d) for d in facts.dates) else 0.0
        new_names, new_numbers = math.log1p(len(names)), math.log1p(len(nums))
        matches = {
            "person": new_names,
            "date": date,
            "number": new_numbers,
            "place": new_names * (1.0 if facts.place else 0.5),
            "thing": 1.0 if focus_stem and focus_stem in facts.stem_set else 0.0,
            "reason": 1.0 if facts.reason else 0.0,
        }
        rows.append(
            [
                cos[i],
                cos[i] - best_cos,
                coverage[i],
                coverage[i] - best_cov,
                _prefix_coverage(facts, q),
                _coverage(context, q),
                before,
                after,
                before if facts.anaphor else 0.0,
                math.log1p(sum(1 for c in content if c not in wanted)),
                cos[i] - passage_best_cos[cand_index],
                coverage[i] - passage_best_cov[cand_index],
                _proximity(facts, q),
                _phrases(facts, q),
                new_names,
                new_numbers,
                date,
                restating,
                math.log1p(facts.words),
                1.0 if first else 0.0,
                (cos[i] - best_cos) * (1.0 - best_cov),
                (cos[i] - passage_best_cos[cand_index]) * (1.0 - best_cov),
                *kind_onehot,
                *(matches[k] * kind_onehot[j] for j, k in enumerate(KINDS)),
                math.log1p(cand.rank),
                cand.fused / top_fused,
                cand.cosine,
                cand.lexical / top_lexical,
                passage_coverage[cand_index],
                soft[i],
                soft[i] - best_soft,
            ]
        )
    return SentenceTable(
        np.array(rows, dtype=np.float32),
        np.array(owner, dtype=np.int64),
        np.array(spans, dtype=np.int64),
        texts,
        cos,
        coverage,
    )


def passage_table(
    q: QuestionTerms,
    candidates: Sequence[Candidate],
    sentences: SentenceTable,
    sentence_logits: np.ndarray,
    analyser: Analyser,
) -> np.ndarray:
    """Features of each candidate passage (rows in candidate order)."""
    n = len(candidates)
    out = np.zeros((n, len(PASSAGE_FEATURES)), dtype=np.float32)
    if n == 0:
        return out
    best = np.full(n, -10.0)
    second = np.full(n, -10.0)
    for logit, index in zip(sentence_logits, sentences.candidate):
        if logit > best[index]:
            best[index], second[index] = logit, best[index]
        elif logit > second[index]:
            second[index] = logit
    top_fused = max(c.fused for c in candidates) or 1.0
    top_lexical = max(c.lexical for c in candidates) or 1.0
    top_cosine = max(c.cosine for c in candidates)
    top_rerank = max(c.rerank for c in candidates)
    top_best = float(best.max())
    best_coverage = float(sentences.coverage.max()) if len(sentences.coverage) else 0.0
    leaders = [c.doc_id for c in candidates[:10]]
    for i, cand in enumerate(candidates):
        facts = analyser(cand)
        coverage = _coverage(facts.stem_set, q)
        title = _coverage(facts.title_stems, q)
        out[i] = [
            math.log1p(cand.rank),
            cand.fused / top_fused,
            cand.cosine,
            cand.cosine - top_cosine,
            (cand.cosine - top_cosine) * (1.0 - best_coverage),
            cand.lexical / top_lexical,
            coverage,
            title,
            best[i],
            best[i] - top_best,
            second[i],
            leaders.count(cand.doc_id) / len(leaders),
            cand.rerank - top_rerank,
        ]
    return out


def question_features(
    q: QuestionTerms,
    candidates: Sequence[Candidate],
    sentences: SentenceTable,
    passage_logits: np.ndarray,
    sentence_logits: np.ndarray,
    analyser: Analyser,
    question: str,
) -> np.ndarray:
    """One row for the relevance gate: does the corpus hold an answer at all?"""
    terms = math.log1p(len(q.terms))
    if not candidates or not len(q.terms):
        missing = [-10.0, -10.0, 0.0, 0.0, 0.0, q.unknown, terms, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        return np.array(missing, dtype=np.float32)
    cosines = np.array([c.cosine for c in candidates])
    top = int(np.argmax(passage_logits))
    top_stems = analyser(candidates[top]).stem_set
    pool: set[str] = set()
    for cand in candidates[:10]:
        pool |= analyser(cand).stem_set
    names = set(analyser.stems([w.lower() for w in capitalised(question)]))
    rarest = int(np.argmax(q.weights))
    ordered = np.sort(passage_logits)
    best_soft = float(sentences.features[:, SOFT_COLUMN].max()) if len(sentences.features) else 0.0
    return np.array(
        [
            float(passage_logits.max()),
            float(sentence_logits.max()) if len(sentence_logits) else -10.0,
            float(cosines.max()),
            float(sentences.cosines.max()) if len(sentences.cosines) else 0.0,
            float(sentences.coverage.max()) if len(sentences.coverage) else 0.0,
            q.unknown,
            terms,
            float(sum(w for t, w in zip(q.terms, q.weights) if t not in pool)),
            float(sum(w for t, w in zip(q.terms, q.weights) if t in names and t not in top_stems)),
            float(cosines.max() - np.median(cosines)),
            float(cosines.max() - cosines.mean()),
            float(sum(w for t, w in zip(q.terms, q.weights) if t in top_stems)),
            1.0 if q.terms[rarest] in top_stems else 0.0,
            float(q.weights[rarest]),
            float(ordered[-1] - ordered[-2]) if len(ordered) > 1 else 0.0,
            best_soft,
        ],
        dtype=np.float32,
    )
