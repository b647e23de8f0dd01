"""Subject bootstrap: a resample equals sklearn on the explicitly repeated pair list; intervals are seeded."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from dmlfaces.eval.bootstrap import bootstrap_tar_at_far, pair_subjects
from dmlfaces.eval.roc import FARS, tar_at_far_rules
from dmlfaces.eval.scoring import score_pairs

FARS_HERE = (1e-3, 1e-2, 1e-1)


def test_pair_subjects_maps_templates_and_refuses_conflicts() -> None:
    pairs = np.array([[5, 9], [9, 9], [2, 5]])
    assert pair_subjects(pairs, np.array([9, 5, 2]), np.array([30, 10, 10])).tolist() == [[10, 30], [30, 30], [10, 10]]
    # A template listed twice with one subject is fine (e.g. two gallery lists); two subjects is not.
    assert pair_subjects(pairs[:1], np.array([5, 9, 5]), np.array([1, 2, 1])).tolist() == [[1, 2]]
    with pytest.raises(ValueError, match="template 5 is given subjects 1 and 3"):
        pair_subjects(pairs, np.array([5, 9, 5, 2]), np.array([1, 2, 3, 4]))
    with pytest.raises(KeyError, match="template 2 is unknown"):
        pair_subjects(pairs, np.array([5, 9]), np.array([1, 2]))


def test_one_resample_equals_sklearn_on_repeated_pairs(small_protocol) -> None:
    p = small_protocol
    scores = np.round(score_pairs(p.templates, p.descriptors, p.pairs), 2)  # rounded: ties
    subjects = pair_subjects(p.pairs, p.templates, p.subjects)
    seed = 11
    result = bootstrap_tar_at_far(scores, p.labels, subjects, FARS, resamples=1, seed=seed)
    # The same draw by hand: subjects are numbered in sorted order, copies[s] is how often s was drawn.
    unique = np.unique(subjects)
    copies = np.bincount(np.random.default_rng(seed).integers(0, len(unique), len(unique)), minlength=len(unique))
    a, b = copies[np.searchsorted(unique, subjects[:, 0])], copies[np.searchsorted(unique, subjects[:, 1])]
    repeats = np.where(p.labels == 1, a, a * b)
    expanded_scores, expanded_labels = np.repeat(scores, repeats), np.repeat(p.labels, repeats)
    fpr, tpr, _ = roc_curve(expanded_labels, expanded_scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    assert result.nearest[0].tolist() == [tpr[np.argmin(np.abs(fpr - far))] for far in FARS]
    assert result.exact[0].tolist() == list(tar_at_far_rules(expanded_scores, expanded_labels, FARS)[1].values())


def test_intervals_are_seeded_and_contain_the_estimate(small_protocol) -> None:
    p = small_protocol
    scores = score_pairs(p.templates, p.descriptors, p.pairs)
    subjects = pair_subjects(p.pairs, p.templates, p.subjects)
    first = bootstrap_tar_at_far(scores, p.labels, subjects, FARS_HERE, resamples=200, seed=3)
    again = bootstrap_tar_at_far(scores, p.labels, subjects, FARS_HERE, resamples=200, seed=3)
    other = bootstrap_tar_at_far(scores, p.labels, subjects, FARS_HERE, resamples=200, seed=4)
    assert np.array_equal(first.nearest, again.nearest) and np.array_equal(first.exact, again.exact)
    assert not np.array_equal(first.nearest, other.nearest)
    nearest, exact = tar_at_far_rules(scores, p.labels, FARS_HERE)
    for rule, point in (("nearest", nearest), ("exact", exact)):
        low, high = first.interval(rule, 0.95)
        assert np.all(low <= list(point.values())) and np.all(list(point.values()) <= high)
        assert np.all(high - low > 0)  # 60 subjects leave real uncertainty
        narrow_low, narrow_high = first.interval(rule, 0.5)
        assert np.all(low <= narrow_low) and np.all(narrow_high <= high)


def test_labels_must_agree_with_subjects() -> None:
    scores = np.array([0.9, 0.1, 0.3])
    with pytest.raises(ValueError, match="pair 1 is labelled impostor but its templates' subjects are 4 and 4"):
        bootstrap_tar_at_far(scores, np.array([1, 0, 0]), np.array([[4, 4], [4, 4], [4, 5]]), resamples=2)
