"""Study A at CelebA scale: batched per-identity k-means against scikit-learn's KMeans looped over identities, and
the vectorised per-identity scores against the per-table loop they replaced.

Data, at CelebA's scale: 10,177 identities with 10 to 35 images each (about 20), 512-d unit float32
embeddings: an identity centre, isotropic noise and a planted two-state attribute along one direction,
whose strength varies by identity so that per-identity accuracies spread from chance to 1.
Ours: ``grouped_kmeans`` (k = 2, ``n_init`` restarts). Reference, in the same run: ``KMeans(2, n_init,
random_state)`` fitted on each identity in a loop. Both run on one thread: the problems are too small
for threads to pay, and the machines these run on are shared. Accuracy: Hungarian-matched, per identity
with both states, averaged over identities.

Scores: each identity's split against ``--factors`` ground-truth-like factors of 2 to 5 states (as the
factor analysis scores it: accuracy, NMI, ARI, and the chance accuracy and NMI of 10 shuffles). Ours:
``grouped_partition_scores`` (every contingency table scored at once in array arithmetic). Reference, in the
same run: the implementation before it, kept here: scikit-learn's scores once per distinct table and the
Hungarian method once per distinct shuffled table (with the chance NMI added the same way), on the first
``--reference-factors`` factors only (minutes each at full scale); the speedup is per factor. One thread.
The linear probe (20,000 images, 5 folds: ``probe_max_images``) is timed beside them for its share.
Last line: JSON with ``ours_s``, ``reference_s``, ``speedup`` and ``mean_acc_diff`` (k-means: ours - reference),
``scores_ours_s``, ``scores_reference_s``, ``scores_speedup``, ``scores_max_abs_diff`` and ``probe_s``.

    python benchmarks/bench_clustering.py [--scale 1.0] [--n-init 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from threadpoolctl import threadpool_limits

from dmlfaces.eval.clustering import (
    NOISE,
    _matched,
    _shuffled_within,
    group_tables,
    grouped_kmeans,
    grouped_partition_scores,
    partition_scores,
    probe_accuracy,
)

CELEBA_IDENTITIES = 10_177
DIM = 512


def planted_embeddings(identities: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 512) unit float32 embeddings, (N,) identity and (N,) bool attribute state per image."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(np.rint(rng.normal(20, 6, identities)), 10, 35).astype(np.int64)
    groups = np.repeat(np.arange(identities), sizes)
    direction = rng.normal(size=DIM)
    direction /= np.linalg.norm(direction)
    states = rng.random(len(groups)) < rng.uniform(0.2, 0.8, identities)[groups]
    strength = rng.uniform(0.0, 0.25, identities)[groups, None]
    points = (3 * rng.normal(size=(identities, DIM))[groups] + rng.normal(size=(len(groups), DIM))) / np.sqrt(DIM)
    points += np.where(states, 1.0, -1.0)[:, None] * strength * direction
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), groups, states


def sklearn_per_identity(features: np.ndarray, groups: np.ndarray, n_init: int, seed: int) -> np.ndarray:
    """(N,) labels from one scikit-learn KMeans per identity."""
    labels = np.empty(len(groups), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])  # groups are contiguous here
    for start, stop in zip(starts, np.r_[starts[1:], len(groups)]):
        labels[start:stop] = KMeans(2, n_init=n_init, random_state=seed).fit_predict(features[start:stop])
    return labels


def _canonical(table: np.ndarray, fixed: int) -> tuple[int, ...]:
    """The smallest relabelling of a (T, P) table (columns after the first ``fixed`` permuted); as it was."""
    rows, cols = itertools.permutations(range(len(table))), itertools.permutations(range(fixed, table.shape[1]))
    if math.factorial(len(table)) * math.factorial(table.shape[1] - fixed) > 24:
        return tuple(table.ravel())
    return min(tuple(table[np.ix_(r, (*range(fixed), *c))].ravel()) for r, c in itertools.product(rows, list(cols)))


def per_table_scores(
    truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray, chance_repeats: int = 10, seed: int = 0
) -> pd.DataFrame:
    """The reference: ``grouped_partition_scores`` before vectorising, scikit-learn per distinct table."""
    ids, group = np.unique(groups, return_inverse=True)
    classes, truth_code = np.unique(truth, return_inverse=True)
    clusters, predicted_code = np.unique(predicted, return_inverse=True)
    shape = (len(ids), len(classes), len(clusters))
    first = int(clusters[0] == NOISE)
    images = np.bincount(group, minlength=len(ids))
    raw = group_tables(group, truth_code, predicted_code, shape)
    tables, inverse = np.unique(np.array([_canonical(t, first) for t in raw]), axis=0, return_inverse=True)
    scores = []
    for table in tables:
        cells = np.repeat(np.arange(table.size), table)
        scores.append(partition_scores(classes[cells // shape[2]], clusters[cells % shape[2]]))
    frame = pd.DataFrame(scores).iloc[inverse.reshape(-1)].set_axis(pd.Index(ids, name="group"))
    frame.insert(0, "images", images)
    rng = np.random.default_rng([seed, 7])
    matched, nmi = np.zeros(len(ids)), np.zeros(len(ids))
    for _ in range(chance_repeats):
        shuffled = group_tables(group, _shuffled_within(truth_code, group, rng), predicted_code, shape)
        tables, inverse = np.unique(shuffled.reshape(len(ids), -1), axis=0, return_inverse=True)
        matched += np.array([_matched(t.reshape(shape[1:])[:, first:]) for t in tables])[inverse.reshape(-1)]
        per_nmi = []
        for table in tables:
            cells = np.repeat(np.arange(table.size), table)
            per_nmi.append(normalized_mutual_info_score(cells // shape[2], cells % shape[2]))
        nmi += np.array(per_nmi)[inverse.reshape(-1)]
    frame["chance_accuracy"] = matched / chance_repeats / images
    frame["chance_nmi"] = nmi / chance_repeats
    return frame


def planted_factors(groups: np.ndarray, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` (N,) factors of 2 to 5 states, each image's state drawn with identity-specific odds."""
    rng = np.random.default_rng([seed, 3])
    factors = []
    for index in range(count):
        states = 2 + index % 4
        odds = rng.dirichlet(np.ones(states), groups.max() + 1)[groups]
        factors.append((rng.random(len(groups))[:, None] > odds.cumsum(1)).sum(1).clip(0, states - 1))
    return factors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of CelebA's 10,177 identities")
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=int, default=12, help="factors each identity's split is scored against")
    parser.add_argument(
        "--reference-factors",
        type=int,
        default=1,
        help="of those, how many the reference scores too (it takes minutes per factor at full scale)",
    )
    args = parser.parse_args()
    identities = max(1, round(CELEBA_IDENTITIES * args.scale))
    features, groups, states = planted_embeddings(identities, args.seed)
    torch.set_num_threads(1)

    start = time.perf_counter()
    ours = grouped_kmeans(features, groups, 2, n_init=args.n_init, seed=args.seed).labels
    ours_s = time.perf_counter() - start
    with threadpool_limits(1):
        start = time.perf_counter()
        reference = sklearn_per_identity(features, groups, args.n_init, args.seed)
        reference_s = time.perf_counter() - start

    ours_scores = grouped_partition_scores(states, ours, groups, chance_repeats=0)
    reference_scores = grouped_partition_scores(states, reference, groups, chance_repeats=0)
    both = (ours_scores["majority_rate"] < 1).to_numpy()  # identities showing both states
    ours_acc, reference_acc = ours_scores["accuracy"][both], reference_scores["accuracy"][both]
    factors = planted_factors(groups, args.factors, args.seed)
    with threadpool_limits(1):
        start = time.perf_counter()
        ours_tables = [grouped_partition_scores(f, ours, groups, seed=args.seed, chance_nmi=True) for f in factors]
        scores_ours_s = time.perf_counter() - start
        start = time.perf_counter()
        reference_tables = [per_table_scores(f, ours, groups, seed=args.seed) for f in factors[: args.reference_factors]]
        scores_reference_s = time.perf_counter() - start
        probe_rows = np.random.default_rng(args.seed).choice(len(groups), min(20_000, len(groups)), replace=False)
        start = time.perf_counter()
        probe_accuracy(features[probe_rows], states[probe_rows], groups[probe_rows], folds=5, seed=args.seed)
        probe_s = time.perf_counter() - start
    columns = ["accuracy", "majority_rate", "nmi", "ari", "chance_accuracy", "chance_nmi"]
    scores_diff = max(
        float(np.abs(a[columns].to_numpy() - b[columns].to_numpy()).max()) for a, b in zip(ours_tables, reference_tables)
    )

    result = {
        "identities": identities,
        "images": len(groups),
        "scored_identities": int(both.sum()),
        "dim": DIM,
        "n_init": args.n_init,
        "threads": 1,
        "ours_s": round(ours_s, 3),
        "reference_s": round(reference_s, 3),
        "speedup": round(reference_s / ours_s, 1),
        "ours_mean_acc": round(float(ours_acc.mean()), 4),
        "reference_mean_acc": round(float(reference_acc.mean()), 4),
        "acc_quartiles": [round(float(q), 3) for q in np.quantile(ours_acc, [0.25, 0.5, 0.75])],
        "mean_acc_diff": round(float((ours_acc - reference_acc).mean()), 4),
        "factors": args.factors,
        "reference_factors": args.reference_factors,
        "scores_ours_s": round(scores_ours_s, 3),
        "scores_reference_s": round(scores_reference_s, 3),
        # Per factor: the reference scores only the first --reference-factors of them.
        "scores_speedup": round(scores_reference_s / args.reference_factors / (scores_ours_s / args.factors), 1),
        "scores_max_abs_diff": scores_diff,
        "probe_s": round(probe_s, 3),
    }
    print(f"{identities} identities, {len(groups)} images: batched {ours_s:.2f} s, scikit-learn per identity {reference_s:.2f} s")
    print(
        f"scores against {args.factors} factors: vectorised {scores_ours_s:.2f} s; per distinct table, "
        f"{args.reference_factors} of them: {scores_reference_s:.2f} s (largest difference {scores_diff:.2e}); "
        f"one probe {probe_s:.2f} s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
