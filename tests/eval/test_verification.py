"""Verification metrics: template averaging, pair scores, TAR at FAR by the exact-threshold rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from dmlfaces.eval.verification import mean_template_descriptors, pair_scores, tar_at_far, unit_rows


def test_mean_template_descriptors_average_unit_features() -> None:
    features = np.array([[2.0, 0.0], [0.0, 5.0], [0.0, -1.0], [3.0, 4.0]])
    templates, descriptors = mean_template_descriptors(features, np.array([7, 7, 3, 7]))
    assert templates.tolist() == [3, 7]
    assert np.allclose(descriptors[0], [0.0, -1.0])
    expected = unit_rows(np.array([[1.0 + 0.6, 1.0 + 0.8]]))[0]
    assert np.allclose(descriptors[1], expected)


def test_pair_scores_are_cosines_and_unknown_templates_fail() -> None:
    templates = np.array([1, 5])
    descriptors = unit_rows(np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert np.allclose(pair_scores(templates, descriptors, np.array([[1, 5], [5, 5]])), [np.sqrt(0.5), 1.0])
    with pytest.raises(KeyError):
        pair_scores(templates, descriptors, np.array([[1, 4]]))


def test_tar_at_far_exact_rule_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    genuine = rng.normal(1.0, 1.0, 3000)
    impostor = rng.normal(-1.0, 1.0, 20000)
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(3000), np.zeros(20000)])
    fars = [1e-4, 1e-3, 1e-2, 1e-1]
    result = tar_at_far(scores, labels, fars)
    fpr, tpr, _ = roc_curve(labels, scores)
    for far in fars:
        # Brute force: the best TAR among ROC points whose FAR does not exceed the target.
        assert result[far] == pytest.approx(tpr[fpr <= far].max(), abs=1e-12)


def test_tar_at_far_with_ties_never_exceeds_the_target() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.5])
    labels = np.array([1, 1, 0, 0, 0, 0])
    # Four impostors; FAR 0.25 allows one false accept, but three impostors tie at 0.5.
    assert tar_at_far(scores, labels, [0.25])[0.25] == 0.5


def test_tar_at_far_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        tar_at_far(np.array([0.1, 0.2]), np.array([1, 1]), [0.1])
