"""Templates (sets of crops) to padded batches, and descriptors of every template through any aggregator."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dmlfaces.train.distributed import resolve_device


def group_crops(template_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group crops by template without a Python loop.

    Args:
        template_ids: (M,) template id of each crop.
    Returns:
        templates (T,) sorted unique ids, order (M,) crop indices grouped by template (stable), starts (T + 1,)
        so that template t owns ``order[starts[t]:starts[t + 1]]``.
    """
    order = np.argsort(template_ids, kind="stable")
    templates, counts = np.unique(template_ids[order], return_counts=True)
    return templates, order, np.concatenate([[0], np.cumsum(counts)])


def pad_sets(
    features: np.ndarray, norms: np.ndarray, media: np.ndarray | None, members: list[np.ndarray]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Padded batch of the sets ``members`` (crop index arrays).

    Returns:
        features (B, N, D) float32, norms (B, N), mask (B, N) bool, media (B, N) int64 or None; N the largest set.
    """
    sizes = np.array([len(m) for m in members])
    rows = np.repeat(np.arange(len(members)), sizes)
    cols = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    crops = np.concatenate(members)
    shape = (len(members), int(sizes.max()))
    padded = np.zeros(shape + (features.shape[1],), np.float32)
    padded[rows, cols] = features[crops]
    padded_norms = np.zeros(shape, np.float32)
    padded_norms[rows, cols] = norms[crops]
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    padded_media = None
    if media is not None:
        padded_media = np.full(shape, -1, np.int64)
        padded_media[rows, cols] = media[crops]
        padded_media = torch.from_numpy(padded_media)
    return torch.from_numpy(padded), torch.from_numpy(padded_norms), torch.from_numpy(mask), padded_media


@torch.no_grad()
def describe_templates(
    aggregator: nn.Module,
    features: np.ndarray,
    norms: np.ndarray,
    template_ids: np.ndarray,
    media_ids: np.ndarray | None = None,
    crops_per_batch: int = 1 << 16,
    device: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One descriptor per template.

    Templates are sorted by size and batched with others of similar size, so padding stays small; a
    batch holds at most ``crops_per_batch`` padded slots (or one template, however large).

    Args:
        features: (M, D) unit crop features; norms: (M,); template_ids, media_ids: (M,).
    Returns:
        templates (T,) sorted ids, descriptors (T, D) float32 unit rows, descriptor norms (T,) float32.
    """
    bad = ~np.isfinite(features).all(axis=1) | ~np.isfinite(norms)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} crops have NaN or infinite features or norms (rows {np.flatnonzero(bad)[:5].tolist()})")
    target = resolve_device(device)
    aggregator = aggregator.to(target).eval()
    templates, order, starts = group_crops(np.asarray(template_ids))
    sizes = np.diff(starts)
    descriptors = np.zeros((len(templates), features.shape[1]), np.float32)
    out_norms = np.zeros(len(templates), np.float32)
    by_size = np.argsort(sizes, kind="stable")
    first = 0
    while first < len(by_size):
        # Sizes grow along by_size, so the last template of a batch is its largest.
        last = first + 1
        while last < len(by_size) and (last - first + 1) * sizes[by_size[last]] <= crops_per_batch:
            last += 1
        chosen = by_size[first:last]
        batch = pad_sets(features, norms, media_ids, [order[starts[t]:starts[t + 1]] for t in chosen])
        batch = [None if t is None else t.to(target) for t in batch]
        descriptor, norm = aggregator(*batch)
        descriptors[chosen], out_norms[chosen] = descriptor.float().cpu().numpy(), norm.float().cpu().numpy()
        first = last
    return templates, descriptors, out_norms
