"""Template descriptors: the crop features of one template become one unit vector.

A template is a set of crops (still images and video frames) of one subject. The insightface IJB
recipe (``recognition/_evaluation_/ijb/ijb_11.py``, ``image2template_feature``) averages the frames
of each media (one video) first, then sums over the media, so a 200-frame video weighs as much as
one still. Everything here is vectorised over crops: no Python loop over templates or media.

This float64 numpy form is the evaluator's rule, kept beside the torch baselines of
``dmlfaces.models.aggregators`` (which Study S compares on the trained aggregators' batches and devices) because
it must equal insightface's own evaluator float for float in every mode, which float32 batches cannot promise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

_CHUNK_ROWS = 4096  # crops per float64 working block: 4096 x 512 x 8 B = 16 MiB, reused by malloc
_NAMED = 5  # how many offending crops or templates an error message names


def unit_rows(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """(N, D) rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, eps)


def mean_template_descriptors(features: np.ndarray, template_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average the unit crop features of each template, without a Python loop over templates.

    Raises ValueError (see ``check_crop_features``) for NaN/inf or all-zero crop features.

    Args:
        features: (N, D) crop features.
        template_ids: (N,) template id of each crop.
    Returns:
        templates: (T,) sorted unique template ids; descriptors: (T, D) unit descriptors.
    """
    norms = check_crop_features(features)
    templates, index = np.unique(template_ids, return_inverse=True)
    sums = np.zeros((len(templates), features.shape[1]), dtype=np.float64)
    np.add.at(sums, index, features.astype(np.float64) / norms[:, None])
    return templates, unit_rows(sums)


def check_crop_features(features: np.ndarray, crop_names: Sequence[str] | np.ndarray | None = None) -> np.ndarray:
    """(N,) float64 L2 norms of the (N, D) crop features, after checking that each is finite and non-zero.

    Raises:
        ValueError: counting the crops whose feature has NaN/inf values or is all zeros and naming
            the first few (by ``crop_names`` (N,) when given, else by row number).
    """
    features = np.asarray(features)
    norms = np.empty(len(features))
    for start in range(0, len(features), _CHUNK_ROWS):
        block = features[start : start + _CHUNK_ROWS].astype(np.float64)
        norms[start : start + len(block)] = np.sqrt(np.einsum("nd,nd->n", block, block))
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        raise ValueError(_crop_problems(np.flatnonzero(bad), norms[bad], crop_names))
    return norms


def insightface_template_descriptors(
    features: np.ndarray,
    template_ids: np.ndarray,
    media_ids: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    normalise: bool = True,
    flip_halves: bool = False,
    crop_names: Sequence[str] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Template descriptors by the insightface IJB recipe.

    Per crop: its feature f (with ``flip_halves`` the (N, 2D) input holds the crop's and its mirror's
    features side by side and f is their sum, insightface's flip mode "F2"), divided by ||f|| when
    ``normalise`` (insightface's default "N1" keeps the norm as a quality weight: pass raw features and
    ``normalise=False``), times its weight (insightface "D1": the detector score). Per template: the
    mean of these over each media's crops, summed over the media, L2-normalised. Media are counted
    within a template, so one media id in two templates is two media.

    Args:
        features: (N, D), or (N, 2D) with ``flip_halves``; float32 is fine, sums run in float64.
        template_ids, media_ids: (N,) integer ids of each crop's template and media.
        weights: (N,) finite non-negative per-crop weights, or None for all ones.
        crop_names: (N,) names used in error messages (row numbers otherwise).
    Returns:
        templates: (T,) sorted unique template ids; descriptors: (T, D) float64 unit rows.
    Raises:
        ValueError: a crop feature is NaN/inf or all zeros, a weight is negative or not finite, or a
            template's weights are all zero; the message counts them and names the first few.
    """
    features = np.asarray(features)
    count = len(features)
    template_ids, media_ids = np.asarray(template_ids), np.asarray(media_ids)
    if features.ndim != 2 or template_ids.shape != (count,) or media_ids.shape != (count,):
        raise ValueError(
            f"features must be (N, D) with template_ids and media_ids (N,); got {features.shape},"
            f" {template_ids.shape} and {media_ids.shape}"
        )
    if flip_halves and features.shape[1] % 2:
        raise ValueError(f"flip_halves needs an even feature width, got {features.shape[1]}")
    if weights is None:
        weights = np.ones(count)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (count,):
        raise ValueError(f"weights must have shape ({count},), got {weights.shape}")
    bad_weight = ~np.isfinite(weights) | (weights < 0)
    if bad_weight.any():
        raise ValueError(
            f"{np.count_nonzero(bad_weight)} crop weights are negative or not finite:"
            f" {_name_rows(np.flatnonzero(bad_weight), crop_names)}"
        )

    templates, template_index = np.unique(template_ids, return_inverse=True)
    _, media_index = np.unique(media_ids, return_inverse=True)
    # One key per (template, media); its crop count turns the per-media sum into the per-media mean.
    key = template_index.astype(np.int64) * (int(media_index.max(initial=0)) + 1) + media_index
    _, media_of_crop, media_counts = np.unique(key, return_inverse=True, return_counts=True)
    coefficient = weights / media_counts[media_of_crop]

    width = features.shape[1] // 2 if flip_halves else features.shape[1]
    sums = np.zeros((len(templates), width), dtype=np.float64)
    bad_rows, bad_norms = [], []
    for start in range(0, count, _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        block = features[rows].astype(np.float64)
        if flip_halves:
            block = block[:, :width] + block[:, width:]
        norms = np.sqrt(np.einsum("nd,nd->n", block, block))
        bad = ~np.isfinite(norms) | (norms == 0)
        if bad.any():
            bad_rows.append(start + np.flatnonzero(bad))
            bad_norms.append(norms[bad])
            continue  # reported below, once every chunk has been checked
        # A sparse (templates in chunk, crops in chunk) matrix of crop coefficients sums each
        # template's crops in one product, in whatever order the crops come.
        chunk_templates, local = np.unique(template_index[rows], return_inverse=True)
        combine = sparse.csr_matrix(
            (coefficient[rows] / norms if normalise else coefficient[rows], (local, np.arange(len(local)))),
            shape=(len(chunk_templates), len(local)),
        )
        sums[chunk_templates] += combine @ block  # unique indices: fancy-index += is safe
    if bad_rows:
        raise ValueError(_crop_problems(np.concatenate(bad_rows), np.concatenate(bad_norms), crop_names))
    norms = np.sqrt(np.einsum("td,td->t", sums, sums))
    if np.any(norms == 0):
        empty = templates[norms == 0]
        raise ValueError(
            f"{len(empty)} templates have a zero descriptor (all their crop weights are zero):"
            f" {', '.join(str(t) for t in empty[:_NAMED])}{', ...' if len(empty) > _NAMED else ''}"
        )
    return templates, sums / norms[:, None]


def _crop_problems(rows: np.ndarray, norms: np.ndarray, crop_names: Sequence[str] | np.ndarray | None) -> str:
    """A message naming the crops ``rows`` (M,) whose feature norms ``norms`` (M,) are NaN/inf or zero."""
    problems = []
    for bad, what in ((~np.isfinite(norms), "have NaN or infinite values"), (norms == 0, "are all zeros")):
        if bad.any():
            problems.append(f"{np.count_nonzero(bad)} crop features {what}: {_name_rows(rows[bad], crop_names)}")
    return "; ".join(problems) + "; re-extract those crops or drop them before scoring"


def _name_rows(rows: np.ndarray, crop_names: Sequence[str] | np.ndarray | None) -> str:
    """The first few of ``rows`` as crop names (or row numbers), with '...' when there are more."""
    shown = [repr(str(crop_names[r])) if crop_names is not None else f"row {r}" for r in rows[:_NAMED]]
    return ", ".join(shown) + (", ..." if len(rows) > _NAMED else "")
