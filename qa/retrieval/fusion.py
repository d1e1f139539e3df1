"""Rank fusion and score normalisation: pure functions over plain sequences."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[Hashable, float]]:
    """RRF (Cormack et al. 2009): score(d) = sum_i w_i / (k + rank_i(d)), rank from 1.

    Returns (item, score) best first with strictly decreasing scores: ties are broken by
    the best rank an item reached, then by first appearance, and nudged apart, because
    leaving ties to the metric library moved nDCG@10 by ~0.005 here.
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[Hashable, float] = {}
    best_rank: dict[Hashable, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            best_rank[item] = min(best_rank.get(item, rank), rank)
    order = sorted(scores, key=lambda item: (-scores[item], best_rank[item]))
    return strictly_decreasing([(item, scores[item]) for item in order])


def min_max(scores: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; all-equal scores map to 1."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo <= 0:
        return [1.0] * len(scores)
    return [(s - lo) / (hi - lo) for s in scores]


def convex_combination(runs: Sequence[dict[Hashable, float]], alphas: Sequence[float]) -> list[tuple[Hashable, float]]:
    """sum_i alpha_i * minmax(score_i); an item absent from a run scores 0 there."""
    fused: dict[Hashable, float] = {}
    for run, alpha in zip(runs, alphas, strict=True):
        if not run:
            continue
        lo, hi = min(run.values()), max(run.values())
        span = hi - lo
        get = fused.get
        if span <= 0:  # all equal: each scores 1 (as min_max)
            for item in run:
                fused[item] = get(item, 0.0) + alpha
        else:
            for item, score in run.items():
                fused[item] = get(item, 0.0) + alpha * ((score - lo) / span)
    order = sorted(fused.items(), key=lambda pair: -pair[1])
    return strictly_decreasing(order)


def fuse_rankings(
    dense: Mapping[Hashable, float],
    lexical: Mapping[Hashable, float],
    method: str = "convex",
    lexical_weight: float = 0.5,
    rrf_k: int = 60,
    candidates: int = 300,
) -> list[tuple[Hashable, float]]:
    """Hybrid ranking from two rankings (score maps in best-first order), best first, strictly decreasing.

    The top `candidates` of each retriever are fused (convex: (1 - w) * minmax(dense) +
    w * minmax(lexical); rrf: reciprocal rank fusion). Deeper entries, which only evaluation asks
    for, follow below them, fused the same way over the whole lists; so the head of the ranking
    is the same at any depth, and what `qa eval` scores is what `qa ask` ranks.
    """

    def fuse(d: Mapping[Hashable, float], lx: Mapping[Hashable, float]) -> list[tuple[Hashable, float]]:
        if method == "rrf":
            return reciprocal_rank_fusion([list(d), list(lx)], k=rrf_k)
        return convex_combination([d, lx], [1.0 - lexical_weight, lexical_weight])

    head_dense, head_lexical = _top(dense, candidates), _top(lexical, candidates)
    head = fuse(head_dense, head_lexical)
    if len(head_dense) == len(dense) and len(head_lexical) == len(lexical):
        return head
    seen = {item for item, _ in head}
    tail = [(item, score) for item, score in fuse(dense, lexical) if item not in seen]
    if head and tail:  # below the head, in the order the whole lists give them
        shift = head[-1][1] - tail[0][1] - 1.0
        tail = [(item, score + shift) for item, score in tail]
    return strictly_decreasing(head + tail)


def _top(scores: Mapping[Hashable, float], n: int) -> dict[Hashable, float]:
    return dict(itertools.islice(scores.items(), n)) if len(scores) > n else dict(scores)


def strictly_decreasing(ranked: Sequence[tuple[Hashable, float]], eps: float = 1e-9) -> list[tuple[Hashable, float]]:
    """Nudge tied scores apart so that the given order is the only one they imply."""
    out: list[tuple[Hashable, float]] = []
    previous = None
    for item, score in ranked:
        if previous is not None and score >= previous:
            score = previous - eps
        out.append((item, score))
        previous = score
    return out


def merge_overlapping(
    spans: Sequence[tuple[Hashable, str, int, int]], max_parts: int = 2
) -> list[tuple[list[Hashable], str, int, int]]:
    """Merge ranked (item, group, start, end) spans that overlap one already kept in the same group.

    The merged span keeps the rank of its best part; once it has `max_parts` parts, further
    overlapping spans are dropped, so results stay distinct passages of bounded length.
    """
    kept: list[tuple[list[Hashable], str, int, int]] = []
    for item, group, start, end in spans:
        for index, (items, g, s, e) in enumerate(kept):
            if g == group and start < e and s < end:
                if len(items) < max_parts:
                    kept[index] = ([*items, item], g, min(s, start), max(e, end))
                break
        else:
            kept.append(([item], group, start, end))
    return kept
