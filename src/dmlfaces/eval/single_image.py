"""Chapter 02's measures of a backbone on single images: 1:1 verification of crop pairs, and how its feature
norm follows the ground-truth quality and each degradation.

One crop is one sample here (templates reuse media, so a protocol lists some crops several times: each distinct
crop counts once). Every method compared scores the same pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from dmlfaces.eval.roc import REPORTED_FARS, tar_at_far
from dmlfaces.eval.verification import single_image_pairs


def single_image_tars(
    features: Mapping[str, np.ndarray],
    subjects: np.ndarray,
    media: np.ndarray,
    genuine_pairs: int,
    impostor_pairs: int,
    seed: int,
    fars: Sequence[float] = REPORTED_FARS,
) -> tuple[dict[str, dict[float, float]], dict[str, np.ndarray], np.ndarray]:
    """TAR at each FAR of every method's unit features on the same sampled crop pairs (``single_image_pairs``:
    genuine pairs from different media).

    Args:
        features: method -> (N, D) unit features of the N crops; subjects, media: (N,) ids of each crop.
    Returns:
        TAR per method and FAR, the (P,) cosine scores per method, and the (P,) pair labels (1 genuine).
    """
    pairs, labels = single_image_pairs(subjects, media, genuine_pairs, impostor_pairs, seed)
    scores = {name: np.einsum("pd,pd->p", rows[pairs[:, 0]], rows[pairs[:, 1]]) for name, rows in features.items()}
    return {name: tar_at_far(values, labels, fars) for name, values in scores.items()}, scores, labels


def spearman(values: pd.Series | np.ndarray, other: pd.Series | np.ndarray) -> float | None:
    """Spearman's rho of two (N,) series; None where either is constant (rho is undefined there)."""
    if pd.Series(values).nunique() < 2 or pd.Series(other).nunique() < 2:
        return None
    return float(spearmanr(values, other).statistic)


def spearman_by_degradation(norms: np.ndarray, truth: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """Per degradation of ``weights`` (its weight in the quality score): rho of the feature norm and of the
    quality with the negated severity (so that a positive rho means "falls as the degradation grows").

    Args:
        norms: (N,) feature norms; truth: the N crops' ground truth (``severity_<name>`` and ``quality`` columns).
    Returns:
        rows by degradation (index ``degradation``), columns weight, norm, quality; missing (NaN) where no crop varies.
    """
    return pd.DataFrame(
        {
            name: {
                "weight": weight,
                "norm": spearman(norms, -truth[f"severity_{name}"]),
                "quality": spearman(truth["quality"], -truth[f"severity_{name}"]),
            }
            for name, weight in weights.items()
        }
    ).T.rename_axis("degradation")
