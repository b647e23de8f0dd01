"""Clustering engine of the attribute study (Study A): clusterers, batched per-identity k-means, scores.

The study clusters embeddings without labels and asks whether the clusters line up with attributes.
This module holds the attribute-free part:

* :class:`Clusterer`: scikit-learn's k-means (default), agglomerative (Ward), Gaussian mixture, spectral
  and HDBSCAN, with optional PCA first, fixed seeds and restarts;
* :func:`grouped_kmeans`: thousands of small k-means problems (one per identity) solved together in
  tensor operations, fast enough for CelebA's 10,177 identities and as good as scikit-learn per problem;
* scores: Hungarian-matched accuracy, majority-class rate, NMI and ARI, per problem and per group, and
  a cross-validated linear probe as the supervised upper bound.

Its length is the engine's: the clusterers, the batched per-identity k-means and the scores share the
same (identity, image) batching, which splitting would have to pass between modules.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.base import ClusterMixin
from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

CLUSTER_METHODS: tuple[str, ...] = ("kmeans", "agglomerative", "gmm", "spectral", "hdbscan")
NOISE = -1  # HDBSCAN's label for points in no cluster


# ---------------------------------------------------------------------------------------------- scores


def _matched(table: np.ndarray) -> int:
    """Items on the Hungarian-matched diagonal of a (classes, clusters) contingency table."""
    rows, cols = linear_sum_assignment(table, maximize=True)
    return int(table[rows, cols].sum())


def hungarian_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Fraction of the (N,) items whose cluster, matched one-to-one to a class by the Hungarian method, is theirs.

    Noise points (label -1) and clusters left over when there are more clusters than classes count as errors.
    """
    predicted = np.asarray(predicted)
    table = contingency_matrix(truth, predicted)
    if (predicted == NOISE).any():
        table = table[:, 1:]  # columns follow the sorted labels, so noise is column 0
    return _matched(table) / len(predicted)


def majority_rate(truth: np.ndarray) -> float:
    """Share of the most frequent class among (N,) labels: the accuracy of always guessing it (chance level)."""
    counts = np.unique(truth, return_counts=True)[1]
    return float(counts.max() / counts.sum())


def partition_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Hungarian accuracy, majority-class rate, NMI and ARI of one (N,) clustering against (N,) classes."""
    return {
        "accuracy": hungarian_accuracy(truth, predicted),
        "majority_rate": majority_rate(truth),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
        "ari": float(adjusted_rand_score(truth, predicted)),
    }


def group_tables(group: np.ndarray, truth: np.ndarray, predicted: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(G, T, P) contingency tables from (N,) codes: group in [0, G), truth in [0, T), predicted in [0, P)."""
    cells = (group * shape[1] + truth) * shape[2] + predicted
    return np.bincount(cells, minlength=int(np.prod(shape))).reshape(shape)


_MAX_INJECTIONS = 720  # beyond this many one-to-one matchings per table, the Hungarian method per distinct table


def _matched_many(tables: np.ndarray) -> np.ndarray:
    """(G,) items on the Hungarian-matched diagonal of each (G, T, P) contingency table.

    With non-negative counts the Hungarian optimum is the best one-to-one matching of the smaller side into the
    larger; for the few classes and clusters of this study (2 clusters, up to 5 states: 20 matchings) trying
    them all at once over every table beats one ``linear_sum_assignment`` call per table.
    """
    if tables.shape[1] > tables.shape[2]:
        tables = tables.transpose(0, 2, 1)
    small, large = tables.shape[1:]
    if small == 0:
        return np.zeros(len(tables), dtype=np.int64)
    if math.perm(large, small) > _MAX_INJECTIONS:
        distinct, inverse = np.unique(tables.reshape(len(tables), -1), axis=0, return_inverse=True)
        return np.array([_matched(t.reshape(small, large)) for t in distinct], dtype=np.int64)[inverse.reshape(-1)]
    rows = np.arange(small)
    return np.max([tables[:, rows, list(columns)].sum(1) for columns in itertools.permutations(range(large), small)], axis=0)


def _entropy(counts: np.ndarray, total: np.ndarray) -> np.ndarray:
    """(G,) entropy in nats of (G, K) label counts with (G,) totals, as scikit-learn's ``entropy``."""
    safe = np.where(counts > 0, counts, 1).astype(np.float64)
    return -np.where(counts > 0, counts / total[:, None] * (np.log(safe) - np.log(total)[:, None]), 0.0).sum(1)


