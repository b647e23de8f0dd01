"""Figures of the book's summary pages: TAR with intervals (the book's one interval plot), attribute accuracy
against its floors, the pipeline and its stages' wall times.

Apart from the chapters' figures so that the summary pages' stage depends on this module alone: it imports
neither torch nor a chapter's figure module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dmlfaces.findings import Tar


def _axes(ax: plt.Axes | None, size: tuple[float, float]) -> plt.Axes:
    """``ax``, or the axes of a new figure of ``size`` inches."""
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def tar_intervals(tars: Mapping[str, Tar], title: str, highlight: str | None = None, ax: plt.Axes | None = None) -> plt.Figure:
    """TAR in percent of several methods, one row each: the point and its bootstrap interval; ``highlight`` in red."""
    ax = _axes(ax, (6, 0.35 * len(tars) + 1.2))
    names = list(tars)[::-1]  # the first method on top
    for row, name in enumerate(names):
        tar, colour = tars[name], "tab:red" if name == highlight else "tab:blue"
        if tar.has_interval:
            ax.plot([100 * tar.low, 100 * tar.high], [row, row], color=colour, lw=2.5, alpha=0.5)
        ax.plot(100 * tar.value, row, "o", color=colour)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("TAR (%), 95 % interval")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.figure.tight_layout()
    return ax.figure


def attribute_accuracy(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Figure:
    """Clustering accuracy of each attribute and subset (a row of ``attribute_findings.attribute_table``) against its
    majority rate, chance level and linear probe, in percent."""
    rows = table[table["above floor"].notna()].iloc[::-1]
    ax = _axes(ax, (6, 0.35 * len(rows) + 1.2))
    labels = [f"{name} ({subset})" for name, subset in zip(rows["attribute"], rows["subset"])]
    positions = np.arange(len(rows))
    marks = {"probe": ("^", "tab:green"), "majority rate": ("|", "black"), "chance": ("x", "grey"), "accuracy": ("o", "tab:red")}
    for column, (marker, colour) in marks.items():
        ax.scatter(100 * rows[column].astype(float), positions, marker=marker, color=colour, s=60, label=column, zorder=3)
    ax.set_yticks(positions, labels)
    ax.set_xlabel("percent of items (identities or images)")
    ax.set_title("clustering accuracy against its floors")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.figure.tight_layout()
    return ax.figure


def tar_interval_panels(tars: Mapping[str, Mapping[str, Tar]], highlight: str | None = None) -> plt.Figure:
    """``tar_intervals`` side by side, one panel per title (e.g. one per FAR): title -> method -> TAR."""
    rows = max(len(methods) for methods in tars.values())
    fig, axes = plt.subplots(1, len(tars), figsize=(6.5 * len(tars), 0.4 * rows + 1.5), squeeze=False)
    for ax, (title, methods) in zip(axes[0], tars.items()):
        tar_intervals(methods, title, highlight=highlight, ax=ax)
    fig.tight_layout()
    return fig


def _layers(needs: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Longest-path layer of each node of a DAG given as node -> the nodes it follows (sources: 0)."""
    layers: dict[str, int] = {}

    def layer(name: str) -> int:
        if name not in layers:
            layers[name] = 1 + max((layer(before) for before in needs[name]), default=-1)
        return layers[name]

    for name in needs:
        layer(name)
    return layers


def pipeline_figure(needs: Mapping[str, Sequence[str]]) -> plt.Figure:
    """The pipeline's stages top to bottom, in the order data flows; ``needs`` maps a stage to those it reads from.

    The entries of one ``foreach`` stage (``name@key``) share a box, which says how many there are.
    """
    entries = Counter(name.split("@")[0] for name in needs)
    groups: dict[str, set[str]] = {}
    for name, befores in needs.items():
        groups.setdefault(name.split("@")[0], set()).update(before.split("@")[0] for before in befores)
    layers = _layers(groups)
    rows = [[name for name in groups if layers[name] == row] for row in range(max(layers.values()) + 1)]
    width = max(map(len, rows))
    fig, ax = plt.subplots(figsize=(2.4 * width + 1, 0.8 * len(rows) + 0.4))
    boxes = {}
    for y, names in enumerate(rows):
        for i, name in enumerate(names):
            label = name if entries[name] == 1 else f"{name}@* ({entries[name]} stages)"
            boxes[name] = ax.text(
                i - (len(names) - 1) / 2,
                -y,
                label,
                ha="center",
                va="center",
                fontsize=9,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "tab:blue"},
            )
    fig.canvas.draw()  # lay the text out, so the arrows can end at the edges of its boxes
    for name, befores in groups.items():
        for before in befores:
            ax.annotate(
                "",
                xy=boxes[name].get_position(),
                xytext=boxes[before].get_position(),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": "grey",
                    "patchA": boxes[before].get_bbox_patch(),
                    "patchB": boxes[name].get_bbox_patch(),
                },
            )
    ax.set_xlim(-width / 2, width / 2)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.axis("off")
    fig.tight_layout()
    return fig


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def stage_times(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Figure:
    """Wall time of each stage's last run (a row of ``timing.stage_table``), one bar each, the first on top,
    coloured by the host it ran on; an extraction's images/s beside its bar (the host's speed on a fixed job).
    With no stage timed yet, the axes say so."""
    if table.empty:
        ax = _axes(ax, (7, 1.0))
        ax.text(
            0.5,
            0.5,
            "No stage has recorded its time here yet: stages record it when `dvc repro` runs them.",
            ha="center",
            va="center",
            fontsize=9,
        )
        ax.axis("off")
        return ax.figure
    rows = table.iloc[::-1]
    ax = _axes(ax, (7, 0.3 * len(rows) + 1.6))
    colours = {host: f"C{i}" for i, host in enumerate(dict.fromkeys(table["host"]))}
    positions = np.arange(len(rows))
    ax.barh(positions, rows["seconds"], color=[colours[host] for host in rows["host"]])
    for y, (seconds, rate) in enumerate(zip(rows["seconds"], rows["images_per_s"])):
        speed = "" if np.isnan(rate) else f", {rate:.0f} images/s"
        ax.text(seconds, y, f" {_duration(seconds)}{speed}", va="center", fontsize=7)
    ax.set_yticks(positions, rows["stage"])
    ax.set_xlabel("wall time of the stage's last run (s)")
    ax.margins(x=0.3)  # room for the labels right of the longest bar
    ax.grid(axis="x", alpha=0.3)
    ax.legend(
        handles=[plt.Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()],
        labels=list(colours),
        fontsize=7,
        loc="lower left",
        bbox_to_anchor=(0, 1),
        frameon=False,
    )  # above the bars: hosts, not data
    ax.figure.tight_layout()
    return ax.figure
