"""Clustering engine: Hungarian accuracy, per-group scores, the probe, batched k-means against scikit-learn."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from dmlfaces.eval.clustering import (
    CLUSTER_METHODS,
    Clusterer,
    grouped_kmeans,
    grouped_partition_scores,
    hungarian_accuracy,
    majority_rate,
    partition_scores,
    probe_accuracy,
    table_scores,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Problems this small gain nothing from threads, and on a busy machine threads cost a lot."""
    with threadpool_limits(1):
        yield


def _blobs(groups: int, per_group: int, dim: int, separation: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(N, dim) points: per group, two blobs `separation` apart along a group-specific direction."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), per_group)
    state = np.tile(np.arange(per_group) % 2, groups)
    direction = rng.normal(size=(groups, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    points = 5 * rng.normal(size=(groups, dim))[group] + rng.normal(size=(len(group), dim)) / np.sqrt(dim)
    points += (state - 0.5)[:, None] * separation * direction[group]
    return points.astype(np.float32), group, state


def test_hungarian_accuracy_on_hand_examples_is_label_permutation_invariant() -> None:
    truth = np.array([0, 0, 0, 1, 1, 1])
    assert hungarian_accuracy(truth, [1, 1, 1, 0, 0, 0]) == 1.0
    assert hungarian_accuracy(truth, [5, 5, 9, 9, 9, 9]) == pytest.approx(5 / 6)
    # One cluster for everything: only one class can be matched.
    assert hungarian_accuracy(truth, [3, 3, 3, 3, 3, 3]) == 0.5
    # Three clusters for two classes: the smallest leftover cluster counts as wrong.
    assert hungarian_accuracy(truth, [0, 0, 2, 1, 1, 1]) == pytest.approx(5 / 6)
    # Noise (-1) is never matched, even when it would fit a class.
    assert hungarian_accuracy(truth, [-1, -1, -1, 1, 1, 1]) == 0.5
    permuted = np.random.default_rng(0).permutation(6)
    assert hungarian_accuracy(truth[permuted], np.array([1, 1, 0, 0, 1, 0])[permuted]) == hungarian_accuracy(
        truth, [1, 1, 0, 0, 1, 0]
    )


def test_partition_scores_and_majority_rate() -> None:
    scores = partition_scores(np.array([1, 1, 1, -1]), np.array([0, 0, 0, 1]))
    assert scores == {"accuracy": 1.0, "majority_rate": 0.75, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}
    assert majority_rate(np.array(["a", "b", "b", "b", "b"])) == 0.8


def test_grouped_scores_equal_per_group_scores() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat([30, 10, 20], [7, 12, 9])
    truth, predicted = rng.choice([-1, 1], len(groups)), rng.integers(0, 2, len(groups))
    predicted[[0, 8, 9]] = -1  # noise, as HDBSCAN marks it
    frame = grouped_partition_scores(truth, predicted, groups, chance_repeats=50)
    assert frame.index.tolist() == [10, 20, 30]
    for group, row in frame.iterrows():
        rows = groups == group
        assert row["images"] == rows.sum()
        expected = partition_scores(truth[rows], predicted[rows])
        assert row[list(expected)].to_dict() == pytest.approx(expected)
        # Chance is what shuffled classes reach: near the accuracy of these clusters, far from 1.
        assert 0.3 <= row["chance_accuracy"] <= 0.8


@pytest.mark.parametrize("classes, clusters", [(2, 2), (5, 2), (3, 4), (1, 2), (2, 1)])
def test_table_scores_equal_scikit_learn_table_by_table(classes: int, clusters: int) -> None:
    rng = np.random.default_rng(classes * 10 + clusters)
    groups = np.repeat(np.arange(40), rng.integers(1, 15, 40))
    truth, predicted = rng.integers(0, classes, len(groups)), rng.integers(0, clusters, len(groups))
    truth[groups == 3], predicted[groups == 4] = 0, 0  # one class only; one cluster only
    frame = grouped_partition_scores(truth, predicted, groups, chance_repeats=0)
    for group, row in frame.iterrows():
        rows = groups == group
        expected = partition_scores(truth[rows], predicted[rows])
        assert row[list(expected)].to_numpy() == pytest.approx(np.array(list(expected.values())), abs=1e-12)


def test_table_scores_skip_the_noise_column_in_matching_only() -> None:
    truth, predicted = np.array([0, 0, 0, 1, 1, 1]), np.array([-1, -1, -1, 1, 1, 1])
    table = np.array([[[3, 0], [0, 3]]])  # columns: noise, cluster 1
    scores = table_scores(table, noise_column=True)
    assert scores["accuracy"][0] == hungarian_accuracy(truth, predicted) == 0.5
    assert scores["nmi"][0] == pytest.approx(partition_scores(truth, predicted)["nmi"])
    # More than 720 one-to-one matchings: the Hungarian method per distinct table gives the same optimum.
    big = np.random.default_rng(0).integers(0, 5, (6, 7, 8))
    assert table_scores(big)["accuracy"] == pytest.approx([hungarian_accuracy(*_items(t)) for t in big])


def _items(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class, cluster) of every item counted in a (T, P) contingency table."""
    cells = np.repeat(np.arange(table.size), table.ravel())
    return cells // table.shape[1], cells % table.shape[1]


def test_grouped_scores_chance_nmi_is_low_for_unrelated_labels() -> None:
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(50), 16)
    truth, predicted = rng.integers(0, 4, len(groups)), rng.integers(0, 2, len(groups))
    frame = grouped_partition_scores(truth, predicted, groups, chance_repeats=20, chance_nmi=True)
    # Unrelated labels: NMI and its chance level agree on average, and both sit well above 0 on 16 items.
    assert abs(frame["nmi"].mean() - frame["chance_nmi"].mean()) < 0.03 < frame["chance_nmi"].mean()


def test_probe_separates_planted_classes_and_declines_too_few() -> None:
    points, group, state = _blobs(groups=1, per_group=60, dim=8, separation=4.0)
    assert probe_accuracy(points, state, folds=5) > 0.95
    assert probe_accuracy(points[:3], np.array([0, 0, 1])) is None


def test_batched_kmeans_recovers_separable_groups_like_sklearn() -> None:
    points, group, state = _blobs(groups=15, per_group=12, dim=64, separation=3.0)
    result = grouped_kmeans(points, group, 2, n_init=4, seed=0)
    for g in range(15):
        rows = group == g
        reference = KMeans(2, n_init=4, random_state=0).fit(points[rows])
        assert hungarian_accuracy(state[rows], result.labels[rows]) == 1.0
        assert result.inertia[g] == pytest.approx(reference.inertia_, rel=1e-4)


def test_batched_kmeans_matches_sklearn_on_average_on_hard_groups() -> None:
    points, group, state = _blobs(groups=60, per_group=16, dim=64, separation=0.6, seed=3)
    ours = grouped_partition_scores(state, grouped_kmeans(points, group, n_init=5).labels, group, chance_repeats=0)
    reference = np.concatenate([KMeans(2, n_init=5, random_state=0).fit_predict(points[group == g]) for g in range(60)])
    theirs = grouped_partition_scores(state, reference, group, chance_repeats=0)
    assert 0.6 < theirs["accuracy"].mean() < 0.95  # hard enough that the two can disagree
    assert ours["accuracy"].mean() >= theirs["accuracy"].mean() - 0.02


def test_batched_kmeans_is_independent_of_the_other_groups_and_handles_degenerate_ones() -> None:
    points, group, _ = _blobs(groups=30, per_group=10, dim=16, separation=0.5, seed=5)
    alone = grouped_kmeans(points[group == 7], group[group == 7], n_init=3, seed=2).labels
    together = grouped_kmeans(points, group, n_init=3, seed=2, batch_size=4).labels
    assert np.array_equal(alone, together[group == 7])
    # Identical points and a group of exactly k points still give k non-empty clusters.
    flat = grouped_kmeans(np.ones((5, 3), np.float32), np.array([4, 4, 4, 9, 9]))
    assert sorted(flat.labels[:3]) == [0, 0, 1] and sorted(flat.labels[3:]) == [0, 1]
    with pytest.raises(ValueError, match="group 9 has 1 rows"):
        grouped_kmeans(points[:3], np.array([1, 1, 9]))


@pytest.mark.parametrize("method", CLUSTER_METHODS)
def test_every_method_separates_two_clear_blobs(method: str) -> None:
    points, group, state = _blobs(groups=3, per_group=14, dim=10, separation=6.0)
    clusterer = Clusterer(method, pca_components=4, n_init=2)
    assert hungarian_accuracy(state[:14], clusterer.fit_predict(points[:14], 2)) == 1.0
    labels = clusterer.fit_predict_groups(points, group, 2)
    assert all(hungarian_accuracy(state[group == g], labels[group == g]) == 1.0 for g in range(3))


def test_clusterer_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="kmeans, agglomerative"):
        Clusterer("dbscan")
    with pytest.raises(ValueError, match="positive"):
        Clusterer(n_init=0)
