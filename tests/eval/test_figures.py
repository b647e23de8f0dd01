"""ROC, DET and interval figures draw one curve (or series) per method on log-scale FAR."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dmlfaces.eval.figures import plot_det, plot_roc, plot_tar_intervals  # noqa: E402
from dmlfaces.eval.roc import roc_curve_points  # noqa: E402


def test_roc_and_det_have_one_curve_per_method() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(20_000) < 0.05).astype(int)
    curves = {name: roc_curve_points(rng.normal(size=len(labels)) + shift * labels, labels)
              for name, shift in (("weak", 1.0), ("strong", 3.0))}
    for plot, scale in ((plot_roc, "linear"), (plot_det, "log")):
        fig = plot(curves)
        ax = fig.axes[0]
        assert ax.get_xscale() == "log" and ax.get_yscale() == scale
        labels = [line.get_label() for line in ax.get_lines()]
        assert [label for label in labels if not label.startswith("_")] == ["weak", "strong"]
        plt.close(fig)


def test_interval_plot_reads_the_report_json() -> None:
    report = {"methods": {
        "a": {"0.001": {"tar_nearest": 0.5, "ci_low": 0.4, "ci_high": 0.6, "tar_exact": 0.5, "ci_low_exact": None,
                        "ci_high_exact": None}},
        "b": {"0.001": {"tar_nearest": 0.7, "ci_low": 0.65, "ci_high": 0.8, "tar_exact": 0.7, "ci_low_exact": None,
                        "ci_high_exact": None}},
    }}
    for rule in ("nearest", "exact"):
        fig = plot_tar_intervals(report, rule=rule)
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0.001"]
        assert len(fig.axes[0].containers) == 2
        plt.close(fig)
