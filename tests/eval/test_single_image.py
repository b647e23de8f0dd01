"""Chapter 02's single-image measures: every method scores the same pairs; rho is undefined where nothing varies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from dmlfaces.eval.roc import REPORTED_FARS
from dmlfaces.eval.single_image import single_image_tars, spearman, spearman_by_degradation


def test_every_method_scores_the_same_pairs_and_a_better_one_gets_a_higher_tar() -> None:
    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(40), 5)
    media = np.arange(len(subjects))
    centres = rng.normal(size=(40, 16))
    good = centres[subjects] + 0.3 * rng.normal(size=(len(subjects), 16))
    poor = centres[subjects] + 3.0 * rng.normal(size=(len(subjects), 16))
    unit = {name: rows / np.linalg.norm(rows, axis=1, keepdims=True) for name, rows in (("good", good), ("poor", poor))}
    tars, scores, labels = single_image_tars(unit, subjects, media, 200, 5000, seed=0)
    assert set(tars["good"]) == set(REPORTED_FARS) and len(scores["good"]) == len(scores["poor"]) == len(labels)
    assert labels.sum() == 200 and tars["good"][1e-2] > tars["poor"][1e-2]


def test_rho_by_degradation_is_negated_severity_and_none_where_no_crop_varies() -> None:
    rng = np.random.default_rng(1)
    blur = rng.random(50)
    truth = pd.DataFrame({"quality": 1 - blur + 0.1 * rng.random(50), "severity_blur": blur, "severity_noise": np.zeros(50)})
    norms = 2 - blur
    table = spearman_by_degradation(norms, truth, {"blur": 0.6, "noise": 0.4})
    assert table.loc["blur", "norm"] == spearman(norms, -truth["severity_blur"]) == pytest.approx(1.0)
    assert table.loc["blur", "quality"] == float(spearmanr(truth["quality"], -blur).statistic)
    assert pd.isna(table.loc["noise", "norm"]) and table.loc["noise", "weight"] == 0.4