def table_scores(tables: np.ndarray, noise_column: bool = False) -> dict[str, np.ndarray]:
    """Hungarian accuracy, majority-class rate, NMI and ARI of (G, T, P) contingency tables (classes x clusters), at once.

    The arithmetic of scikit-learn's ``normalized_mutual_info_score`` (arithmetic normalisation) and
    ``adjusted_rand_score``, with their special cases, term for term on every table; equal to them up to the
    order of float additions (bench_clustering reports the largest difference). Empty classes and clusters
    of a table count for nothing, as labels absent from one group. ``noise_column``: column 0 holds noise
    points (HDBSCAN's -1), never matched, but a cluster for NMI and ARI as in scikit-learn.

    Returns:
        (G,) float64 arrays ``accuracy``, ``majority_rate``, ``nmi``, ``ari``.
    """
    tables = np.asarray(tables, dtype=np.int64)
    total = tables.sum((1, 2))
    classes, clusters = tables.sum(2), tables.sum(1)
    n = total.astype(np.float64)
    matched = _matched_many(tables[:, :, 1:] if noise_column else tables)

    # Mutual information, each term as scikit-learn's mutual_info_score writes it.
    outer = classes[:, :, None] * clusters[:, None, :]
    present = tables > 0
    safe = np.where(present, tables, 1).astype(np.float64)
    share = tables / n[:, None, None]
    log_outer = -np.log(np.where(present, outer, 1).astype(np.float64)) + 2 * np.log(n)[:, None, None]
    terms = share * (np.log(safe) - np.log(n)[:, None, None]) + share * log_outer
    terms = np.where(present & (np.abs(terms) >= np.finfo(np.float64).eps), terms, 0.0)
    one_class, one_cluster = (classes > 0).sum(1) == 1, (clusters > 0).sum(1) == 1
    mi = np.where(one_class | one_cluster, 0.0, np.clip(terms.sum((1, 2)), 0.0, None))
    normaliser = np.maximum((_entropy(classes, n) + _entropy(clusters, n)) / 2, np.finfo(np.float64).eps)
    nmi = np.where(one_class & one_cluster, 1.0, np.where(mi == 0, 0.0, mi / normaliser))

    # Adjusted Rand index from the pair confusion matrix.
    squares = (tables.astype(np.float64) ** 2).sum((1, 2))
    tp = squares - n
    fp = (clusters.astype(np.float64) ** 2).sum(1) - squares
    fn = (classes.astype(np.float64) ** 2).sum(1) - squares
    tn = n**2 - fp - fn - squares
    with np.errstate(invalid="ignore", divide="ignore"):
        ari = np.where((fn == 0) & (fp == 0), 1.0, 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)))
    return {"accuracy": matched / n, "majority_rate": classes.max(1) / n, "nmi": nmi, "ari": ari}


