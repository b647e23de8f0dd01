"""Study A's figures: what each split follows (factor heat maps) and per-identity accuracy histograms."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def factor_heatmap(matrix: pd.DataFrame, title: str, value: str) -> plt.Figure:
    """Heat map of a (factors, problems) frame (``attribute_findings.factor_matrix``), one column per split, values annotated."""
    fig, ax = plt.subplots(figsize=(1.0 * matrix.shape[1] + 2.5, 0.38 * matrix.shape[0] + 2.4))
    sns.heatmap(
        matrix.astype(float), annot=True, fmt=".2f", cmap="viridis", cbar_kws={"label": value}, annot_kws={"fontsize": 7}, ax=ax
    )
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel("ground-truth factor")
    ax.tick_params(axis="x", labelsize=8, labelrotation=60)
    fig.tight_layout()
    return fig


def accuracy_histograms(histograms: dict[str, dict], columns: int = 3) -> plt.Figure:
    """Per-identity clustering accuracy distributions, one panel per entry (``{"range", "counts"}`` each), ``columns`` a row."""
    count = max(len(histograms), 1)
    rows, columns = -(-count // columns), min(count, columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    for ax, (name, histogram) in zip(axes.ravel(), histograms.items()):
        counts = np.asarray(histogram["counts"])
        edges = np.linspace(*histogram["range"], len(counts) + 1)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("accuracy of one identity")
    for ax in axes.ravel()[len(histograms) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("identities")
    fig.tight_layout()
    return fig
