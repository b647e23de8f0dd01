"""Templates (sets of crops) to padded batches, and descriptors of every template through any aggregator."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from dmlfaces.devices import resolve_device
from dmlfaces.params import AUTO_DEVICE


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


def describe_templates(
    aggregator: nn.Module,
    features: np.ndarray,
    norms: np.ndarray,
    template_ids: np.ndarray,
    media_ids: np.ndarray | None = None,
    crops_per_batch: int = 1 << 16,
    device: str = AUTO_DEVICE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One descriptor per template.

    Templates are sorted by size and batched with others of similar size, so padding stays small; a
    batch holds at most ``crops_per_batch`` padded slots (or one template, however large).

    Args:
        features: (M, D) unit crop features; norms: (M,); template_ids, media_ids: (M,).
    Returns:
        templates (T,) sorted ids, descriptors (T, D) float32 unit rows, descriptor norms (T,) float32.
    """
    return describe_templates_by({"": aggregator}, features, norms, template_ids, media_ids, crops_per_batch, device)[""]


@torch.no_grad()
def describe_templates_by(
    aggregators: Mapping[str, nn.Module],
    features: np.ndarray,
    norms: np.ndarray,
    template_ids: np.ndarray,
    media_ids: np.ndarray | None = None,
    crops_per_batch: int = 1 << 16,
    device: str = AUTO_DEVICE,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``describe_templates`` of every aggregator of ``aggregators`` (name -> module) on the same templates.

    Each padded batch is built once and handed to every aggregator in turn (padding a large template set
    costs as much as a cheap aggregator's forward); each aggregator sees the batches it would see alone.

    Returns:
        name -> (templates (T,), descriptors (T, D), descriptor norms (T,)), as ``describe_templates``.
    """
    bad = ~np.isfinite(features).all(axis=1) | ~np.isfinite(norms)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} crops have NaN or infinite features or norms (rows {np.flatnonzero(bad)[:5].tolist()})"
        )
    target = resolve_device(device)
    modules = {name: aggregator.to(target).eval() for name, aggregator in aggregators.items()}
    templates, order, starts = group_crops(np.asarray(template_ids))
    sizes = np.diff(starts)
    outputs = {
        name: (np.zeros((len(templates), features.shape[1]), np.float32), np.zeros(len(templates), np.float32))
        for name in modules
    }
    by_size = np.argsort(sizes, kind="stable")
    first = 0
    while first < len(by_size):
        # Sizes grow along by_size, so the last template of a batch is its largest.
        last = first + 1
        while last < len(by_size) and (last - first + 1) * sizes[by_size[last]] <= crops_per_batch:
            last += 1
        chosen = by_size[first:last]
        batch = pad_sets(features, norms, media_ids, [order[starts[t] : starts[t + 1]] for t in chosen])
        batch = [None if t is None else t.to(target) for t in batch]
        for name, aggregator in modules.items():
            descriptor, norm = aggregator(*batch)
            descriptors, out_norms = outputs[name]
            descriptors[chosen], out_norms[chosen] = descriptor.float().cpu().numpy(), norm.float().cpu().numpy()
        first = last
    return {name: (templates, descriptors, out_norms) for name, (descriptors, out_norms) in outputs.items()}
