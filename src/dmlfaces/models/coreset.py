"""Differentiable farthest-point sampling of a face set under a quality-aware metric (FaceCoresetNet).

Shapira and Keller, "FaceCoresetNet: Differentiable Coresets for Face Set Recognition", AAAI 2024. The
core template is K picks: first the highest-quality face, then, K-1 times, the face farthest from the
picked set under ``d_i = q_i**gamma * (1 - cos(f_i, c)) / 2`` (minimum over the picked c), so the picks
cover the set (diversity) while preferring sharp faces (quality, through the learned ``gamma``).

Each pick is a one-hot (B, N) row. In training it is a Gumbel-Softmax sample with hard straight-through,
so gradients reach ``gamma`` and everything upstream; at evaluation it is a true argmax, deterministic
and independent of the order of the set. Two logit rules (``models.choices.PICK_LOGITS``):

* ``"log_distance"`` (ours): picks 2..K from ``log d_i``, so the Gumbel-max trick samples face i with
  probability proportional to its distance (k-means++ seeding), a picked face (d = 0) is never re-picked,
  and the argmax is the farthest face;
* ``"distance"`` (the official code, ``net_template.py``): the raw ``d_i`` at scale 1 and temperature 1, so
  training picks follow ``softmax(d)``: with ``d`` in [0, 1] they are close to uniform, and a picked face
  may be drawn again. At evaluation both rules are the argmax of ``d``.

The first pick is the best face: its argmax (``models.choices.FIRST_PICKS`` ``"argmax"``, ours), or in training a
Gumbel-Softmax sample over the raw norms (``"sample"``, the official code and the paper's listing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dmlfaces.models.choices import FIRST_PICKS, PICK_LOGITS

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
    logits_rule: str = "log_distance",
    first_pick: str = "argmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    """K farthest-point picks per set.

    Args:
        features: (B, N, D) unit features; norms: (B, N) qualities; mask: (B, N) True for real faces.
        k: picks per set; a set of n < k faces gets n real picks (K_eff = min(K, n)).
        gamma: scalar tensor, the quality exponent.
        sample: Gumbel-Softmax samples (training) instead of argmax (evaluation).
        logits_rule: ``PICK_LOGITS``, the logits of picks 2..K; first_pick: ``FIRST_PICKS``.
    Returns:
        picks: (B, K, N) one-hot rows (straight-through in training); pick_mask: (B, K) True for real picks.
    """
    if logits_rule not in PICK_LOGITS or first_pick not in FIRST_PICKS:
        raise ValueError(f"pick logits {logits_rule!r}, first pick {first_pick!r}: choose from {PICK_LOGITS}, {FIRST_PICKS}")
    excluded = torch.full_like(norms, -float("inf"))
    if sample and first_pick == "sample":
        rows = [pick(torch.where(mask, norms, excluded), True, tau)]
    else:  # the best face (no gradient is needed through it)
        quality = torch.where(mask, norms, torch.full_like(norms, torch.finfo(features.dtype).min))
        rows = [F.one_hot(quality.argmax(-1), features.shape[1]).to(features.dtype)]
    nearest = torch.full_like(norms, float("inf"))
    for _ in range(k - 1):
        centre = (rows[-1][:, None, :] @ features)[:, 0]
        nearest = torch.minimum(nearest, quality_distance(features, norms, centre, gamma))
        logits = torch.log(nearest + _TINY) if logits_rule == "log_distance" else nearest
        rows.append(pick(torch.where(mask, logits, excluded), sample, tau))
    picks = torch.stack(rows, dim=1)
    pick_mask = torch.arange(k, device=mask.device)[None, :] < mask.sum(1, keepdim=True)
    return picks, pick_mask
