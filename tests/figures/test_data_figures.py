"""Chapter 01's figures render from the real data and generator, and are saved atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from dmlfaces.figures import data, save_figure  # noqa: E402


def test_figures_from_tiny_data(tiny_data: Path, tmp_path: Path) -> None:
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    crops = truth[truth["split"] == "ijbs"]
    figures = {
        "gallery": data.identity_gallery(tiny_data, truth, persons=2, per_person=3),
        "toggles": data.attribute_toggles(seed=0, person_id=3),
        "quality": data.quality_spectrum(tiny_data, crops, count=4),
        "burst": data.clip_burst(tiny_data, crops, frames=4),
        "hist": data.quality_distribution(truth),
    }
    assert len(figures["toggles"].axes) == 16
    for name, fig in figures.items():
        save_figure(fig, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in figures)
