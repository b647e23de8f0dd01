"""Verification figures: ROC and DET curves of several methods on log-scale FAR, and TAR intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from dmlfaces.eval.roc import FARS, RocCurve


def plot_roc(
    curves: Mapping[str, RocCurve], *, fars: Sequence[float] = FARS, ax: plt.Axes | None = None,
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


def plot_det(
    curves: Mapping[str, RocCurve], *, fars: Sequence[float] = FARS, ax: plt.Axes | None = None,
    title: str = "DET",
) -> plt.Figure:
    """False reject rate (1 - TAR) against FAR, both log scale, per method: lower is better."""
    fig, ax = _axes(ax)
    for (name, curve), colour in zip(curves.items(), sns.color_palette("colorblind", len(curves))):
        visible = (curve.far > 0) & (curve.tar < 1)  # both axes are logarithmic
        ax.step(curve.far[visible], 1 - curve.tar[visible], where="post", color=colour, lw=1.5, label=name)
    _mark_targets(ax, fars)
    ax.set(xscale="log", yscale="log", xlabel="false accept rate (FAR)", ylabel="false reject rate (1 - TAR)",
           title=title)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def plot_tar_intervals(
    report: Mapping[str, object], *, rule: str = "nearest", ax: plt.Axes | None = None
) -> plt.Figure:
    """TAR at each target FAR per method with its bootstrap interval as an error bar.

    Args:
        report: ``OneToOneReport.to_dict()`` (or the JSON read back); ``rule`` "nearest" or "exact".
    """
    fig, ax = _axes(ax)
    methods: Mapping[str, Mapping[str, Mapping[str, float | None]]] = report["methods"]  # type: ignore[assignment]
    suffix = "" if rule == "nearest" else "_exact"
    width = 0.8 / max(len(methods), 1)  # the methods sit side by side around each FAR tick
    for i, ((name, rows), colour) in enumerate(zip(methods.items(), sns.color_palette("colorblind", len(methods)))):
        keys = list(rows)
        # dtype=float turns a missing interval (None) into NaN, drawn as no bar.
        tar, low, high = (np.array([rows[k][field] for k in keys], dtype=float)
                          for field in (f"tar_{rule}", f"ci_low{suffix}", f"ci_high{suffix}"))
        x = np.arange(len(keys)) + (i - (len(methods) - 1) / 2) * width
        ax.errorbar(x, tar, yerr=np.nan_to_num([tar - low, high - tar]), fmt="o", ms=4, capsize=2, color=colour,
                    label=name)
        ax.set_xticks(np.arange(len(keys)), keys)
    ax.set(xlabel="target FAR", ylabel=f"TAR ({rule} rule)", title="TAR at FAR with bootstrap intervals")
    ax.legend(fontsize=8)
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
