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
