"""What an aggregator does with a template: robustness to bursts, and the quality of the faces it picks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from dmlfaces.models.aggregators import CoresetAggregator
from dmlfaces.models.coreset import farthest_point_picks
from dmlfaces.models.templates import group_crops, pad_sets


def add_bursts(
    features: np.ndarray, norms: np.ndarray, template_ids: np.ndarray, media_ids: np.ndarray, copies: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Append ``copies`` copies of one randomly chosen crop to every template, as one new video (media).

    Args:
        features: (M, D); norms, template_ids, media_ids: (M,).
    Returns:
        the (M + T copies, ...) arrays in the same order (originals first).
    """
    templates, order, starts = group_crops(template_ids)
    rng = np.random.default_rng([seed, 8191])
    chosen = order[starts[:-1] + (rng.random(len(templates)) * np.diff(starts)).astype(np.int64)]
    burst = np.repeat(chosen, copies)
    new_media = np.repeat(media_ids.max() + 1 + np.arange(len(templates)), copies)
    return (
        np.concatenate([features, features[burst]]),
        np.concatenate([norms, norms[burst]]),
        np.concatenate([template_ids, template_ids[burst]]),
        np.concatenate([media_ids, new_media]),
    )


def burst_shift(
    before: Mapping[str, tuple[np.ndarray, np.ndarray]], after: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, np.ndarray]:
    """How far a burst moves each template's descriptor: (T,) ``1 - cos(before, after)`` per method of ``after``.

    Args:
        before, after: name -> (templates (T,), unit descriptors (T, D)) without and with the bursts of
            ``add_bursts`` (``verify.describe_rows`` gives both); the same templates in both.
    """
    shifts = {}
    for name, (templates, bursty) in after.items():
        known, descriptors = before[name]
        if not np.array_equal(known, templates):
            raise ValueError(f"{name}: the descriptors with and without bursts are of different templates")
        shifts[name] = 1.0 - np.sum(descriptors * bursty, axis=1)
    return shifts


@torch.no_grad()
def picked_quality(
    aggregator: CoresetAggregator, features: np.ndarray, norms: np.ndarray, template_ids: np.ndarray, quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ground-truth quality of the coreset picks of every template, beside the template's mean quality.

    Args:
        quality: (M,) ground-truth quality of each crop.
    Returns:
        picked (T,) and overall (T,) mean quality, templates in sorted id order.
    """
    templates, order, starts = group_crops(template_ids)
    members = [order[starts[t] : starts[t + 1]] for t in range(len(templates))]
    # The crop index rides in the media slot, so the picks map back to crops without a second padding.
    batch_features, batch_norms, mask, crop_of_slot = pad_sets(features, norms, np.arange(len(norms)), members)
    picks, pick_mask = farthest_point_picks(batch_features, batch_norms, mask, aggregator.k, aggregator.gamma, sample=False)
    picked_crops = torch.gather(crop_of_slot, 1, picks.argmax(-1)).numpy()  # (T, K)
    valid = pick_mask.numpy()
    picked = (quality[picked_crops] * valid).sum(1) / valid.sum(1)
    index = np.unique(template_ids, return_inverse=True)[1]
    overall = np.bincount(index, quality) / np.bincount(index)
    return picked, overall
