"""Where a process computes: its device (the one rule every trainer, extractor and describer follows) and,
under torchrun, its rank (``dmlfaces.train.distributed`` joins the process group)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dmlfaces.params import AUTO_DEVICE


@dataclass(frozen=True)
class DistributedContext:
    """Where this process runs: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str = AUTO_DEVICE, local_rank: int = 0) -> torch.device:
    """``auto``: this process's CUDA device when one is present, else the CPU; a bare ``cuda`` means this
    process's GPU too (under torchrun, rank-local), ``cuda:N`` exactly GPU N."""
    if preference == AUTO_DEVICE:
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if preference == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(preference)
