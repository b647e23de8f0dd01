"""Verification figures: ROC and DET curves of several methods on log-scale FAR (every chapter's one
implementation), and the quality of the coreset's picks against their template's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from dmlfaces.eval.roc import FARS, RocCurve


def roc(
    curves: Mapping[str, RocCurve],
    *,
    fars: Sequence[float] = FARS,
    ax: plt.Axes | None = None,
    title: str = "ROC",
) -> plt.Figure:
    """TAR against FAR (log scale) per method, with dotted lines at the target FARs.

    Args:
        curves: method name -> ``roc.roc_curve_points(scores, labels)``.
    """
    fig, ax = _axes(ax)
    for (name, curve), colour in zip(curves.items(), sns.color_palette("colorblind", len(curves))):
        visible = curve.far > 0  # FAR 0 has no place on a log axis
        ax.step(curve.far[visible], curve.tar[visible], where="post", color=colour, lw=1.5, label=name)
    _mark_targets(ax, fars)
    ax.set(xscale="log", xlabel="false accept rate (FAR)", ylabel="true accept rate (TAR)", title=title)
    ax.set_ylim(top=1.0)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def det(
    curves: Mapping[str, RocCurve],
    *,
    fars: Sequence[float] = FARS,
    ax: plt.Axes | None = None,
    title: str = "DET",
) -> plt.Figure:
    """False reject rate (1 - TAR) against FAR, both log scale, per method: lower is better."""
    fig, ax = _axes(ax)
    for (name, curve), colour in zip(curves.items(), sns.color_palette("colorblind", len(curves))):
        visible = (curve.far > 0) & (curve.tar < 1)  # both axes are logarithmic
        ax.step(curve.far[visible], 1 - curve.tar[visible], where="post", color=colour, lw=1.5, label=name)
    _mark_targets(ax, fars)
    ax.set(xscale="log", yscale="log", xlabel="false accept rate (FAR)", ylabel="false reject rate (1 - TAR)", title=title)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def picked_quality(picked: np.ndarray, overall: np.ndarray) -> plt.Figure:
    """Mean true quality of the coreset picks against the template's mean quality, one point per template."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(overall, picked, s=8, alpha=0.5)
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.set_xlabel("template mean quality")
    ax.set_ylabel("mean quality of the picks")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig


def _axes(ax: plt.Axes | None) -> tuple[plt.Figure, plt.Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.0))
        return fig, ax
    return ax.figure, ax


def _mark_targets(ax: plt.Axes, fars: Sequence[float]) -> None:
    for far in fars:
        ax.axvline(far, color="0.75", lw=0.8, ls=":", zorder=0)
    ax.grid(True, which="major", lw=0.4, alpha=0.5)


def roc_det(curves: Mapping[str, RocCurve], fars: Sequence[float]) -> plt.Figure:
    """ROC (left) and DET (right) of every method side by side, dotted lines at ``fars``."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    roc(curves, fars=fars, ax=left)
    det(curves, fars=fars, ax=right)
    fig.tight_layout()
    return fig
