"""Feature extraction: per-crop unit features and their norms, batched, on the GPU when present.

Output is one file a user can open without this package: ``<name>.npz`` with arrays ``names`` (N,),
``features`` (N, D) float32 unit rows and ``norms`` (N,) float32, plus ``<name>.csv`` (name, row, norm)
as an index. Both are written atomically.

Under ``torchrun`` each rank extracts a contiguous share of whole batches and saves it beside the output;
rank 0 merges the shares into the file one process would write.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from dmlfaces.data.transforms import to_input_tensor
from dmlfaces.io import MARKER, atomic_path, atomic_write_text
from dmlfaces.train.distributed import DistributedContext, resolve_device


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Unit features (N, D) float32, their pre-normalisation norms (N,) and the crop names (N,)."""

    names: np.ndarray
    features: np.ndarray
    norms: np.ndarray


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    load: Callable[[int], np.ndarray],
    count: int,
    *,
    batch_size: int = 256,
    flip: bool = True,
    device: str = "auto",
    threads: int = 4,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of images ``load(0) .. load(count - 1)`` ((112, 112, 3) uint8 RGB each).

    With ``flip`` the feature is the sum of the crop's and its mirror's (the flip test); the norm
    reported is that of the mean of the two, comparable to a single pass.

    Returns:
        unit features (count, D) float32 and norms (count,) float32.
    """
    target = resolve_device(device)
    backbone = backbone.to(target).eval()
    if target.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)
    amp = torch.bfloat16 if target.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    features, norms = [], []
    starts = range(0, count, batch_size)
    with ThreadPoolExecutor(threads) as pool:
        for start in tqdm(starts, desc="extract", disable=not progress, mininterval=2.0):
            images = np.stack(list(pool.map(load, range(start, min(start + batch_size, count)))))
            batch = to_input_tensor(images).to(target)
            if target.type == "cuda":
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast(target.type, dtype=amp, enabled=target.type == "cuda"):
                raw = backbone(batch).float()
                if flip:
                    raw = (raw + backbone(batch.flip(3)).float()) / 2
            norm = raw.norm(dim=1)
            features.append((raw / norm.clamp(min=1e-12)[:, None]).cpu().numpy())
            norms.append(norm.cpu().numpy())
    return np.concatenate(features).astype(np.float32), np.concatenate(norms).astype(np.float32)


def shard_range(count: int, batch_size: int, context: DistributedContext) -> range:
    """This rank's contiguous share of ``range(count)``: whole batches, spread as evenly as they go.

    Cutting at batch boundaries gives every rank exactly the batches one process would run, so the merged
    features equal a single process's (bit for bit on the CPU; on GPUs up to the kernels each picks).
    """
    batches = -(-count // batch_size)
    if batches < context.world_size:
        raise ValueError(f"{count} crops make {batches} batches of {batch_size}, fewer than the {context.world_size} "
                         "processes: use fewer processes or a smaller --batch-size")
    per_rank, extra = divmod(batches, context.world_size)
    first = context.rank * per_rank + min(context.rank, extra)
    last = first + per_rank + (context.rank < extra)
    return range(first * batch_size, min(last * batch_size, count))


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` (.npz, no suffix added) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def write_features(path: str | os.PathLike[str], names: Sequence[str], features: np.ndarray, norms: np.ndarray) -> None:
    """Write ``path`` (.npz) and its ``.csv`` index atomically."""
    path = Path(path)
    _save_npz(path, names=np.asarray(names, dtype=str), features=features.astype(np.float32), norms=norms.astype(np.float32))
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["name", "row", "norm"])
    writer.writerows((name, row, f"{norm:.6f}") for row, (name, norm) in enumerate(zip(names, norms)))
    atomic_write_text(path.with_suffix(".csv"), table.getvalue())


def _shard_path(path: Path, rank: int) -> Path:
    """Hidden file beside ``path`` for rank ``rank``'s rows; a fixed name carrying the package's marker, so a
    rerun replaces what a failed run left and no file of a user's is ever taken for a shard."""
    return path.with_name(f".{path.name}.{MARKER}shard{rank}")


def _read_shard(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features (S, D) and norms (S,) saved by one rank."""
    with np.load(path) as data:
        return data["features"], data["norms"]


def write_features_sharded(path: str | os.PathLike[str], names: Sequence[str], features: np.ndarray, norms: np.ndarray,
                           context: DistributedContext) -> None:
    """``write_features`` of all ranks' rows; ``features`` (S, D) and ``norms`` (S,) are this rank's ``shard_range``.

    Each rank saves its rows beside ``path``; after a barrier rank 0 concatenates them in rank order (the
    crops' order, shares being contiguous), writes ``path`` and removes the shards. A rank that dies stops
    the barrier, so nothing reaches the final name.
    """
    if not context.distributed:
        write_features(path, names, features, norms)
        return
    path = Path(path)
    _save_npz(_shard_path(path, context.rank), features=features, norms=norms)
    dist.barrier()
    if context.is_main:
        shards = [_shard_path(path, rank) for rank in range(context.world_size)]
        merged_features, merged_norms = (np.concatenate(parts) for parts in zip(*map(_read_shard, shards)))
        write_features(path, names, merged_features, merged_norms)
        for shard in shards:
            shard.unlink()


def read_features(path: str | os.PathLike[str]) -> FeatureSet:
    """Read a file written by ``write_features``."""
    with np.load(path) as data:
        return FeatureSet(names=data["names"], features=data["features"], norms=data["norms"])
