"""The summary pages' figures render from the shapes the metrics give them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from dmlfaces.figures import summary  # noqa: E402
from dmlfaces.findings import Tar  # noqa: E402


def test_tar_intervals_draw_one_row_per_method_into_given_axes() -> None:
    fig, ax = plt.subplots()
    tars = {"coreset": Tar(0.05, 0.01, 0.1), "mean": Tar(0.03), "k5": Tar(0.04, 0.02, 0.08)}
    assert summary.tar_intervals(tars, "FAR = 1e-4", highlight="coreset", ax=ax) is fig
    assert [label.get_text() for label in ax.get_yticklabels()] == ["k5", "mean", "coreset"]
    assert len(ax.lines) == 5  # three points, two intervals


def test_attribute_accuracy_leaves_skipped_attributes_out() -> None:
    table = pd.DataFrame(
        [
            {"attribute": "beard", "subset": "skipped: none", "above floor": None},
            {
                "attribute": "age",
                "subset": "controlled",
                "accuracy": 0.9,
                "majority rate": 0.5,
                "chance": None,
                "probe": 1.0,
                "above floor": True,
            },
        ]
    )
    fig = summary.attribute_accuracy(table)
    assert [label.get_text() for label in fig.axes[0].get_yticklabels()] == ["age (controlled)"]


def test_pipeline_figure_draws_foreach_entries_as_one_box() -> None:
    needs = {"data.dvc": (), "train@a": ("data.dvc",), "train@b": ("data.dvc",), "report": ("train@a", "train@b")}
    fig = summary.pipeline_figure(needs)
    labels = sorted(text.get_text() for text in fig.axes[0].texts)
    assert labels == ["", "", "data.dvc", "report", "train@* (2 stages)"]  # two arrows (annotations) and three boxes


def test_stage_times_draw_one_bar_per_stage_coloured_by_host_with_the_extraction_rate() -> None:
    table = pd.DataFrame(
        [
            {
                "stage": "train_embedding",
                "seconds": 3600.0,
                "images_per_s": float("nan"),
                "host": "AMD EPYC, 2 CPUs, pinned numerics",
            },
            {"stage": "extract_ijbs", "seconds": 90.0, "images_per_s": 120.4, "host": "AMD EPYC, 2 CPUs, pinned numerics"},
            {
                "stage": "book_pages (so far)",
                "seconds": 30.0,
                "images_per_s": float("nan"),
                "host": "Intel Xeon, 2 CPUs, native numerics",
            },
        ]
    )
    fig = summary.stage_times(table)
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["book_pages (so far)", "extract_ijbs", "train_embedding"]
    assert [text.get_text() for text in ax.texts] == [" 30 s", " 90 s, 120 images/s", " 60.0 min"]
    assert [bar.get_width() for bar in ax.patches[:3]] == [30.0, 90.0, 3600.0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "AMD EPYC, 2 CPUs, pinned numerics",
        "Intel Xeon, 2 CPUs, native numerics",
    ]


def test_tar_panels_draw_one_panel_per_far_and_stage_times_say_when_nothing_is_timed() -> None:
    tars = {f"FAR={far}": {"coreset": Tar(0.5, 0.4, 0.6), "mean": Tar(0.3)} for far in ("1e-4", "1e-3")}
    fig = summary.tar_interval_panels(tars, highlight="coreset")
    assert [ax.get_title() for ax in fig.axes] == ["FAR=1e-4", "FAR=1e-3"]
    empty = summary.stage_times(pd.DataFrame(columns=["stage", "seconds", "host", "images_per_s"]))
    assert "No stage has recorded its time" in empty.axes[0].texts[0].get_text()
    plt.close("all")
