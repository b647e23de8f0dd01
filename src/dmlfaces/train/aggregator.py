"""Train a set aggregator (the coreset model, or the attention-pooling baseline) on templates of a frozen embedding.

The recipe of FaceCoresetNet, adapted to a CPU: the embedding is frozen, so the features of every training
image and of ``views`` augmented copies of it are computed once (as CAFace does) and training only moves
the aggregator and the margin head. Each global batch draws one set size N ~ U{1..max_set_size}; each
template of an identity is filled with "clips" of 1 to 3 views of one seed image (simulated bursts of
near-duplicate frames). The AdaFace loss acts on the aggregated descriptor, whose norm is the set's quality.

``dmlfaces extract-views --backbone results/embedding/backbone.pt --data data/train --out views.npz``, then
``dmlfaces train-aggregator --views views.npz --out results/aggregator/coreset``
(also under ``torchrun``: the same loop, DDP and checkpoints as the embedding training).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dmlfaces.data.folders import read_image_folder
from dmlfaces.data.images import load_rgb
from dmlfaces.data.transforms import augment_face
from dmlfaces.features import extract_features
from dmlfaces.io import atomic_path, write_json
from dmlfaces.models.aggregators import build_aggregator
from dmlfaces.models.checkpoints import load_backbone
from dmlfaces.models.losses import AdaFaceLoss
from dmlfaces.params import check_choice, check_positive_ints, load_section, read_params
from dmlfaces.train.distributed import init_distributed
from dmlfaces.train.embedding import kill_switch
from dmlfaces.train.loop import LoopConfig, epoch_order, train_loop

AGGREGATOR_FILE = "aggregator.pt"
HISTORY_FILE = "history.json"
TRAINABLE = ("coreset", "attention_pooling")


@dataclass
class AggregatorConfig:
    """Everything that defines an aggregator training run (``params.yaml`` section ``aggregator``)."""

    method: str = "coreset"
    k: int = 3
    heads: int = 8
    dropout: float = 0.1
    gamma: float = 0.01
    learn_gamma: bool = True
    tau: float = 1.0
    max_set_size: int = 20
    max_clip: int = 3
    templates_per_identity: int = 8
    epochs: int = 6
    batch_size: int = 20
    lr: float = 1e-4
    gamma_lr: float | None = None  # learning rate of gamma's own group (None: lr)
    weight_decay: float = 1e-3
    max_grad_norm: float = 1.0
    margin: float = 0.8
    h: float = 0.333
    scale: float = 48.0
    seed: int = 0
    checkpoint_every: int = 100
    device: str = "auto"
    amp: bool = True

    def __post_init__(self) -> None:
        check_choice("aggregator", "method", self.method, TRAINABLE)
        check_positive_ints(self, "aggregator", ("k", "heads", "max_set_size", "max_clip", "templates_per_identity",
                                                 "epochs", "batch_size", "checkpoint_every"))
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"aggregator.dropout = {self.dropout}; it must lie in [0, 1)")
        if self.lr <= 0 or self.tau <= 0 or (self.gamma_lr is not None and self.gamma_lr <= 0):
            raise ValueError(f"aggregator.lr = {self.lr}, gamma_lr = {self.gamma_lr}, tau = {self.tau}: each must be positive")


def precompute_views(backbone_path: str | Path, train_root: str | Path, views: int, seed: int, out: str | Path,
                     device: str = "auto") -> None:
    """Write the features of every training image and of ``views`` augmented copies to ``out`` (npz).

    The file holds ``features`` (I, 1 + views, D) float32 unit rows, ``norms`` (I, 1 + views) and
    ``labels`` (I,); view 0 is the image itself, view v > 0 an :func:`augment_face` drawn from (seed, image, v).
    """
    if views < 0:
        raise ValueError(f"views = {views}; it must be a non-negative integer")
    folder = read_image_folder(train_root)
    per_image = 1 + views

    def load(j: int) -> np.ndarray:
        image, view = divmod(j, per_image)
        pixels = load_rgb(folder.paths[image])
        return pixels if view == 0 else augment_face(pixels, np.random.default_rng([seed, 4099, image, view]))

    features, norms = extract_features(load_backbone(backbone_path), load, len(folder.paths) * per_image, device=device)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, features=features.reshape(len(folder.paths), per_image, -1),
                     norms=norms.reshape(len(folder.paths), per_image), labels=folder.labels.astype(np.int64))


def read_views(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays written by :func:`precompute_views`."""
    with np.load(path) as views:
        return {name: views[name] for name in ("features", "norms", "labels")}


