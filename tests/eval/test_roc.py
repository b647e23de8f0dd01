"""TAR at FAR: the nearest rule reproduces sklearn + the public evaluators' pick exactly; the exact rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from dmlfaces.eval import roc
from dmlfaces.eval.roc import FARS, roc_curve_points, tar_at_far_nearest, tar_at_far_rules


def public_evaluator(scores: np.ndarray, labels: np.ndarray, fars: list[float]) -> list[float]:
    """What insightface's ijb_11.py prints (before rounding): reversed ROC, first nearest FPR."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    return [float(tpr[np.argmin(np.abs(fpr - far))]) for far in fars]


def brute_force_exact(scores: np.ndarray, labels: np.ndarray, fars: list[float]) -> list[float]:
    """Largest TPR over every threshold (no point dropped) whose FPR does not exceed the target."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return [float(tpr[fpr <= far].max()) for far in fars]


def test_hand_checked_example() -> None:
    # Descending: 0.9 G, 0.8 I, 0.7 G, 0.6 I. ROC points with (0, 0) first: FPR 0, 0, .5, .5, 1 and
    # TPR 0, .5, .5, 1, 1; nothing is collinear, so nothing is dropped.
    scores = np.array([0.7, 0.8, 0.9, 0.6])
    labels = np.array([1, 0, 1, 0])
    nearest, exact = tar_at_far_rules(scores, labels, [0.2, 0.3, 0.5])
    # 0.2: FPR 0 is nearest, last of the two points -> .5. 0.3: FPR .5 (0.2 away) beats 0 (0.3 away)
    # and the last point at .5 has TPR 1 -- above the target FAR. 0.5: exactly on it -> 1.
    assert nearest == {0.2: 0.5, 0.3: 1.0, 0.5: 1.0}
    # Exact: one false accept is allowed only from 0.5 on.
    assert exact == {0.2: 0.5, 0.3: 0.5, 0.5: 1.0}


def test_nearest_rule_equals_public_evaluator_on_random_data_with_ties() -> None:
    rng = np.random.default_rng(0)
    for case in range(300):
        count = int(rng.integers(2, 200))
        if case % 2:
            scores = rng.integers(0, int(rng.integers(1, 12)), count) / 7.0  # heavy ties
        else:
            scores = rng.normal(size=count).astype(np.float32)
        labels = (rng.random(count) < rng.uniform(0.05, 0.95)).astype(int)
        labels[:2] = [0, 1]
        scores = scores + labels * rng.uniform(0, 2)
        impostors = np.count_nonzero(labels == 0)
        # Midway between two FPR steps: two points equally near (exactly so when impostors is a power of 2).
        midway = [(k + 0.5) / impostors for k in range(min(impostors, 4))]
        fars = list(FARS) + rng.random(3).tolist() + [1.0, 1 / impostors] + midway
        nearest, exact = tar_at_far_rules(scores, labels, fars)
        assert [nearest[f] for f in fars] == public_evaluator(scores, labels, fars), case
        assert [exact[f] for f in fars] == brute_force_exact(scores, labels, fars), case


def test_large_set_uses_only_the_head_and_stays_exact() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(200_000) < 0.02).astype(int)
    scores = np.round(rng.normal(size=len(labels)) + 2.5 * labels, 3)  # rounded: many ties
    nearest, exact = tar_at_far_rules(scores, labels)
    assert list(nearest.values()) == public_evaluator(scores, labels, list(FARS))
    assert list(exact.values()) == brute_force_exact(scores, labels, list(FARS))


def test_head_widens_when_the_nearest_point_lies_beyond_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Corners at FPR 0 and 0.16 only: for target 0.1 the nearest point is past a 12.5% head.
    impostors, block = 100_000, 16_000
    scores = np.r_[np.full(10, 5.0), np.linspace(4, 3, block), 2.0, np.linspace(1, 0, impostors - block)]
    labels = np.r_[np.ones(10), np.zeros(block), 1, np.zeros(impostors - block)].astype(int)
    sizes = []
    select = roc.RocHead.select
    monkeypatch.setattr(roc.RocHead, "select", classmethod(lambda cls, s, y, k: sizes.append(k) or select(s, y, k)))
    assert tar_at_far_nearest(scores, labels, [0.1]) == {0.1: public_evaluator(scores, labels, [0.1])[0]} == {0.1: 1.0}
    assert len(sizes) == 2 and sizes[0] < block < sizes[1]


def test_exact_rule_rejects_a_tie_at_the_threshold_as_a_whole() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.5])
    labels = np.array([1, 1, 0, 0, 0, 0])
    # Four impostors; FAR 0.25 allows one false accept, but three impostors tie at 0.5.
    _, exact = tar_at_far_rules(scores, labels, [0.25, 0.75])
    assert exact == {0.25: 0.5, 0.75: 1.0}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="1 scores are NaN or infinite, first at pair 2"):
        tar_at_far_rules(np.array([0.1, 0.2, bad]), np.array([0, 1, 0]))


def test_targets_must_be_rates() -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        tar_at_far_rules(np.array([0.1, 0.2]), np.array([0, 1]), [0.0])


def test_roc_curve_points_are_exact_rule_operating_points() -> None:
    rng = np.random.default_rng(2)
    labels = (rng.random(5000) < 0.1).astype(int)
    scores = rng.normal(size=len(labels)) + 2 * labels
    curve = roc_curve_points(scores, labels, points=50)
    assert np.all(np.diff(curve.far) >= 0) and np.all(np.diff(curve.tar) >= 0)
    assert curve.far[-1] == 1.0 and curve.tar[-1] == 1.0
    exact = roc.tar_at_far(scores, labels, curve.far.tolist())
    assert np.array_equal(curve.tar, [exact[f] for f in curve.far.tolist()])
