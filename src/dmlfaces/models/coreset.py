"""Differentiable farthest-point sampling of a face set under a quality-aware metric (FaceCoresetNet).

Shapira and Keller, "FaceCoresetNet: Differentiable Coresets for Face Set Recognition", AAAI 2024. The
core template is K picks: first the highest-quality face, then, K-1 times, the face farthest from the
picked set under ``d_i = q_i**gamma * (1 - cos(f_i, c)) / 2`` (minimum over the picked c), so the picks
cover the set (diversity) while preferring sharp faces (quality, through the learned ``gamma``).

Each pick is a one-hot (B, N) row. In training it is a Gumbel-Softmax sample with hard straight-through,
so gradients reach ``gamma`` and everything upstream; at evaluation it is a true argmax, deterministic
and independent of the order of the set. The logits are ``log d_i``: the Gumbel-max trick then samples
face i with probability proportional to its distance (k-means++ seeding), and the argmax is the
farthest face. (Our assumption: the published code's logit scaling is not documented in the paper.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_TINY = 1e-12


def quality_distance(features: torch.Tensor, norms: torch.Tensor, centre: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(B, N) quality-weighted distance ``q**gamma * (1 - cos) / 2`` of every face to one picked face.

    Args:
        features: (B, N, D) unit features; norms: (B, N) their qualities q.
        centre: (B, D) the picked (unit) feature; gamma: scalar tensor.
    """
    cosine = (features @ centre[:, :, None])[..., 0]
    return norms.clamp(min=_TINY).pow(gamma) * (1.0 - cosine).clamp(min=0.0) / 2


def pick(logits: torch.Tensor, hard_sample: bool, tau: float = 1.0) -> torch.Tensor:
    """(B, N) one-hot pick per row: a Gumbel-Softmax sample with straight-through gradients, or the argmax.

    ``logits`` are -inf where a face may not be picked.
    """
    if hard_sample:
        return F.gumbel_softmax(logits, tau=tau, hard=True)
    return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)


def farthest_point_picks(
    features: torch.Tensor,
    norms: torch.Tensor,
    mask: torch.Tensor,
    k: int,
    gamma: torch.Tensor,
    sample: bool,
    tau: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """K farthest-point picks per set.

    Args:
        features: (B, N, D) unit features; norms: (B, N) qualities; mask: (B, N) True for real faces.
        k: picks per set; a set of n < k faces gets n real picks (K_eff = min(K, n)).
        gamma: scalar tensor, the quality exponent.
        sample: Gumbel-Softmax samples (training) instead of argmax (evaluation).
    Returns:
        picks: (B, K, N) one-hot rows (straight-through in training); pick_mask: (B, K) True for real picks.
    """
    blocked = torch.finfo(features.dtype).min
    quality = torch.where(mask, norms, torch.full_like(norms, blocked))
    # The first pick is the best face: a plain argmax (no gradient is needed through it).
    rows = [F.one_hot(quality.argmax(-1), features.shape[1]).to(features.dtype)]
    nearest = torch.full_like(norms, float("inf"))
    for _ in range(k - 1):
        centre = (rows[-1][:, None, :] @ features)[:, 0]
        nearest = torch.minimum(nearest, quality_distance(features, norms, centre, gamma))
        logits = torch.where(mask, torch.log(nearest + _TINY), torch.full_like(nearest, -float("inf")))
        rows.append(pick(logits, sample, tau))
    picks = torch.stack(rows, dim=1)
    pick_mask = torch.arange(k, device=mask.device)[None, :] < mask.sum(1, keepdim=True)
    return picks, pick_mask
