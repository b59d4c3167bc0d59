"""Plots of an evaluation, as PNG bytes: DET curve, score distributions, CMC curve.

Uses matplotlib's object API with the Agg canvas only, so it neither needs a display nor changes
matplotlib's global state (no pyplot).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import metrics

__all__ = ["cmc_plot", "det_plot", "score_plot", "tippett_plot"]

_SIZE = (6.4, 4.4)
_DPI = 110


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def det_plot(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str) -> bytes:
    """DET curves: false non-match rate against false match rate, both on log axes (as NIST FRTE plots).

    ``curves``: (label, genuine scores, impostor scores). Rates of zero are drawn at the smallest rate
    the data can show (one comparison in the set).
    """
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    low = 1.0
    for label, gen, imp in curves:
        if len(gen) == 0 or len(imp) == 0:
            continue
        fmr, fnmr = metrics.det_curve(gen, imp)
        floor_x, floor_y = 1.0 / len(imp), 1.0 / len(gen)
        low = min(low, floor_x, floor_y)
        ax.step(np.maximum(fmr, floor_x), np.maximum(fnmr, floor_y), where="post", label=label, linewidth=1.4)
    for far in (1e-4, 1e-3, 1e-2):
        ax.axvline(far, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(max(low / 2, 1e-6), 1)
    ax.set_ylim(max(low / 2, 1e-6), 1)
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title(title)
    ax.grid(True, which="major", color="0.9")
    if len(curves) > 1 or curves and curves[0][0]:
        ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return _png(fig)


def score_plot(genuine: np.ndarray, impostor: np.ndarray, thresholds: dict[str, float], title: str) -> bytes:
    """Histograms (as densities) of same-person and different-people scores, with threshold lines."""
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    both = np.concatenate([genuine, impostor]) if len(genuine) + len(impostor) else np.zeros(1)
    bins = np.linspace(float(both.min()), float(both.max()) + 1e-9, 60).tolist()
    if len(impostor):
        ax.hist(impostor, bins=bins, density=True, alpha=0.55, color="#c0392b", label="different people")
    if len(genuine):
        ax.hist(genuine, bins=bins, density=True, alpha=0.55, color="#2471a3", label="same person")
    for label, t in thresholds.items():
        ax.axvline(t, color="0.2", linestyle="--", linewidth=1)
        ax.annotate(label, (t, 0.97), xycoords=("data", "axes fraction"), rotation=90, ha="right", va="top", size=8)
    ax.set_xlabel("similarity score (cosine)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return _png(fig)


def cmc_plot(rank_of_mate: np.ndarray, gallery: int, title: str) -> bytes:
    """Identification rate by rank (cumulative match characteristic), ranks 1 to 50 or the gallery size."""
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    top = max(1, min(50, gallery))
    rates = metrics.cmc(rank_of_mate, top)
    ax.plot(np.arange(1, top + 1), rates, marker="o", markersize=3, linewidth=1.4)
    ax.set_xscale("log")
    ax.set_xlim(0.9, top * 1.1)
    ax.set_ylim(min(0.9, float(rates.min()) - 0.05) if len(rates) else 0, 1.005)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.set_title(title)
    ax.grid(True, which="both", color="0.9")
    fig.tight_layout()
    return _png(fig)


def tippett_plot(log10_genuine: np.ndarray, log10_impostor: np.ndarray, title: str) -> bytes:
    """Tippett plot: the share of same-person and of different-people pairs whose log10 LR is at least x.

    Same-person curves far to the right and different-people curves far to the left are good; the part of
    the same-person curve left of 0 and of the different-people curve right of 0 is misleading evidence.
    """
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    for values, label, colour in (
        (log10_genuine, "same person", "#2471a3"),
        (log10_impostor, "different people", "#c0392b"),
    ):
        if len(values) == 0:
            continue
        x = np.sort(values)
        share = 1.0 - np.arange(len(x)) / len(x)  # fraction of values >= x[k]
        ax.step(x, share, where="post", label=label, color=colour, linewidth=1.4)
    ax.axvline(0.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("log10 likelihood ratio")
    ax.set_ylabel("share of pairs with log10 LR >= x")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(True, color="0.9")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return _png(fig)
