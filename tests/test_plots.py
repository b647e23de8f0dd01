"""Figures render from the real data and generator, and are saved atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from dmlfaces import plots  # noqa: E402


def test_figures_from_tiny_data(tiny_data: Path, tmp_path: Path) -> None:
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    crops = truth[truth["split"] == "ijbs"]
    figures = {
        "gallery": plots.identity_gallery(tiny_data, truth, persons=2, per_person=3),
        "toggles": plots.attribute_toggles(seed=0, person_id=3),
        "quality": plots.quality_spectrum(tiny_data, crops, count=4),
        "burst": plots.clip_burst(tiny_data, crops, frames=4),
        "hist": plots.quality_distribution(truth),
    }
    assert len(figures["toggles"].axes) == 16
    for name, fig in figures.items():
        plots.save_figure(fig, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in figures)


def test_study_a_figures_have_a_panel_per_entry(tmp_path: Path) -> None:
    import numpy as np

    matrix = pd.DataFrame({"beard, trained, all": [0.3, 0.1], "beard, dlib, all": [0.0, 0.2]}, index=["pitch", "beard"])
    heat = plots.factor_heatmap(matrix, "within identities", "share")
    assert heat.axes[0].get_ylabel() == "ground-truth factor" and len(heat.axes) == 2  # the map and its colour bar
    histograms = {f"a{i}": {"range": [0.0, 1.0], "counts": [1, 2, 3]} for i in range(4)}
    grid = plots.accuracy_histograms(histograms, columns=3)
    assert sum(ax.get_visible() for ax in grid.axes) == 4 and len(grid.axes) == 6
    points = plots.tsne(np.random.default_rng(0).normal(size=(12, 5)), seed=0)
    assert points.shape == (12, 2)
    plots.save_figure(heat, tmp_path / "heat.png")
    assert (tmp_path / "heat.png").stat().st_size > 0