class TemplateBatches:
    """Training templates drawn from precomputed view features; a batch is a function of (seed, epoch, indices).

    Item i of an epoch is a template of identity ``i % identities``. The set size is drawn once per global
    batch (from the batch's position in the epoch order), so every rank of a DDP run pads to the same N.
    """

    def __init__(self, features: np.ndarray, norms: np.ndarray, labels: np.ndarray, config: AggregatorConfig) -> None:
        self.features, self.norms, self.labels, self.config = features, norms, labels, config
        self.identities = int(labels.max()) + 1
        order = np.argsort(labels, kind="stable")
        starts = np.searchsorted(labels[order], np.arange(self.identities + 1))
        self.images_of = [order[starts[c]:starts[c + 1]] for c in range(self.identities)]
        self._epoch, self._position = -1, np.empty(0, np.int64)

    def __len__(self) -> int:
        return self.identities * self.config.templates_per_identity

    def _set_size(self, first_index: int, epoch: int) -> int:
        if epoch != self._epoch:
            self._epoch = epoch
            self._position = np.argsort(epoch_order(self.config.seed, epoch, len(self)))
        global_batch = int(self._position[first_index]) // self.config.batch_size
        return int(np.random.default_rng([self.config.seed, 5381, epoch, global_batch]).integers(1, self.config.max_set_size + 1))

    def template(self, index: int, epoch: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(size,) image and view indices of template ``index``: clips of 1..max_clip views of a seed image."""
        rng = np.random.default_rng([self.config.seed, 6151, epoch, index])
        images_of = self.images_of[index % self.identities]
        images, views = [], []
        while len(images) < size:
            seed_image = images_of[rng.integers(len(images_of))]
            length = int(rng.integers(1, self.config.max_clip + 1))
            images += [seed_image] * length
            views += rng.integers(0, self.features.shape[1], length).tolist()
        return np.array(images[:size]), np.array(views[:size])

    def batch(self, indices: np.ndarray, epoch: int) -> tuple[torch.Tensor, ...]:
        """(B, N, D) features, (B, N) norms, (B, N) mask (all True), (B,) labels."""
        size = self._set_size(int(indices[0]), epoch)
        picked = [self.template(int(i), epoch, size) for i in indices]
        images = np.stack([p[0] for p in picked])
        views = np.stack([p[1] for p in picked])
        labels = self.labels[images[:, 0]]
        return (torch.from_numpy(self.features[images, views]), torch.from_numpy(self.norms[images, views]),
                torch.ones(images.shape, dtype=torch.bool), torch.from_numpy(labels))


class AggregatorModel(nn.Module):
    """Aggregator and margin head in one module (DDP synchronises both)."""

    def __init__(self, aggregator: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.aggregator, self.loss = aggregator, loss

    def forward(self, features, norms, mask, labels) -> torch.Tensor:
        descriptor, norm = self.aggregator(features, norms, mask)
        return self.loss(descriptor * norm[:, None], labels)


def build_aggregator_from_config(config: AggregatorConfig, dim: int) -> nn.Module:
    """The (untrained) aggregator of ``config``."""
    if config.method == "coreset":
        return build_aggregator("coreset", dim, heads=config.heads, k=config.k, dropout=config.dropout,
                                gamma=config.gamma, learn_gamma=config.learn_gamma, tau=config.tau)
    return build_aggregator(config.method, dim)


def save_aggregator(aggregator: nn.Module, config: AggregatorConfig, dim: int, path: str | Path) -> None:
    """Write the trained aggregator with the settings that rebuild it (read by ``load_aggregator``)."""
    state = {"config": dataclasses.asdict(config), "dim": dim,
             "state_dict": {k: v.detach().cpu() for k, v in aggregator.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_aggregator(path: str | Path) -> nn.Module:
    """A trained aggregator written by :func:`save_aggregator`, in evaluation mode."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    aggregator = build_aggregator_from_config(AggregatorConfig(**state["config"]), state["dim"])
    aggregator.load_state_dict(state["state_dict"])
    return aggregator.eval()


def train_aggregator(views_path: str | Path, out_dir: str | Path, config: AggregatorConfig, resume: bool = False) -> dict:
    """Train on templates drawn from the view features ``views_path`` (:func:`precompute_views`).

    Writes ``aggregator.pt`` and ``history.json`` to ``out_dir`` (rank 0); checkpoints to ``out_dir/checkpoints``.
    """
    context = init_distributed(config.device)
    out_dir = Path(out_dir)
    views = read_views(views_path)
    source = TemplateBatches(views["features"], views["norms"], views["labels"], config)
    dim = views["features"].shape[-1]
    torch.manual_seed(config.seed)
    loss = AdaFaceLoss(source.identities, dim, margin=config.margin, h=config.h, scale=config.scale)
    # The head starts at the identities' mean features: the frozen embedding already separates them.
    prototypes = views["features"][:, 0]
    centres = np.stack([prototypes[images].mean(0) for images in source.images_of])
    loss.kernel.data.copy_(torch.from_numpy(centres.T / np.linalg.norm(centres, axis=1)))
    model = AggregatorModel(build_aggregator_from_config(config, dim), loss)
    gamma = [p for n, p in model.named_parameters() if n.endswith("gamma")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("gamma")]
    optimizer = torch.optim.AdamW([{"params": rest, "weight_decay": config.weight_decay},
                                   {"params": gamma, "weight_decay": 0.0, "lr": config.gamma_lr or config.lr}], lr=config.lr)
    loop = LoopConfig(epochs=config.epochs, batch_size=config.batch_size, checkpoint_dir=out_dir / "checkpoints",
                      checkpoint_every=config.checkpoint_every, seed=config.seed, max_grad_norm=config.max_grad_norm,
                      amp=config.amp, description=f"aggregator ({config.method})", on_step=kill_switch(),
                      fingerprint=json.dumps({"config": dataclasses.asdict(config), "views": str(views_path),
                                              "templates": len(source)}, sort_keys=True))
    history = train_loop(model, optimizer, None, source, loop, context, resume=resume)
    if context.is_main:
        save_aggregator(model.aggregator, config, dim, out_dir / AGGREGATOR_FILE)
        write_json(out_dir / HISTORY_FILE, {"config": dataclasses.asdict(config), "identities": source.identities,
                                            "templates_per_epoch": len(source), "world_size": context.world_size,
                                            "gamma": float(model.aggregator.gamma.detach()) if config.method == "coreset" else None,
                                            "device": str(context.device), **history})
    return history


def load_config(params_path: str | Path, variant: str | None = None) -> AggregatorConfig:
    """``params.yaml``'s ``aggregator`` section, changed by ``aggregator_variants.<variant>`` when given."""
    config = load_section(AggregatorConfig, params_path, "aggregator")
    if variant is None:
        return config
    ablations = read_params(params_path).get("aggregator_variants") or {}
    if variant not in ablations:
        raise ValueError(f"{params_path}: no variant {variant!r} in aggregator_variants; found {sorted(ablations)}")
    changes = ablations[variant] or {}
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(AggregatorConfig)})
    if unknown:
        raise ValueError(f"{params_path}: unknown keys {unknown} in aggregator_variants.{variant}")
    return dataclasses.replace(config, **changes)
