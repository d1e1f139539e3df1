"""Whether B−A is larger than chance: paired tests over the queries two runs share.

Every statistic comes from a library: scipy.stats' paired randomisation test (each query's
difference keeps or flips its sign) and bootstrap confidence interval of the mean difference,
and statsmodels' Holm correction over all the rows a comparison tests. Fixed seeds, so a
comparison prints the same figures each time.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
CONFIDENCE = 0.95
RESAMPLES = 10_000
SEED = 0


@dataclass(frozen=True)
class Difference:
    """One metric of one mode: the mean of B−A over the shared queries, its interval and p-values."""

    queries: int
    delta: float
    low: float
    high: float
    p: float  # the randomisation test's two-sided p-value
    p_holm: float = 1.0  # after Holm's correction over every row tested together
    moved: int = 0  # queries whose value differs between A and B

    @property
    def tested(self) -> bool:
        """False when no query moved: there is nothing to test, and the row is left out of the correction."""
        return self.moved > 0

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA

    def to_dict(self) -> dict:
        return {
            "queries": self.queries,
            "delta": round(self.delta, 6),
            "ci": [round(self.low, 6), round(self.high, 6)],
            "p": round(self.p, 6),
            "p_holm": round(self.p_holm, 6),
            "moved": self.moved,
            "significant": self.significant,
        }


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def paired_difference(
    a: Sequence[float], b: Sequence[float], seed: int = SEED, resamples: int = RESAMPLES
) -> Difference:
    """B−A over paired values (query i of A with query i of B); the uncorrected p-value."""
    from scipy import stats

    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0:
        raise ValueError("no paired values")
    delta = float(diff.mean())
    if not diff.any():
        # No query moved: nothing to resample (scipy would warn of a degenerate distribution).
        return Difference(int(diff.size), 0.0, 0.0, 0.0, 1.0, 1.0, 0)
    test = stats.permutation_test(
        (diff,),
        _mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
    )
    with warnings.catch_warnings():
        # Every query moved by the same amount: the interval is that amount, which scipy warns of.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        interval = stats.bootstrap(
            (diff,),
            _mean,
            vectorized=True,
            n_resamples=resamples,
            confidence_level=CONFIDENCE,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
    moved = int(np.count_nonzero(diff))
    return Difference(int(diff.size), delta, float(interval.low), float(interval.high), float(test.pvalue), 1.0, moved)


def holm(differences: Mapping[tuple[str, str], Difference]) -> dict[tuple[str, str], Difference]:
    """The same differences with Holm-corrected p-values, the family being every one where a query moved."""
    from statsmodels.stats.multitest import multipletests

    keys = [k for k, d in differences.items() if d.tested]
    out = dict(differences)
    if not keys:
        return out
    corrected = multipletests([differences[k].p for k in keys], alpha=ALPHA, method="holm")[1]
    for k, p in zip(keys, corrected, strict=True):
        d = differences[k]
        out[k] = Difference(d.queries, d.delta, d.low, d.high, d.p, float(p), d.moved)
    return out


def paired_differences(
    a: Mapping[str, Mapping[str, Mapping[str, float]]],
    b: Mapping[str, Mapping[str, Mapping[str, float]]],
    seed: int = SEED,
    resamples: int = RESAMPLES,
) -> dict[tuple[str, str], Difference]:
    """(mode, metric) -> Difference, Holm-corrected, for per-query values `mode -> metric -> id -> value`.

    Only ids present in both runs are paired; a (mode, metric) without any is left out.
    """
    raw = {}
    for mode, metrics in a.items():
        for name, values_a in metrics.items():
            values_b = b.get(mode, {}).get(name)
            if not values_b:
                continue
            shared = [qid for qid in values_a if qid in values_b]
            if shared:
                raw[(mode, name)] = paired_difference(
                    [values_a[q] for q in shared], [values_b[q] for q in shared], seed, resamples
                )
    return holm(raw)
