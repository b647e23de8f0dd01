"""Training losses: one run's per-step and per-epoch loss, and several runs' epoch means side by side."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def training_curve(history: dict) -> plt.Figure:
    """Loss per step (light) and per epoch (dark) of a training history."""
    steps = np.array(history["steps"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(steps[:, 0], steps[:, 1], color="tab:blue", alpha=0.3, lw=0.8, label="step")
    per_epoch = len(steps) / max(len(history["epochs"]), 1)
    ax.plot(
        [e["epoch"] * per_epoch for e in history["epochs"]],
        [e["loss"] for e in history["epochs"]],
        "o-",
        color="tab:blue",
        label="epoch mean",
    )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    return fig


def training_curves(histories: dict[str, dict]) -> plt.Figure:
    """Mean training loss per epoch of several runs (e.g. an aggregator and its ablations)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, history in histories.items():
        ax.plot([e["epoch"] for e in history["epochs"]], [e["loss"] for e in history["epochs"]], "o-", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
