"""Train a face-identity embedding (backbone + metric-learning loss) on an identity-per-folder image tree.

Single process: ``dmlfaces train-embedding --data data/train --out results/embedding``.
Many GPUs or nodes: ``torchrun --nproc_per_node 8 -m dmlfaces train-embedding ...`` (same code path).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dmlfaces.data.folders import read_image_folder
from dmlfaces.data.images import load_rgb
from dmlfaces.data.transforms import augment_face, to_input_tensor
from dmlfaces.io import write_json
from dmlfaces.models.backbones import DEPTHS, build_backbone
from dmlfaces.models.checkpoints import save_backbone
from dmlfaces.models.losses import LOSSES, build_loss
from dmlfaces.params import AUTO_DEVICE, check_choice, check_device, check_positive_ints, check_range, load_section
from dmlfaces.train.distributed import init_distributed
from dmlfaces.train.loop import LoopConfig, train_loop

BACKBONE_FILE = "backbone.pt"
HISTORY_FILE = "history.json"


@dataclass
class EmbeddingConfig:
    """Everything that defines an embedding training run (``params.yaml`` section ``embedding``)."""

    backbone: str = "small"
    embedding_dim: int = 512
    loss: str = "adaface"
    margin: float | None = None
    scale: float = 16.0  # AdaFace used 64 on WebFace4M; params.yaml says why 16 here
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    checkpoint_every: int = 50
    cache_images: bool = True
    augment: float = 0.0  # probability of each of AdaFace's crop / low-resolution / colour augmentations (0.2 there)
    loader_threads: int = 4
    device: str = AUTO_DEVICE
    amp: bool = True

    def __post_init__(self) -> None:
        check_choice("embedding", "loss", self.loss, LOSSES)
        check_choice("embedding", "backbone", self.backbone, ("small", *DEPTHS))
        check_positive_ints(self, "embedding", ("epochs", "batch_size", "embedding_dim", "checkpoint_every", "loader_threads"))
        check_range("embedding", "augment", self.augment, 0.0, 1.0)
        check_range("embedding", "margin", self.margin, 0.0, math.pi / 2, high_open=True)  # an angle or a cosine
        check_range("embedding", "scale", self.scale, 0.0, low_open=True)  # 0 makes every logit 0: nothing is learnt
        check_range("embedding", "lr", self.lr, 0.0, low_open=True)
        check_range("embedding", "momentum", self.momentum, 0.0, 1.0, high_open=True)  # 1 and above diverge
        check_range("embedding", "weight_decay", self.weight_decay, 0.0)
        check_range("embedding", "seed", self.seed, 0)
        check_device("embedding", "device", self.device)


class FaceBatches:
    """Batches of an image folder: decoded once into memory (``cache``) or on demand by a thread pool.

    Augmentation (a horizontal flip, and with ``augment`` > 0 AdaFace's low-quality augmentations) is decided
    by (seed, epoch, index), so a batch is the same whichever process loads it and whenever: the property
    exact resume and DDP equivalence rest on.
    """

    def __init__(self, root: str | Path, seed: int, cache: bool = True, threads: int = 4, augment: float = 0.0) -> None:
        folder = read_image_folder(root)
        self.paths, self.labels, self.identities = folder.paths, folder.labels, folder.identities
        self.digest = folder.digest()  # part of the checkpoint fingerprint: new data is never "resumed"
        self.seed, self.threads, self.augment = seed, threads, augment
        self.images = self._decode(range(len(self.paths))) if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.identities)

    def _decode(self, indices) -> np.ndarray:
        with ThreadPoolExecutor(self.threads) as pool:
            return np.stack(list(pool.map(lambda i: load_rgb(self.paths[i]), indices)))

    def batch(self, indices: np.ndarray, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 112, 112) float images in [-1, 1] and (B,) int64 labels."""
        images = self.images[indices] if self.images is not None else self._decode(indices)  # a copy either way
        flips = (np.random.default_rng([self.seed, 104729, epoch]).random(len(self)) < 0.5)[indices]
        images[flips] = images[flips, :, ::-1]  # in place: only the flipped half is rewritten
        if self.augment > 0:

            def view(j: int) -> np.ndarray:
                return augment_face(images[j], np.random.default_rng([self.seed, 7919, epoch, int(indices[j])]), self.augment)

            with ThreadPoolExecutor(self.threads) as pool:  # PIL releases the GIL while it resizes
                images = np.stack(list(pool.map(view, range(len(indices)))))
        return to_input_tensor(images), torch.from_numpy(self.labels[indices])


class EmbeddingModel(nn.Module):
    """Backbone and loss in one module, so DDP synchronises the classifier weights with the backbone."""

    def __init__(self, backbone: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.backbone, self.loss = backbone, loss

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(self.backbone(images), labels)


def build_model(config: EmbeddingConfig, num_classes: int) -> EmbeddingModel:
    """The backbone and loss of ``config``, initialised from its seed."""
    torch.manual_seed(config.seed)
    backbone = build_backbone(config.backbone, config.embedding_dim)
    return EmbeddingModel(backbone, build_loss(config.loss, num_classes, config.embedding_dim, config.margin, config.scale))


def kill_switch() -> Callable[[int], None] | None:
    """Fault injection for the resume tests: ``DMLFACES_FAULT_KILL_AT_STEP=N`` SIGKILLs the process after step N."""
    at = os.environ.get("DMLFACES_FAULT_KILL_AT_STEP")
    if not at:
        return None

    def kill(step: int) -> None:
        if step == int(at):
            os.kill(os.getpid(), signal.SIGKILL)

    return kill


def train_embedding(train_root: str | Path, out_dir: str | Path, config: EmbeddingConfig, resume: bool = False) -> dict:
    """Train on ``train_root`` and write ``backbone.pt`` and ``history.json`` to ``out_dir`` (rank 0).

    Checkpoints go to ``out_dir/checkpoints``; ``resume`` continues from the last one.
    Returns the training history.
    """
    context = init_distributed(config.device)
    out_dir = Path(out_dir)
    source = FaceBatches(
        train_root, config.seed, cache=config.cache_images, threads=config.loader_threads, augment=config.augment
    )
    model = build_model(config, source.num_classes)
    # foreach: one kernel per update step for all tensors (torch picks it on GPUs only); the same bits as the
    # per-tensor loop (tests/train/test_embedding.py), a few percent of a CPU step saved.
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, foreach=True
    )
    total_steps = config.epochs * (len(source) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + np.cos(np.pi * min(step, total_steps) / max(total_steps, 1)))
    )
    loop = LoopConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        checkpoint_dir=out_dir / "checkpoints",
        checkpoint_every=config.checkpoint_every,
        seed=config.seed,
        amp=config.amp,
        description="embedding",
        on_step=kill_switch(),
        fingerprint=json.dumps({"config": dataclasses.asdict(config), "images_digest": source.digest}, sort_keys=True),
    )
    history = train_loop(model, optimizer, scheduler, source, loop, context, resume=resume)
    if context.is_main:
        save_backbone(model.backbone, config, out_dir / BACKBONE_FILE)
        write_json(
            out_dir / HISTORY_FILE,
            {
                "config": dataclasses.asdict(config),
                "identities": source.num_classes,
                "images": len(source),
                "world_size": context.world_size,
                "device": str(context.device),
                **history,
            },
        )
    return history


def load_config(params_path: str | Path, section: str = "embedding") -> EmbeddingConfig:
    """The ``embedding`` section of ``params.yaml`` as a validated config."""
    return load_section(EmbeddingConfig, params_path, section)
