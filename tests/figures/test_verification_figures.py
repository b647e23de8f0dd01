"""ROC and DET draw one curve per method on log-scale FAR."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dmlfaces.eval.roc import roc_curve_points  # noqa: E402
from dmlfaces.figures.verification import det, roc  # noqa: E402


def test_roc_and_det_have_one_curve_per_method() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(20_000) < 0.05).astype(int)
    curves = {
        name: roc_curve_points(rng.normal(size=len(labels)) + shift * labels, labels)
        for name, shift in (("weak", 1.0), ("strong", 3.0))
    }
    for plot, scale in ((roc, "linear"), (det, "log")):
        fig = plot(curves)
        ax = fig.axes[0]
        assert ax.get_xscale() == "log" and ax.get_yscale() == scale
        labels = [line.get_label() for line in ax.get_lines()]
        assert [label for label in labels if not label.startswith("_")] == ["weak", "strong"]
        plt.close(fig)