def _shuffled_within(codes: np.ndarray, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) codes permuted at random inside each group."""
    in_order = np.argsort(group, kind="stable")
    shuffled = np.lexsort((rng.random(len(group)), group))  # same group blocks, random order inside each
    out = np.empty_like(codes)
    out[in_order] = codes[shuffled]
    return out


def grouped_partition_scores(
    truth: np.ndarray,
    predicted: np.ndarray,
    groups: np.ndarray,
    *,
    chance_repeats: int = 10,
    seed: int = 0,
    chance_nmi: bool = False,
) -> pd.DataFrame:
    """Per-group scores of a clustering done inside each group (one identity's images), all groups at once.

    ``chance_accuracy`` is the mean Hungarian accuracy after shuffling the classes inside the group
    ``chance_repeats`` times: what clusters of those sizes reach by luck, which on a handful of images differs
    from the majority-class rate; ``chance_nmi`` (when asked) the mean NMI of the same shuffles.

    Args:
        truth, predicted, groups: (N,) class, cluster (-1 noise) and group of each item.
    Returns:
        one row per group id (sorted): images, accuracy, majority_rate, nmi, ari, chance_accuracy[, chance_nmi].
    """
    ids, group = np.unique(groups, return_inverse=True)
    classes, truth_code = np.unique(truth, return_inverse=True)
    clusters, predicted_code = np.unique(predicted, return_inverse=True)
    group, truth_code, predicted_code = group.reshape(-1), truth_code.reshape(-1), predicted_code.reshape(-1)
    shape = (len(ids), len(classes), len(clusters))
    noise = bool(clusters[0] == NOISE)  # the noise column is never matched
    images = np.bincount(group, minlength=len(ids))

    frame = pd.DataFrame(
        table_scores(group_tables(group, truth_code, predicted_code, shape), noise), index=pd.Index(ids, name="group")
    )
    frame.insert(0, "images", images)

    rng = np.random.default_rng([seed, 7])
    matched, nmi = np.zeros(len(ids)), np.zeros(len(ids))
    for _ in range(chance_repeats):
        shuffled = table_scores(group_tables(group, _shuffled_within(truth_code, group, rng), predicted_code, shape), noise)
        matched += shuffled["accuracy"]
        nmi += shuffled["nmi"]
    frame["chance_accuracy"] = matched / chance_repeats if chance_repeats else np.nan
    if chance_nmi:
        frame["chance_nmi"] = nmi / chance_repeats if chance_repeats else np.nan
    return frame


def probe_accuracy(
    features: np.ndarray, truth: np.ndarray, groups: np.ndarray | None = None, *, folds: int = 5, seed: int = 0
) -> float | None:
    """Cross-validated accuracy of a linear probe (standardised features, logistic regression).

    The supervised upper bound for a clustering. With ``groups`` the folds split by group (GroupKFold),
    so the probe is scored on identities it never saw; without, folds are stratified by class.

    Args:
        features: (N, D); truth: (N,) classes; groups: optional (N,) group ids.
    Returns:
        the mean accuracy over folds, or None when a class (or the groups) cannot fill two folds.
    """
    counts = np.unique(truth, return_counts=True)[1]
    if groups is None:
        splits = min(folds, int(counts.min()))
        cv = StratifiedKFold(splits, shuffle=True, random_state=seed) if splits >= 2 else None
    else:
        splits = min(folds, len(np.unique(groups)))
        cv = GroupKFold(splits) if splits >= 2 else None
    if len(counts) < 2 or cv is None:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return float(cross_val_score(model, features, truth, groups=groups, cv=cv).mean())


# -------------------------------------------------------------------------------------- batched k-means


@dataclass(frozen=True, eq=False)
class GroupedKMeans:
    """Result of :func:`grouped_kmeans`: labels (N,) in [0, k), and per sorted group id (G,) the best inertia."""

    labels: np.ndarray
    groups: np.ndarray
    inertia: np.ndarray


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of uint64 arrays (the wrap-around of the products is intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _keyed_uniforms(seed: int, keys: np.ndarray, stream: int, count: int) -> np.ndarray:
    """(len(keys), count) uniforms in [0, 1) that depend on (seed, key, stream, column) alone.

    Each problem draws from its own stream, keyed by its group id, so its clustering is the same whichever
    other problems share its batch, and in whatever order.
    """
    state = _splitmix(np.full(len(keys), seed, dtype=np.uint64))
    state = _splitmix(_splitmix(state ^ np.asarray(keys, dtype=np.int64).view(np.uint64)) ^ np.uint64(stream))
    bits = _splitmix(state[:, None] ^ np.arange(count, dtype=np.uint64))
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _centred_gram(points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, M, M) float64 Gram matrices of each problem's (M, D) points after subtracting their mean.

    Lloyd's iterations need only inner products, so each problem shrinks from (M, D) to (M, M); centring
    first (as scikit-learn does) keeps the float32 products accurate for the small distances inside one
    identity. Rows and columns of padding are zero.
    """
    weight = mask.to(points.dtype) / mask.sum(1, keepdim=True)
    centred = points - torch.bmm(weight.unsqueeze(1), points)  # the mean as a (1, M) x (M, D) product per problem
    return torch.bmm(centred, centred.transpose(1, 2)).double() * (mask.unsqueeze(2) & mask.unsqueeze(1))


def _nearest(dist: torch.Tensor) -> torch.Tensor:
    """(B, M) index of the nearest of k centres from (B, k, M) distances, the first on ties.

    A loop over the few centres: torch's argmin over an axis of length k is an order of magnitude slower.
    """
    labels = torch.zeros(dist[:, 0].shape, dtype=torch.long)
    best = dist[:, 0]
    for cluster in range(1, dist.shape[1]):
        closer = dist[:, cluster] < best
        labels[closer] = cluster
        best = torch.where(closer, dist[:, cluster], best)
    return labels


def _own_distance(dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, M) distance of each point to its own cluster's centre, from (B, k, M) distances."""
    return dist.gather(1, labels.unsqueeze(1)).squeeze(1)


def _fill_empty(labels: torch.Tensor, dist: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Give each empty cluster the point farthest from its own centre, as scikit-learn does."""
    for cluster in range(k):
        empty = ~((labels == cluster) & mask).any(1)
        if empty.any():
            own = _own_distance(dist, labels).masked_fill(~mask, -torch.inf)
            rows = empty.nonzero().squeeze(1)
            labels[rows, own[rows].argmax(1)] = cluster
    return labels


def _kmeans_plus_plus(pair: torch.Tensor, count: torch.Tensor, draws: torch.Tensor, k: int, trials: int) -> torch.Tensor:
    """(B, k) point indices: greedy k-means++ as in scikit-learn (``trials`` candidates per centre).

    Args:
        pair: (B, M, M) squared distances, zero at padding; count: (B,) points per problem;
        draws: (B, 1 + (k - 1) * trials) uniforms.
    """
    batch = torch.arange(len(count))
    first = torch.minimum((draws[:, 0] * count).long(), count - 1)
    centres, closest = [first], pair[batch, first]
    for c in range(1, k):
        targets = draws[:, 1 + (c - 1) * trials : 1 + c * trials] * closest.sum(1, keepdim=True)
        candidates = torch.minimum(torch.searchsorted(closest.cumsum(1), targets), (count - 1)[:, None])
        reach = torch.minimum(closest[:, None, :], pair[batch[:, None], candidates])  # (B, trials, M)
        best = reach.sum(-1).argmin(1)
        centres.append(candidates[batch, best])
        closest = reach[batch, best]
    return torch.stack(centres, 1)


def _lloyd(
    gram: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, k: int, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's iterations on (B, M, M) Gram matrices from (B, M) labels, until no label changes.

    Centres stay implicit: with w_c the (M,) weights of cluster c's mean, |x_i - mu_c|^2 =
    G_ii - 2 (G w_c)_i + w_c' G w_c. Returns the labels and (B,) inertia.
    """
    sq = gram.diagonal(dim1=1, dim2=2).unsqueeze(1)
    cluster = torch.arange(k)[:, None]
    for _ in range(max_iter):
        member = ((labels.unsqueeze(1) == cluster) & mask.unsqueeze(1)).double()
        weights = member / member.sum(-1, keepdim=True).clamp(min=1)  # (B, k, M)
        towards = torch.bmm(weights, gram)  # (B, k, M): mu_c . x_i (the Gram matrix is symmetric)
        dist = sq - 2 * towards + (weights * towards).sum(-1, keepdim=True)
        new = _fill_empty(_nearest(dist), dist, mask, k)
        if torch.equal(new[mask], labels[mask]):
            break
        labels = new
    return labels, (_own_distance(dist, labels).clamp(min=0) * mask).sum(1)


def _kmeans_batch(
    gram: torch.Tensor, mask: torch.Tensor, keys: np.ndarray, k: int, n_init: int, seed: int, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best of ``n_init`` k-means++ restarts per problem: (B, M) labels and (B,) inertia."""
    count = mask.sum(1)
    sq = gram.diagonal(dim1=1, dim2=2)
    pair = (sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * gram).clamp(min=0) * mask.unsqueeze(1)
    batch = torch.arange(len(count))[:, None]
    trials = 2 + int(np.log(k))
    best_labels = torch.zeros(mask.shape, dtype=torch.long)
    best_inertia = torch.full((len(count),), torch.inf, dtype=torch.float64)
    for restart in range(n_init):
        draws = torch.from_numpy(_keyed_uniforms(seed, keys, restart, 1 + (k - 1) * trials))
        centres = _kmeans_plus_plus(pair, count, draws, k, trials)
        dist = pair[batch, centres]  # (B, k, M): each initial centre to each point
        labels, inertia = _lloyd(gram, mask, _fill_empty(_nearest(dist), dist, mask, k), k, max_iter)
        better = inertia < best_inertia  # strictly: the earliest of equal restarts wins, as in scikit-learn
        best_labels = torch.where(better[:, None], labels, best_labels)
        best_inertia = torch.where(better, inertia, best_inertia)
    return best_labels, best_inertia


def _check_group_sizes(ids: np.ndarray, sizes: np.ndarray, k: int) -> None:
    if (sizes < k).any():
        small = int(np.argmax(sizes < k))
        raise ValueError(f"group {ids[small]} has {sizes[small]} rows: clustering into k={k} needs at least {k}")


def grouped_kmeans(
    features: np.ndarray,
    groups: np.ndarray,
    k: int = 2,
    *,
    n_init: int = 10,
    seed: int = 0,
    max_iter: int = 300,
    batch_size: int = 2048,
) -> GroupedKMeans:
    """k-means inside each group of rows, all groups at once.

    Groups are sorted by size and taken ``batch_size`` at a time into a padded (B, M, D) array with a
    (B, M) mask. Every restart seeds with greedy k-means++ (scikit-learn's rule, 2 + ln k candidates per
    centre; uniforms keyed by (seed, group id, restart)) and runs Lloyd's iterations on each group's
    (M, M) Gram matrix until no label changes; the restart with the lowest inertia is kept per group.

    Args:
        features: (N, D) rows; groups: (N,) group id of each row, every group with at least k rows.
            Integer ids key the random streams; other ids are replaced by their sorted position.
    """
    features = np.asarray(features, dtype=np.float32)
    ids, group, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    _check_group_sizes(ids, sizes, k)
    keys = ids if ids.dtype.kind in "iu" else np.arange(len(ids))
    rows_by_group = np.argsort(group, kind="stable")
    starts = np.cumsum(sizes) - sizes
    labels = np.empty(len(features), dtype=np.int64)
    inertia = np.empty(len(ids))
    by_size = np.argsort(sizes, kind="stable")
    for start in range(0, len(ids), batch_size):
        chunk = by_size[start : start + batch_size]
        slot = np.arange(sizes[chunk].max())
        mask = slot < sizes[chunk][:, None]
        rows = rows_by_group[np.minimum(starts[chunk][:, None] + slot, len(features) - 1)]  # (B, M); padding masked
        mask_t = torch.from_numpy(mask)
        gram = _centred_gram(torch.from_numpy(features[rows]), mask_t)
        chunk_labels, chunk_inertia = _kmeans_batch(gram, mask_t, keys[chunk], k, n_init, seed, max_iter)
        labels[rows[mask]] = chunk_labels.numpy()[mask]
        inertia[chunk] = chunk_inertia.numpy()
    return GroupedKMeans(labels=labels, groups=ids, inertia=inertia)


# ------------------------------------------------------------------------------------------ clusterers


def _group_rows(groups: np.ndarray) -> Iterator[np.ndarray]:
    """Row indices of each group, in sorted group order."""
    _, group, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    yield from np.split(np.argsort(group, kind="stable"), np.cumsum(sizes)[:-1])


@dataclass(frozen=True)
class Clusterer:
    """How to cluster: a method of ``CLUSTER_METHODS``, optional PCA first, restarts and the seed.

    HDBSCAN chooses its own number of clusters and may label points noise (-1); the others make k.
    """

    method: str = "kmeans"
    pca_components: int | None = None
    n_init: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in CLUSTER_METHODS:
            raise ValueError(f"unknown clustering method {self.method!r}; choose one of {', '.join(CLUSTER_METHODS)}")
        if self.n_init < 1 or (self.pca_components is not None and self.pca_components < 1):
            raise ValueError(f"n_init and pca_components must be positive, got {self.n_init}, {self.pca_components}")

    def reduce(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features projected on their first ``pca_components`` principal axes (unchanged without PCA)."""
        if self.pca_components is None:
            return np.asarray(features)
        return PCA(min(self.pca_components, *np.shape(features)), random_state=self.seed).fit_transform(features)

    def _estimator(self, k: int, n: int) -> ClusterMixin | GaussianMixture:
        if self.method == "kmeans":
            return KMeans(k, n_init=self.n_init, random_state=self.seed)
        if self.method == "agglomerative":
            return AgglomerativeClustering(k, linkage="ward")
        if self.method == "gmm":
            # Diagonal covariances: a full (D, D) one is singular with fewer points than dimensions.
            return GaussianMixture(k, covariance_type="diag", n_init=self.n_init, random_state=self.seed)
        if self.method == "spectral":
            # A nearest-neighbour graph needs no kernel width, which would depend on the embedding's scale.
            return SpectralClustering(
                k, affinity="nearest_neighbors", n_neighbors=min(10, n - 1), n_init=self.n_init, random_state=self.seed
            )
        # scikit-learn's default minimum cluster size (5), shrunk so that a small group can still split in two.
        return HDBSCAN(min_cluster_size=max(2, min(5, n // 2)), copy=True)

    def fit_predict(self, features: np.ndarray, k: int) -> np.ndarray:
        """(N,) cluster labels of (N, D) features."""
        points = self.reduce(features)
        return self._estimator(k, len(points)).fit_predict(points)

    def fit_predict_groups(self, features: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
        """(N,) labels from clustering each group of rows on its own (PCA, when set, is fitted once on all rows).

        k-means runs batched (:func:`grouped_kmeans`); the other methods loop over the groups.
        """
        points = self.reduce(features)
        if self.method == "kmeans":
            return grouped_kmeans(points, groups, k, n_init=self.n_init, seed=self.seed).labels
        ids, sizes = np.unique(groups, return_counts=True)
        _check_group_sizes(ids, sizes, k)
        labels = np.empty(len(points), dtype=np.int64)
        for rows in tqdm(_group_rows(groups), total=len(ids), desc=self.method, disable=None):
            labels[rows] = self._estimator(k, len(rows)).fit_predict(points[rows])
        return labels
