"""Metric-learning losses for identity embeddings; the choice is a parameter (``build_loss``).

* ``arcface`` and ``cosface``: pytorch-metric-learning's ``ArcFaceLoss`` (Deng et al., CVPR 2019) and
  ``CosFaceLoss`` (Wang et al., CVPR 2018), used as they are.
* ``adaface``: :class:`AdaFaceLoss`, the quality-adaptive margin of Kim, Jain and Liu, "AdaFace: Quality
  Adaptive Margin for Face Recognition", CVPR 2022. Not in that library, so written here.
* ``triplet``: pytorch-metric-learning's ``TripletMarginLoss`` on the triplets its ``TripletMarginMiner``
  finds in the batch: a pair-based metric loss for comparison.

Every loss maps (B, D) raw features and (B,) identity labels to a scalar.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

LOSSES = ("adaface", "arcface", "cosface", "triplet")


class AdaFaceLoss(nn.Module):
    """AdaFace margin softmax: the margin adapts to each sample's feature norm, a proxy of image quality.

    The norm is standardised by a running batch mean and standard deviation (momentum ``t_alpha``),
    scaled by ``h`` and clipped to [-1, 1] (``z``). The target logit becomes
    ``s * (cos(theta + g_angle) - g_add)`` with ``g_angle = -m * z`` and ``g_add = m * z + m``: a
    low-norm (poor) sample (z = -1) gets ArcFace's angular margin, an average one (z = 0) CosFace's
    additive margin, and a high-norm (good) one (z = 1) an angle moved towards its class with a doubled
    additive margin, which weights its hard examples up; so the loss emphasises hard samples only when
    the image is good enough to be recognisable (Kim et al., AdaFace, CVPR 2022).
    Under DistributedDataParallel the norm statistics are reduced over all ranks, so a multi-process
    run sees the statistics of the global batch.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin: float = 0.4,
        h: float = 0.333,
        scale: float = 64.0,
        t_alpha: float = 0.01,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.margin, self.h, self.scale, self.t_alpha, self.eps = margin, h, scale, t_alpha, eps
        self.kernel = nn.Parameter(torch.empty(embedding_dim, num_classes).uniform_(-1, 1))
        self.register_buffer("batch_mean", torch.tensor(20.0))
        self.register_buffer("batch_std", torch.tensor(100.0))

    def _norm_statistics(self, norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (unbiased) std of the norms of the whole global batch."""
        stats = torch.stack([norms.sum(), (norms**2).sum(), torch.tensor(float(norms.numel()), device=norms.device)])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        total, squares, count = stats
        mean = total / count
        var = (squares - count * mean**2) / (count - 1).clamp(min=1)
        return mean, var.clamp(min=0).sqrt()

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, D) raw features, (B,) labels -> scalar cross-entropy."""
        features = features.float()
        norms = features.norm(dim=1, keepdim=True)
        unit = features / norms.clamp(min=1e-12)
        cosine = (unit @ F.normalize(self.kernel, dim=0)).clamp(-1 + self.eps, 1 - self.eps)
        safe_norms = norms.clamp(0.001, 100).detach()
        with torch.no_grad():
            mean, std = self._norm_statistics(safe_norms)
            if self.training:
                self.batch_mean.mul_(1 - self.t_alpha).add_(self.t_alpha * mean)
                self.batch_std.mul_(1 - self.t_alpha).add_(self.t_alpha * std)
        z = ((safe_norms - self.batch_mean) / (self.batch_std + self.eps) * self.h).clamp(-1, 1)
        target = F.one_hot(labels, cosine.shape[1]).to(cosine.dtype)
        theta = cosine.acos()
        theta = (theta + target * (-self.margin * z)).clamp(self.eps, math.pi - self.eps)
        logits = theta.cos() - target * (self.margin + self.margin * z)
        return F.cross_entropy(logits * self.scale, labels)


class TripletLoss(nn.Module):
    """Triplet margin loss over the triplets a miner finds in the batch (pytorch-metric-learning)."""

    def __init__(self, margin: float = 0.2, type_of_triplets: str = "semihard") -> None:
        from pytorch_metric_learning import losses, miners  # here: the library takes a second to import

        super().__init__()
        self.miner = miners.TripletMarginMiner(margin=margin, type_of_triplets=type_of_triplets)
        self.loss = losses.TripletMarginLoss(margin=margin)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = features.float()
        return self.loss(features, labels, self.miner(features, labels))


class _FloatInputs(nn.Module):
    """Runs a pytorch-metric-learning classification loss in float32 (its weights stay float32 under AMP)."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(features.float(), labels)


def build_loss(name: str, num_classes: int, embedding_dim: int, margin: float | None = None, scale: float = 64.0) -> nn.Module:
    """A loss by name (``LOSSES``); ``margin`` uses each paper's unit (radians for ArcFace as in its paper)."""
    if name == "adaface":
        return AdaFaceLoss(num_classes, embedding_dim, margin=0.4 if margin is None else margin, scale=scale)
    from pytorch_metric_learning import losses  # here: the library takes a second to import, the AdaFace loss needs none of it

    if name == "arcface":
        degrees = math.degrees(0.5 if margin is None else margin)  # the library takes degrees
        return _FloatInputs(losses.ArcFaceLoss(num_classes, embedding_dim, margin=degrees, scale=scale))
    if name == "cosface":
        return _FloatInputs(
            losses.CosFaceLoss(num_classes, embedding_dim, margin=0.35 if margin is None else margin, scale=scale)
        )
    if name == "triplet":
        return TripletLoss(margin=0.2 if margin is None else margin)
    raise ValueError(f"unknown loss {name!r}; choose one of {list(LOSSES)}")
