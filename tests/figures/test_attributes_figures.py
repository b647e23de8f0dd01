"""Study A's figures have a panel per entry."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from dmlfaces.figures import attributes, save_figure  # noqa: E402


def test_study_a_figures_have_a_panel_per_entry(tmp_path: Path) -> None:
    matrix = pd.DataFrame({"beard, trained, all": [0.3, 0.1], "beard, dlib, all": [0.0, 0.2]}, index=["pitch", "beard"])
    heat = attributes.factor_heatmap(matrix, "within identities", "share")
    assert heat.axes[0].get_ylabel() == "ground-truth factor" and len(heat.axes) == 2  # the map and its colour bar
    histograms = {f"a{i}": {"range": [0.0, 1.0], "counts": [1, 2, 3]} for i in range(4)}
    grid = attributes.accuracy_histograms(histograms, columns=3)
    assert sum(ax.get_visible() for ax in grid.axes) == 4 and len(grid.axes) == 6
    save_figure(heat, tmp_path / "heat.png")
    assert (tmp_path / "heat.png").stat().st_size > 0
