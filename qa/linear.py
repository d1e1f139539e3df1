"""The fitted models qa ships, over standardised features (numpy only): linear, or additive.

The re-ranker (qa.retrieval.rerank) and the answer models (qa.answering.scorer) are each one
of these, read from a JSON file beside their module and written by the command that reproduces
it (`qa fit rerank`, `qa fit answers`). `model_from_dict` reads either form.
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
            "mean": _rounded(self.mean),
            "scale": _rounded(self.scale),
            "coef": _rounded(self.coef),
            "intercept": round(float(self.intercept), 6),
        }

    @classmethod
    def from_dict(cls, data: dict, expected: Sequence[str], name: str, source: str, refit: str) -> LinearModel:
        """Read one model; `source` names its file and `refit` the command that rewrites it."""
        features = _check_features(data, expected, name, source, refit)
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(features),) for a in arrays) or np.any(arrays[1] <= 0):
            raise QAError(f"the {name} model in {source} is malformed; refit it with `{refit}`")
        return cls(features, arrays[0], arrays[1], arrays[2], float(data["intercept"]))


@dataclass(frozen=True)
class AdditiveModel:
    """logit = intercept + sum_j f_j(z_j), z = (x - mean) / scale: a generalised additive model.

    Each f_j is a curve tabulated at `grid[j]` (increasing) with `values[j]`, read by linear
    interpolation and held constant beyond its ends, so a feature far outside what the model was
    fitted on counts no more than its most extreme fitted value."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    grid: np.ndarray  # (features, points)
    values: np.ndarray  # (features, points)
    intercept: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        z = (rows - self.mean) / self.scale
        total = np.full(rows.shape[0], self.intercept, dtype=np.float64)
        for j in range(len(self.features)):
            total += np.interp(z[:, j], self.grid[j], self.values[j])
        return total

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": _rounded(self.mean),
            "scale": _rounded(self.scale),
            "grid": _rounded(self.grid),
            "values": _rounded(self.values),
            "intercept": round(float(self.intercept), 6),
        }

    @classmethod
    def from_dict(cls, data: dict, expected: Sequence[str], name: str, source: str, refit: str) -> AdditiveModel:
        features = _check_features(data, expected, name, source, refit)
        mean, scale = (np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale"))
        grid, values = (np.asarray(data[k], dtype=np.float64) for k in ("grid", "values"))
        n = len(features)
        if (
            mean.shape != (n,)
            or scale.shape != (n,)
            or np.any(scale <= 0)
            or grid.ndim != 2
            or grid.shape[0] != n
            or grid.shape != values.shape
            or grid.shape[1] < 1
            or np.any(np.diff(grid, axis=1) <= 0)
        ):
            raise QAError(f"the {name} model in {source} is malformed; refit it with `{refit}`")
        return cls(features, mean, scale, grid, values, float(data["intercept"]))


def _rounded(array: np.ndarray) -> list:
    """An array as nested lists of floats to six decimals, as the JSON files keep them."""
    if array.ndim > 1:
        return [_rounded(row) for row in array]
    return [round(float(x), 6) for x in array]


def _check_features(data: dict, expected: Sequence[str], name: str, source: str, refit: str) -> tuple[str, ...]:
    features = tuple(data["features"])
    if features != tuple(expected):
        raise QAError(
            f"the {name} model in {source} was fitted on other features than this version of qa "
            f"computes; refit it with `{refit}`"
        )
    return features


def model_from_dict(
    data: dict, expected: Sequence[str], name: str, source: str, refit: str
) -> LinearModel | AdditiveModel:
    """Either form, told apart by its fields (an additive model has `grid` and `values`)."""
    kind = AdditiveModel if "values" in data else LinearModel
    return kind.from_dict(data, expected, name, source, refit)
