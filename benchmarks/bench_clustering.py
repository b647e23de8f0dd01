"""Batched per-identity k-means against scikit-learn's KMeans looped over identities (Study A, intra-class).

Data, at CelebA's scale: 10,177 identities with 10 to 35 images each (about 20), 512-d unit float32
embeddings: an identity centre, isotropic noise and a planted two-state attribute along one direction,
whose strength varies by identity so that per-identity accuracies spread from chance to 1.
Ours: ``grouped_kmeans`` (k = 2, ``n_init`` restarts). Reference, in the same run: ``KMeans(2, n_init,
random_state)`` fitted on each identity in a loop. Both run on one thread: the problems are too small
for threads to pay, and the machines these run on are shared. Accuracy: Hungarian-matched, per identity
with both states, averaged over identities.
Last line: JSON with ``ours_s``, ``reference_s``, ``speedup`` and ``mean_acc_diff`` (ours - reference).

    python benchmarks/bench_clustering.py [--scale 1.0] [--n-init 10]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from dmlfaces.eval.clustering import grouped_kmeans, grouped_partition_scores

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of CelebA's 10,177 identities")
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
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
    }
    print(f"{identities} identities, {len(groups)} images: batched {ours_s:.2f} s, "
          f"scikit-learn per identity {reference_s:.2f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
