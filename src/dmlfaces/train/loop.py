"""The training loop every trainer of the package shares: devices, AMP, DDP, checkpoints, exact resume.

A trainer supplies a module whose ``forward(*batch)`` returns the loss, an optimizer, and a
:class:`BatchSource` that turns dataset indices into tensors. The loop owns everything else:

* **data order** is a function of (seed, epoch) alone: each epoch a permutation of the dataset, cut
  into global batches (the last incomplete one dropped); rank r of R takes the r-th slice of each. A
  2-process run therefore sees exactly the global batches of a 1-process run.
* **devices**: CUDA when present with autocast (bf16 where supported, else fp16 with a grad scaler)
  and channels_last; CPU otherwise in float32, deterministic for a fixed seed.
* **checkpoints**: every ``checkpoint_every`` steps and at each epoch end rank 0 writes ``last.pt``
  atomically (module, optimizer, scheduler, scaler, position, history, RNG). ``resume=True`` restarts
  from it at the exact batch, so a killed run finishes with the weights of an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from dmlfaces.devices import DistributedContext
from dmlfaces.models.checkpoints import write_checkpoint
from dmlfaces.train.distributed import synchronise_batchnorm

CHECKPOINT_NAME = "last.pt"


class BatchSource(Protocol):
    """Turns dataset indices into the tensors of one (local) batch."""

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray, epoch: int) -> tuple[torch.Tensor, ...]: ...


@dataclass
class LoopConfig:
    """How long and how to train; the batch size is global (split over ranks)."""

    epochs: int
    batch_size: int
    checkpoint_dir: Path
    checkpoint_every: int = 50
    seed: int = 0
    max_grad_norm: float | None = None
    amp: bool = True
    description: str = "train"
    fingerprint: str = ""  # what the run trains; a checkpoint of another run is never resumed
    on_step: Callable[[int], None] | None = field(default=None, repr=False)  # test hook, called after each step


def epoch_order(seed: int, epoch: int, size: int) -> np.ndarray:
    """(size,) permutation of the dataset for one epoch, the same on every rank."""
    return np.random.default_rng([seed, 7919, epoch]).permutation(size)


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None  # CPU stays in float32: exact and deterministic
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def prepare_module(module: nn.Module, context: DistributedContext) -> nn.Module:
    """Move to the device (channels_last on CUDA), synchronise batch norms, wrap in DDP when distributed."""
    module = synchronise_batchnorm(module, context)
    module = module.to(context.device)
    if context.device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    if context.distributed:
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        module = DistributedDataParallel(module, device_ids=device_ids)
    return module


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


def _to_device(batch: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    moved = []
    for tensor in batch:
        tensor = tensor.to(device, non_blocking=True)
        if device.type == "cuda" and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        moved.append(tensor)
    return tuple(moved)


def train_loop(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    source: BatchSource,
    config: LoopConfig,
    context: DistributedContext,
    resume: bool = False,
) -> dict[str, list]:
    """Train ``module`` (already built on the CPU; moved here) and return its history.

    History: ``steps`` (step, loss) every step and ``epochs`` (epoch, mean loss, images/s, seconds).
    """
    if config.batch_size % context.world_size:
        raise ValueError(f"batch size {config.batch_size} is not divisible by {context.world_size} processes")
    local = config.batch_size // context.world_size
    batches_per_epoch = len(source) // config.batch_size
    if batches_per_epoch == 0:
        raise ValueError(f"batch size {config.batch_size} exceeds the dataset ({len(source)} items)")
    torch.manual_seed(config.seed)
    module = prepare_module(module, context)
    # Optimizer state was created for CPU parameters; after .to(device) the parameters are the same objects.
    amp_dtype = _autocast_dtype(context.device) if config.amp else None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    history: dict[str, list] = {"steps": [], "epochs": []}
    epoch, start_batch, step = 0, 0, 0
    checkpoint_path = Path(config.checkpoint_dir) / CHECKPOINT_NAME
    state = (
        torch.load(checkpoint_path, map_location=context.device, weights_only=False)
        if resume and checkpoint_path.exists()
        else None
    )
    if state is not None and state.get("fingerprint") != config.fingerprint:
        if context.is_main:
            print(f"{checkpoint_path}: written by a run with other settings; starting afresh", flush=True)
        state = None
    if state is not None:
        _unwrap(module).load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        epoch, start_batch, step, history = state["epoch"], state["batch"], state["step"], state["history"]
        torch.set_rng_state(state["rng"])

    def save(next_epoch: int, next_batch: int) -> None:
        if not context.is_main:
            return
        state = {
            "module": _unwrap(module).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict(),
            "epoch": next_epoch,
            "batch": next_batch,
            "step": step,
            "history": history,
            "rng": torch.get_rng_state(),
            "fingerprint": config.fingerprint,
        }
        write_checkpoint(state, checkpoint_path)

    module.train()
    while epoch < config.epochs:
        order = epoch_order(config.seed, epoch, len(source))
        started, seen = time.perf_counter(), 0
        bar = tqdm(
            range(start_batch, batches_per_epoch),
            desc=f"{config.description} epoch {epoch + 1}/{config.epochs}",
            disable=not context.is_main,
            mininterval=2.0,
            leave=False,
        )
        for b in bar:
            global_batch = order[b * config.batch_size : (b + 1) * config.batch_size]
            indices = global_batch[context.rank * local : (context.rank + 1) * local]
            batch = _to_device(source.batch(indices, epoch), context.device)
            with torch.autocast(context.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = module(*batch)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.max_grad_norm is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            step += 1
            history["steps"].append((step, loss.item()))
            seen += config.batch_size
            elapsed = time.perf_counter() - started
            bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / max(elapsed, 1e-9):.0f}", refresh=False)
            if config.on_step is not None:
                config.on_step(step)
            if step % config.checkpoint_every == 0 and b + 1 < batches_per_epoch:
                save(epoch, b + 1)
        elapsed = time.perf_counter() - started
        # The epoch's mean loss comes from the step history, so a resumed epoch reports the same mean.
        epoch_losses = [value for s, value in history["steps"] if s > epoch * batches_per_epoch]
        history["epochs"].append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(epoch_losses)),
                "images_per_s": seen / max(elapsed, 1e-9),
                "seconds": elapsed,
            }
        )
        epoch, start_batch = epoch + 1, 0
        save(epoch, 0)
    if context.distributed:
        history["ranks_in_sync"] = _ranks_in_sync(_unwrap(module), context)
    return history


def _ranks_in_sync(module: nn.Module, context: DistributedContext) -> bool:
    """Whether every rank ends with the same weights (compared through per-tensor float64 checksums)."""
    import torch.distributed as dist

    tensors = list(module.state_dict().values())
    checksum = torch.stack(
        [t.double().sum() + (t.double().flatten() * torch.arange(t.numel(), device=t.device) % 7).sum() for t in tensors]
    )
    gathered = [torch.empty_like(checksum) for _ in range(context.world_size)]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])
