"""Chapter 01's figures of SynthFaces: the identity gallery, attribute toggles, the quality spectrum and
distribution, and the frames of a clip (the burst a plain average follows)."""

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
    base = dataclasses.replace(
        base,
        beard=False,
        glasses=False,
        expression="neutral",
        yaw=0.0,
        pitch=0.0,
        roll=0.0,
        occlusion=0.0,
        blur=0.0,
        noise=0.0,
        low_resolution=1.0,
        light_strength=0.0,
        brightness=1.0,
    )
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
