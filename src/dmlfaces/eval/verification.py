"""1:1 verification metrics: template descriptors, pair scores and TAR at fixed FAR."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unit_rows(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """(N, D) rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, eps)


def mean_template_descriptors(features: np.ndarray, template_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average the unit crop features of each template, without a Python loop over templates.

    Args:
        features: (N, D) crop features.
        template_ids: (N,) template id of each crop.
    Returns:
        templates: (T,) sorted unique template ids; descriptors: (T, D) unit descriptors.
    """
    templates, index = np.unique(template_ids, return_inverse=True)
    sums = np.zeros((len(templates), features.shape[1]), dtype=np.float64)
    np.add.at(sums, index, unit_rows(features.astype(np.float64)))
    return templates, unit_rows(sums)


def pair_scores(templates: np.ndarray, descriptors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(P,) cosine scores of template pairs; ``pairs`` is (P, 2) template ids, ``descriptors`` unit rows."""
    position = np.searchsorted(templates, pairs)
    if np.any(templates[np.minimum(position, len(templates) - 1)] != pairs):
        raise KeyError("a pair names a template without a descriptor")
    return np.einsum("pd,pd->p", descriptors[position[:, 0]], descriptors[position[:, 1]])


def tar_at_far(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float]) -> dict[float, float]:
    """True accept rate at each target false accept rate, by the exact-threshold rule.

    For each target the threshold is the lowest one whose FAR does not exceed the target (a pair is
    accepted when its score is strictly above the threshold), and TAR is measured there. Only the
    few largest impostor scores are ordered, so no full sort is needed.

    Args:
        scores: (P,) similarity scores; labels: (P,) 1 genuine, 0 impostor.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    genuine, impostor = scores[labels], scores[~labels]
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError("tar_at_far needs both genuine and impostor pairs")
    result = {}
    for far in fars:
        allowed = int(np.floor(far * len(impostor)))  # false accepts the target permits
        if allowed >= len(impostor):
            threshold = -np.inf
        else:
            # The (allowed+1)-th largest impostor score: accepting strictly above it admits at most `allowed`.
            threshold = np.partition(impostor, len(impostor) - 1 - allowed)[len(impostor) - 1 - allowed]
        result[float(far)] = float(np.mean(genuine > threshold))
    return result


def single_image_pairs(
    subjects: np.ndarray, media: np.ndarray, n_genuine: int, n_impostor: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sample image pairs for single-image verification, the same for every method compared.

    Genuine pairs join two images of one subject from different media (frames of one clip would be
    near-duplicates); impostor pairs join images of two subjects.

    Args:
        subjects, media: (N,) subject and media id of each image.
    Returns:
        pairs (P, 2) image indices and labels (P,) int8, genuine first.
    """
    rng = np.random.default_rng([seed, 31337])
    n = len(subjects)
    genuine: list[np.ndarray] = []
    # Rejection sampling: draw candidate pairs in rounds, keep the valid ones.
    while sum(len(g) for g in genuine) < n_genuine:
        a = rng.integers(0, n, 4 * n_genuine)
        order = np.argsort(subjects, kind="stable")
        starts = np.searchsorted(subjects[order], subjects[a], side="left")
        ends = np.searchsorted(subjects[order], subjects[a], side="right")
        b = order[starts + (rng.random(len(a)) * (ends - starts)).astype(int)]
        keep = media[a] != media[b]
        genuine.append(np.stack([a[keep], b[keep]], axis=1))
    genuine_pairs = np.concatenate(genuine)[:n_genuine]
    a = rng.integers(0, n, 2 * n_impostor)
    b = rng.integers(0, n, 2 * n_impostor)
    keep = subjects[a] != subjects[b]
    impostor_pairs = np.stack([a[keep], b[keep]], axis=1)[:n_impostor]
    pairs = np.concatenate([genuine_pairs, impostor_pairs])
    labels = np.concatenate([np.ones(len(genuine_pairs), np.int8), np.zeros(len(impostor_pairs), np.int8)])
    return pairs, labels
