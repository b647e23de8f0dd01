"""Chapter 04's template stresses on the tiny protocol: the low-quality cut keeps every template, the bursts move
a plain mean further than insightface's per-media recipe, and the table holds each method under each stress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dmlfaces.data.ground_truth import GROUND_TRUTH_FILE, split_ground_truth
from dmlfaces.data.ijb import read_ijb
from dmlfaces.features import FeatureSet
from dmlfaces.stress import STRESS_FAR, low_quality_kept, stress_templates, tars_at
from dmlfaces.verify import FIELD_DEFAULT, compared_methods, describe_protocol, match_crops, verify_descriptors


def test_the_low_quality_cut_drops_the_fraction_but_keeps_each_templates_best_crop() -> None:
    quality = np.array([0.1, 0.2, 0.9, 0.05, 0.3, 0.8, 0.15])
    templates = np.array([1, 1, 1, 2, 2, 3, 4])
    keep = low_quality_kept(quality, templates, 0.5)
    assert keep.tolist() == [False, True, True, False, True, True, True]  # below the median 0.2; template 4's only crop stays
    assert set(templates[keep]) == set(templates)


def test_stresses_describe_every_method_again_and_give_tar_in_percent(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    names = protocol.crop_names[protocol.unique_crops]
    features = np.random.default_rng(0).normal(size=(len(names), 8)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    crops = FeatureSet(
        names,
        features,
        np.random.default_rng(1).uniform(0.5, 2.0, len(names)).astype(np.float32),
        single_features=features,
        single_norms=np.ones(len(names), np.float32),
    )
    methods = compared_methods(8)
    rows, lost = match_crops(protocol, crops)
    described = describe_protocol(methods, protocol, crops)
    report, _ = verify_descriptors(described, protocol, lost=lost, resamples=0)
    quality = split_ground_truth(tiny_data / GROUND_TRUTH_FILE, "ijbs", protocol.crop_names)["quality"].to_numpy()
    result = stress_templates(
        methods, protocol, crops, rows, described, report, quality, burst_copies=5, low_quality_fraction=0.3, seed=0
    )
    assert list(result.tars.columns) == ["as is", "with bursts", "lowest 30% dropped"]
    assert list(result.tars.index) == [name for name in methods]  # the detector-score recipe is left out
    assert FIELD_DEFAULT not in result.tars.index
    pd.testing.assert_series_equal(
        result.tars["as is"], pd.Series({n: 100 * report.methods[n].tar_exact[STRESS_FAR] for n in methods}), check_names=False
    )
    assert result.tars.to_numpy().min() >= 0 and result.tars.to_numpy().max() <= 100
    assert result.dropped == int((~low_quality_kept(quality, protocol.template_ids, 0.3)).sum()) > 0
    # A burst is one new media: insightface's recipe (media_template) averages it to one vote, the mean does not.
    assert result.shifts["media_template"].mean() < result.shifts["mean"].mean()
    assert tars_at(described, protocol) == {n: r.tar_exact[STRESS_FAR] for n, r in report.methods.items()}
