"""Figures shared by the notebooks: the SynthFaces gallery, attribute toggles, quality and bursts."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from dmlfaces.data.faces import ImageFactors, PersonFactors, render_face, sample_image
from dmlfaces.data.images import load_rgb
from dmlfaces.data.synth import person_factors
from dmlfaces.io import atomic_path


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str], columns: int, size: float = 1.3) -> plt.Figure:
    """A grid of (H, W, 3) images with a small title over each."""
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * (size + 0.25)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles):
        ax.imshow(image)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


def identity_gallery(data_dir: str | Path, ground_truth: pd.DataFrame, persons: int, per_person: int) -> plt.Figure:
    """Rows of training images, one row per person: what stays (identity) and what varies."""
    train = ground_truth[ground_truth["split"] == "train"]
    ids = train["identity"].drop_duplicates().iloc[:persons]
    images, titles = [], []
    for identity in ids:
        rows = train[train["identity"] == identity].iloc[:per_person]
        for _, row in rows.iterrows():
            images.append(load_rgb(Path(data_dir) / row["path"]))
            titles.append(f"id {identity} q={row['quality']:.2f}")
    return image_grid(images, titles, columns=per_person)


def attribute_toggles(seed: int, person_id: int) -> plt.Figure:
    """One person rendered with each attribute switched on and off, everything else held fixed."""
    person = person_factors(seed, person_id)
    person = dataclasses.replace(person, gender="male", hair_style="short", beard_style="full")
    base = sample_image(np.random.default_rng([seed, person_id]), person, difficulty=0.0, loose=False)
    base = dataclasses.replace(base, beard=False, glasses=False, expression="neutral", yaw=0.0, pitch=0.0, roll=0.0,
                               occlusion=0.0, blur=0.0, noise=0.0, low_resolution=1.0, light_strength=0.0, brightness=1.0)
    variants: list[tuple[str, PersonFactors, ImageFactors]] = [
        ("neutral", person, base),
        ("beard on", person, dataclasses.replace(base, beard=True)),
        ("glasses (thin)", dataclasses.replace(person, glasses_frame="thin"), dataclasses.replace(base, glasses=True)),
        ("glasses (thick)", dataclasses.replace(person, glasses_frame="thick"), dataclasses.replace(base, glasses=True)),
        ("smiling", person, dataclasses.replace(base, expression="smiling")),
        ("surprised", person, dataclasses.replace(base, expression="surprised")),
        ("older", dataclasses.replace(person, age_group="older", grey_fraction=0.8), base),
        ("darker skin", dataclasses.replace(person, skin_tone=0.85), base),
        ("female", dataclasses.replace(person, gender="female", hair_style="long", jaw_width=person.jaw_width - 4), base),
        ("yaw 35 deg", person, dataclasses.replace(base, yaw=0.6)),
        ("side light", person, dataclasses.replace(base, light_strength=0.9)),
        ("occluded", person, dataclasses.replace(base, occlusion=0.2)),
        ("blur", person, dataclasses.replace(base, blur=2.0)),
        ("low resolution", person, dataclasses.replace(base, low_resolution=0.25)),
        ("noise", person, dataclasses.replace(base, noise=25.0)),
        ("loose crop", person, dataclasses.replace(base, scale=0.75, roll=0.3, shift_x=8.0)),
    ]
    images = [render_face(p, i)[0] for _, p, i in variants]
    return image_grid(images, [name for name, _, _ in variants], columns=8)


def quality_spectrum(data_dir: str | Path, crops: pd.DataFrame, count: int = 12) -> plt.Figure:
    """Crops at evenly spaced quantiles of ground-truth quality, worst to best."""
    ordered = crops.sort_values("quality").reset_index(drop=True)
    picks = ordered.iloc[np.linspace(0, len(ordered) - 1, count).round().astype(int)]
    images = [load_rgb(Path(data_dir) / p) for p in picks["path"]]
    return image_grid(images, [f"q={q:.2f}" for q in picks["quality"]], columns=count)


def clip_burst(data_dir: str | Path, crops: pd.DataFrame, frames: int = 12) -> plt.Figure:
    """The frames of the longest video clip: the near-duplicates that swamp a plain average."""
    clips = crops[crops["media_kind"] == "clip"]
    media = clips.groupby("media_id").size().idxmax()
    clip = clips[clips["media_id"] == media].sort_values("frame")
    shown = clip.iloc[np.linspace(0, len(clip) - 1, min(frames, len(clip))).round().astype(int)]
    images = [load_rgb(Path(data_dir) / p) for p in shown["path"]]
    return image_grid(images, [f"frame {f}/{len(clip)}" for f in shown["frame"]], columns=len(images))


def quality_distribution(ground_truth: pd.DataFrame) -> plt.Figure:
    """Histogram of ground-truth quality per split and media kind."""
    frame = ground_truth.assign(source=ground_truth["split"] + " / " + ground_truth["media_kind"])
    fig, ax = plt.subplots(figsize=(7, 3))
    sns.histplot(frame, x="quality", hue="source", stat="density", common_norm=False, element="step", bins=30, ax=ax)
    ax.set_xlabel("ground-truth quality")
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save a figure as PNG (fixed metadata so reruns give the same bytes)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")


def training_curve(history: dict) -> plt.Figure:
    """Loss per step (light) and per epoch (dark) of a training history."""
    steps = np.array(history["steps"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(steps[:, 0], steps[:, 1], color="tab:blue", alpha=0.3, lw=0.8, label="step")
    per_epoch = len(steps) / max(len(history["epochs"]), 1)
    ax.plot([e["epoch"] * per_epoch for e in history["epochs"]], [e["loss"] for e in history["epochs"]],
            "o-", color="tab:blue", label="epoch mean")
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


def picked_quality_figure(picked: np.ndarray, overall: np.ndarray) -> plt.Figure:
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
    for ax in axes.ravel()[len(histograms):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("identities")
    fig.tight_layout()
    return fig


def tsne(points: np.ndarray, seed: int) -> np.ndarray:
    """(N, 2) t-SNE map of (N, D) points (PCA start; perplexity 30, or N - 1 for fewer points)."""
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", perplexity=min(30, len(points) - 1), random_state=seed).fit_transform(points)


def factor_heatmap(matrix: pd.DataFrame, title: str, value: str) -> plt.Figure:
    """Heat map of a (factors, problems) frame (``findings.factor_matrix``), one column per split, values annotated."""
    fig, ax = plt.subplots(figsize=(1.0 * matrix.shape[1] + 2.5, 0.38 * matrix.shape[0] + 2.4))
    sns.heatmap(matrix.astype(float), annot=True, fmt=".2f", cmap="viridis", cbar_kws={"label": value},
                annot_kws={"fontsize": 7}, ax=ax)
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel("ground-truth factor")
    ax.tick_params(axis="x", labelsize=8, labelrotation=60)
    fig.tight_layout()
    return fig


def attribute_maps(points: np.ndarray, states: dict[str, np.ndarray]) -> plt.Figure:
    """The same (N, 2) map coloured by each attribute's (N,) states (1, -1; 0 = tied vote), one panel each."""
    fig, axes = plt.subplots(1, len(states), figsize=(3.6 * len(states), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], states.items()):
        labels = np.where(values > 0, name, np.where(values < 0, f"not {name}", "tied"))
        sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=labels, s=12, ax=ax, palette="Set1")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> plt.Figure:
    """ROC curves (TAR against FAR on a log axis) of several methods scored on the same pairs."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (scores, labels) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        keep = fpr > 0
        ax.plot(fpr[keep], tpr[keep], label=name)
    ax.set_xscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def norm_quality_figure(norms: np.ndarray, quality: np.ndarray, rho: float) -> plt.Figure:
    """Feature norm against ground-truth quality, one point per crop."""
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hexbin(quality, norms, gridsize=40, cmap="viridis", mincnt=1)
    ax.set_xlabel("ground-truth quality")
    ax.set_ylabel("feature norm")
    ax.set_title(f"Spearman rho = {rho:.2f}")
    fig.tight_layout()
    return fig


def embedding_map(points: np.ndarray, labels: np.ndarray, title: str) -> plt.Figure:
    """A 2-D map of embeddings, (N, 2) points coloured by (N,) labels."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=labels.astype(str), palette="tab20", s=14, ax=ax, legend=False)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig
