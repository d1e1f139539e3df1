"""A linear model over standardised features, the form of every fitted model qa ships (numpy only).

The re-ranker (qa.retrieval.rerank) and the answer models (qa.answering.scorer) are each one
of these, read from a JSON file beside their module and written by a script in bench/ that
reproduces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.errors import QAError


@dataclass(frozen=True)
class LinearModel:
    """logit = ((x - mean) / scale) . coef + intercept."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return ((rows - self.mean) / self.scale) @ self.coef + self.intercept

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": [round(float(x), 6) for x in self.mean],
            "scale": [round(float(x), 6) for x in self.scale],
            "coef": [round(float(x), 6) for x in self.coef],
            "intercept": round(float(self.intercept), 6),
        }

    @classmethod
    def from_dict(cls, data: dict, expected: Sequence[str], name: str, source: str, refit: str) -> LinearModel:
        """Read one model; `source` names its file and `refit` the command that rewrites it."""
        features = tuple(data["features"])
        if features != tuple(expected):
            raise QAError(
                f"the {name} model in {source} was fitted on other features than this version of qa "
                f"computes; refit it with `{refit}`"
            )
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(features),) for a in arrays) or np.any(arrays[1] <= 0):
            raise QAError(f"the {name} model in {source} is malformed; refit it with `{refit}`")
        return cls(features, arrays[0], arrays[1], arrays[2], float(data["intercept"]))
