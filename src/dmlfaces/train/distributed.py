"""Process-group set-up for ``torchrun`` and cross-rank batch normalisation on CPU.

One code path serves one CPU process, one GPU and many GPUs on many nodes: ``torchrun`` sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; without them the run is a single process.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn  # autograd-aware collectives
import torch.nn.functional as F
from torch import nn

from dmlfaces.devices import DistributedContext, resolve_device
from dmlfaces.params import AUTO_DEVICE


def init_distributed(device: str = AUTO_DEVICE) -> DistributedContext:
    """Join the process group ``torchrun`` describes (NCCL on GPUs, gloo on CPUs), or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return DistributedContext(rank, world_size, local_rank, resolved)


def gather_over_ranks(array: np.ndarray, context: DistributedContext) -> np.ndarray:
    """Every rank's ``array`` ((S_r, ...), the same trailing shape) joined in rank order, on every rank; ``array``
    itself for a single process. For small per-item records (pickled through the process group), not features."""
    if not context.distributed:
        return array
    parts: list[np.ndarray | None] = [None] * context.world_size
    dist.all_gather_object(parts, np.asarray(array))
    return np.concatenate(parts)


class GlobalBatchNorm(nn.Module):
    """Batch normalisation over the batch of all ranks, for CPU process groups.

    ``torch.nn.SyncBatchNorm`` runs only on accelerators; this one reduces the per-channel sum, sum of
    squares and count over the gloo group (with gradients, through ``torch.distributed.nn``), so that
    a 2-process CPU run normalises exactly the global batch a single process would see.
    """

    def __init__(self, source: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = source.num_features, source.eps, source.momentum
        self.affine = source.affine
        if source.affine:
            self.weight, self.bias = source.weight, source.bias
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", source.running_mean)
        self.register_buffer("running_var", source.running_var)
        self.register_buffer("num_batches_tracked", source.num_batches_tracked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, ...) -> (B, C, ...)."""
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        # Statistics accumulate in float64, as ATen's CPU batch norm does, and in two passes (mean, then
        # squared deviations): a float32 E[x^2] - E[x]^2 loses the variance of low-spread channels, and
        # those channels amplify any error into the gradients.
        wide = x.double()
        count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
        stats = dist_fn.all_reduce(torch.cat([wide.sum(dims), count]))
        n = stats[-1].detach()
        mean = stats[:-1] / n
        centred = wide - mean.view(shape)
        var = dist_fn.all_reduce((centred * centred).sum(dims)) / n
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.mul_(1 - self.momentum).add_((self.momentum * mean).to(x.dtype))
            self.running_var.mul_(1 - self.momentum).add_((self.momentum * var * n / (n - 1)).to(x.dtype))
        out = (centred / torch.sqrt(var.view(shape) + self.eps)).to(x.dtype)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def synchronise_batchnorm(module: nn.Module, context: DistributedContext) -> nn.Module:
    """Make every batch norm in ``module`` use the global batch (no-op for a single process)."""
    if not context.distributed:
        return module
    if context.device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, GlobalBatchNorm(child))
        else:
            synchronise_batchnorm(child, context)
    return module
