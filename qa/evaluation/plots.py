"""Charts for `qa eval --plot`: Recall@k curves per mode, and per-query changes between two results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from qa.errors import QAError

COLOURS = {"hybrid": "#1b6ac9", "dense": "#d9822b", "lexical": "#3a9e5f"}
TICKS = [1, 2, 5, 10, 20, 50, 100]


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise QAError("drawing charts needs matplotlib: run `pip install matplotlib`") from None
    # A bare Figure draws without pyplot's global state or a display.
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _recall_axes(ax, curves: Mapping[str, Sequence[float]], style: str = "-", suffix: str = "") -> None:
    for mode, curve in curves.items():
        ks = range(1, len(curve) + 1)
        ax.plot(ks, curve, style, color=COLOURS.get(mode), label=f"{mode}{suffix}", linewidth=1.8)
    ax.set_xscale("log")
    ax.set_xticks(TICKS, [str(t) for t in TICKS])
    ax.set_xlim(1, max((len(c) for c in curves.values()), default=100))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k (items retrieved)")
    ax.set_ylabel("mean Recall@k")
    ax.grid(True, which="major", alpha=0.3)


def _save(fig, path: str | Path) -> Path:
    path = Path(path).expanduser()
    if path.suffix.lower() != ".png":
        raise QAError(f"--plot writes a PNG image; give a file name ending in .png (got {path.name})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_recall(curves: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """Mean Recall@k for k = 1…100, one line per mode."""
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    _recall_axes(ax, curves)
    ax.set_title(title or "Recall@k")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_comparison(comparison, path: str | Path) -> Path:
    """Recall@k of A (dashed) and B (solid); per-query change of the compared metric, sorted."""
    fig = _figure(12, 4.8)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.3])
    curves_a, curves_b = comparison.curves.get("a", {}), comparison.curves.get("b", {})
    shared = [m for m in curves_a if m in curves_b]
    _recall_axes(left, {m: curves_a[m] for m in shared}, "--", " (A)")
    _recall_axes(left, {m: curves_b[m] for m in shared}, "-", " (B)")
    left.set_title("Recall@k: A dashed, B solid")
    left.legend(loc="lower right", fontsize="small")

    deltas = [c.delta for c in comparison.changes]  # worst first
    colours = ["#c0392b" if d < 0 else "#27ae60" if d > 0 else "#999999" for d in deltas]
    right.bar(range(len(deltas)), deltas, width=1.0, color=colours)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xlim(-0.5, max(len(deltas), 1) - 0.5)
    right.set_xlabel("queries, sorted by change")
    right.set_ylabel(f"{comparison.metric} B − A")
    right.set_title(
        f"{comparison.mode}: {len(comparison.worse)} worse, {len(comparison.better)} better, "
        f"{len(deltas) - len(comparison.worse) - len(comparison.better)} unchanged"
    )
    right.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)
