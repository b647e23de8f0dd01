"""Train a set aggregator (the coreset model, or the attention-pooling baseline) on templates of a frozen embedding.

The recipe of FaceCoresetNet, adapted to a CPU: the embedding is frozen, so the features of every training
image and of ``views`` augmented copies of it are computed once (as CAFace does) and training only moves
the aggregator and the margin head. Each global batch draws one set size N ~ U{1..max_set_size}; each
template of an identity is filled with "clips" of 1 to 3 views of one seed image (simulated bursts of
near-duplicate frames) and, where the identity has video clips, with runs of consecutive real frames
(a fraction ``real_clip_rate`` of the clips). The AdaFace loss acts on the aggregated descriptor, whose
norm is the set's quality.

``dmlfaces extract-views --backbone results/embedding/backbone.pt --data data/train [--clips data/train_clips]
--out views.npz``, then
``dmlfaces train-aggregator --views views.npz --out results/aggregator/coreset``
(also under ``torchrun``: the same loop, DDP and checkpoints as the embedding training).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.folders import ClipFolder, read_clip_folder, read_image_folder
from dmlfaces.data.images import load_rgb
from dmlfaces.data.transforms import augment_face, official_copy_augmentation, official_image_augmentation
from dmlfaces.errors import ParameterError
from dmlfaces.features import extract_features
from dmlfaces.io import atomic_path, write_json
from dmlfaces.models.aggregators import build_aggregator
from dmlfaces.models.checkpoints import load_backbone, write_checkpoint
from dmlfaces.models.losses import AdaFaceLoss
from dmlfaces.params import AUTO_DEVICE, check_choice
from dmlfaces.train.aggregator_config import CLIP_VIEWS, OUR_VIEWS, AggregatorConfig
from dmlfaces.train.distributed import init_distributed
from dmlfaces.train.embedding import kill_switch
from dmlfaces.train.loop import LoopConfig, epoch_order, train_loop

AGGREGATOR_FILE = "aggregator.pt"
HISTORY_FILE = "history.json"
# The official MultiStepLR drops the rate x 0.1 at epoch 20 of 150 (train.sh): after this fraction of training.
OFFICIAL_LR_DROP_AT = 20 / 150


def precompute_views(
    backbone_path: str | Path,
    train_root: str | Path,
    views: int,
    seed: int,
    out: str | Path,
    device: str = AUTO_DEVICE,
    clips_root: str | Path | None = None,
    augmentation: str = OUR_VIEWS,
) -> None:
    """Write the features of every training image, of ``views`` augmented copies, and of video frames to ``out`` (npz).

    The file holds ``augmentation`` (the name below), ``features`` (I, 1 + views, D) float32 unit rows, ``norms``
    (I, 1 + views) and ``labels`` (I,);
    view 0 is the image itself, view v > 0 an augmented copy drawn from (seed, image, v). With ``clips_root``
    (``<identity>/<clip>/<frame>.jpg``, identities named as in ``train_root``) it also holds ``clip_features``
    (F, D), ``clip_norms`` (F,), ``clip_ids`` (F,) and ``clip_labels`` (C,); otherwise those are empty.

    ``augmentation`` (``CLIP_VIEWS``): ``"ours"``, an :func:`augment_face` per view, features with the flip test;
    ``"official"``, FaceCoresetNet's: one :func:`official_image_augmentation` per image shared by its views (the
    official dataset augments the seed image once per item), then an :func:`official_copy_augmentation`
    (RandAugment and a random flip) per view, features of single passes as the official training computes them
    (a flip test would undo the random flip). The ``"official"`` file is ``--official-views`` of training.
    """
    if views < 0:
        raise ValueError(f"views = {views}; it must be a non-negative integer")
    check_choice("extract-views", "augmentation", augmentation, CLIP_VIEWS)
    folder = read_image_folder(train_root)
    per_image = 1 + views
    frames = _clip_frames_of(folder.identities, clips_root)

    def load(j: int) -> np.ndarray:
        if j >= len(folder.paths) * per_image:
            return load_rgb(frames.paths[j - len(folder.paths) * per_image])
        image, view = divmod(j, per_image)
        pixels = load_rgb(folder.paths[image])
        if view == 0:
            return pixels
        if augmentation == "ours":
            return augment_face(pixels, np.random.default_rng([seed, 4099, image, view]))
        seed_image = official_image_augmentation(pixels, np.random.default_rng([seed, 4111, image]))
        return official_copy_augmentation(seed_image, np.random.default_rng([seed, 4127, image, view]))

    count = len(folder.paths) * per_image
    features, norms = extract_features(
        load_backbone(backbone_path), load, count + len(frames.paths), device=device, flip=augmentation == "ours"
    )
    label_of = {name: label for label, name in enumerate(folder.identities)}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                augmentation=np.array(augmentation),
                features=features[:count].reshape(len(folder.paths), per_image, -1),
                norms=norms[:count].reshape(len(folder.paths), per_image),
                labels=folder.labels.astype(np.int64),
                clip_features=features[count:],
                clip_norms=norms[count:],
                clip_ids=frames.clips,
                clip_labels=np.array([label_of[name] for name in frames.clip_identities], dtype=np.int64),
            )


def _clip_frames_of(identities: list[str], clips_root: str | Path | None) -> ClipFolder:
    """The clip folder of ``clips_root`` (empty without one); every clip's identity must be a training identity."""
    if clips_root is None:
        return ClipFolder(root=Path(), paths=[], clips=np.empty(0, np.int64), clip_identities=[])
    frames = read_clip_folder(clips_root)
    unknown = sorted(set(frames.clip_identities) - set(identities))
    if unknown:
        raise DataFormatError(
            Path(clips_root) / unknown[0],
            f"{len(unknown)} clip identities have no training images",
            expected="clip identity folders named like the training image folders",
            fix="rename the clip folders after their identities' training folders, or remove them",
        )
    return frames


def read_views(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays written by :func:`precompute_views`."""
    with np.load(path) as views:
        return {name: views[name] for name in views.files}


class TemplateBatches:
    """Training templates drawn from precomputed view features; a batch is a function of (seed, epoch, indices).

    Item i of an epoch is a template of identity ``i % identities``. The set size is drawn once per global
    batch (from the batch's position in the epoch order), so every rank of a DDP run pads to the same N.
    Templates index one pool of rows: the I * V views (row ``image * V + view``), then the F video frames.
    A clip's copies are views of its seed image drawn with replacement from all V (``clip_views`` "ours"), or
    augmented views 1..V-1 that no earlier copy of the template used (``"official"``: every copy augmented on its
    own, the clip lengths as the official code draws them).
    """

    def __init__(self, views: dict[str, np.ndarray], config: AggregatorConfig, source: str = "the views file") -> None:
        self.config = config
        images, per_image, dim = views["features"].shape
        if config.clip_views == "official" and per_image - 1 < config.max_clip:
            raise ParameterError(
                f"clip_views official draws up to max_clip = {config.max_clip} distinct augmented views "
                f"per clip, but {source} holds {per_image - 1} per image; extract at least "
                f"{config.max_clip} (aggregator_views.official_views)"
            )
        self.labels, self.views_per_image = views["labels"], per_image
        self.pool_features = np.concatenate([views["features"].reshape(-1, dim), views["clip_features"]])
        self.pool_norms = np.concatenate([views["norms"].reshape(-1), views["clip_norms"]])
        self.identities = int(self.labels.max()) + 1
        self.images_of = _members(self.labels, self.identities)
        # Clip c's frames are pool rows clip_start[c] .. clip_start[c + 1] - 1.
        clip_ids, clip_labels = views["clip_ids"], views["clip_labels"]
        self.clip_start = images * per_image + np.searchsorted(clip_ids, np.arange(len(clip_labels) + 1))
        self.clips_of = _members(clip_labels, self.identities)
        self.pool_labels = np.concatenate([np.repeat(self.labels, per_image), clip_labels[clip_ids]])
        self._epoch, self._position = -1, np.empty(0, np.int64)

    def __len__(self) -> int:
        return self.identities * self.config.templates_per_identity

    def _set_size(self, first_index: int, epoch: int) -> int:
        if epoch != self._epoch:
            self._epoch = epoch
            self._position = np.argsort(epoch_order(self.config.seed, epoch, len(self)))
        global_batch = int(self._position[first_index]) // self.config.batch_size
        return int(np.random.default_rng([self.config.seed, 5381, epoch, global_batch]).integers(1, self.config.max_set_size + 1))

    def template(self, index: int, epoch: int, size: int) -> np.ndarray:
        """(size,) pool rows of template ``index``: clips of 1..max_clip views of a seed image, or runs of real frames."""
        rng = np.random.default_rng([self.config.seed, 6151, epoch, index])
        identity = index % self.identities
        images_of, clips_of = self.images_of[identity], self.clips_of[identity]
        rows: list[int] = []
        used: dict[int, set[int]] = {}  # official clips: the views each seed image has given this template
        while len(rows) < size:
            if len(clips_of) and rng.random() < self.config.real_clip_rate:
                clip = clips_of[rng.integers(len(clips_of))]
                first, end = self.clip_start[clip], self.clip_start[clip + 1]
                length = int(rng.integers(1, end - first + 1))
                start = first + int(rng.integers(0, end - first - length + 1))
                rows += range(start, start + length)
            elif self.config.clip_views == "official":
                rows += self._official_clip(rng, images_of[rng.integers(len(images_of))], size - len(rows), used)
            else:
                seed_image = images_of[rng.integers(len(images_of))]
                length = int(rng.integers(1, self.config.max_clip + 1))
                rows += (seed_image * self.views_per_image + rng.integers(0, self.views_per_image, length)).tolist()
        return np.array(rows[:size])

    def _official_clip(self, rng: np.random.Generator, seed_image: int, remaining: int, used: dict[int, set[int]]) -> list[int]:
        """Pool rows of one clip as ``data_template.create_fixed_size_template`` makes it: min(max_clip, U{1..remaining})
        copies, so the clips fill the template exactly, each an augmented view of the seed image that no earlier
        copy of this template used (``used``: seed image -> views taken), until every view has been used."""
        length = min(self.config.max_clip, int(rng.integers(1, remaining + 1)))
        views = np.arange(1, self.views_per_image)
        free = np.setdiff1d(views, np.fromiter(used.setdefault(seed_image, set()), np.int64))
        if len(free) < length:
            used[seed_image].clear()
            free = views
        copies = rng.choice(free, length, replace=False)
        used[seed_image].update(copies.tolist())
        return (seed_image * self.views_per_image + copies).tolist()

    def batch(self, indices: np.ndarray, epoch: int) -> tuple[torch.Tensor, ...]:
        """(B, N, D) features, (B, N) norms, (B, N) mask (all True), (B,) labels."""
        size = self._set_size(int(indices[0]), epoch)
        rows = np.stack([self.template(int(i), epoch, size) for i in indices])
        return (
            torch.from_numpy(self.pool_features[rows]),
            torch.from_numpy(self.pool_norms[rows]),
            torch.ones(rows.shape, dtype=torch.bool),
            torch.from_numpy(self.pool_labels[rows[:, 0]]),
        )


def _members(labels: np.ndarray, classes: int) -> list[np.ndarray]:
    """For each class 0 .. classes-1, the indices i with labels[i] == class (ascending)."""
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(classes + 1))
    return [order[starts[c] : starts[c + 1]] for c in range(classes)]


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
        return build_aggregator(
            "coreset",
            dim,
            heads=config.heads,
            k=config.k,
            dropout=config.dropout,
            gamma=config.gamma,
            learn_gamma=config.learn_gamma,
            tau=config.tau,
            pick_logits=config.pick_logits,
            first_pick=config.first_pick,
            norm_encoding=config.norm_encoding,
            attention=config.attention,
        )
    return build_aggregator(config.method, dim)


def save_aggregator(aggregator: nn.Module, config: AggregatorConfig, dim: int, path: str | Path) -> None:
    """Write the trained aggregator with the settings that rebuild it (read by ``load_aggregator``)."""
    state = {
        "config": dataclasses.asdict(config),
        "dim": dim,
        "state_dict": {k: v.detach().cpu() for k, v in aggregator.state_dict().items()},
    }
    write_checkpoint(state, path)


def load_aggregator(path: str | Path) -> nn.Module:
    """A trained aggregator written by :func:`save_aggregator`, in evaluation mode; its ``flip_test`` attribute
    is the config's (which crop features its evaluation reads: ``dmlfaces.verify.reads_flip_test``)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    config = AggregatorConfig(**state["config"])
    aggregator = build_aggregator_from_config(config, state["dim"])
    aggregator.load_state_dict(state["state_dict"])
    aggregator.flip_test = config.flip_test
    return aggregator.eval()


def train_aggregator(
    views_path: str | Path,
    out_dir: str | Path,
    config: AggregatorConfig,
    resume: bool = False,
    official_views_path: str | Path | None = None,
) -> dict:
    """Train on templates drawn from the view features ``views_path`` (:func:`precompute_views`), or from
    ``official_views_path`` (written with ``augmentation="official"``) when ``config.clip_views`` is "official".

    Writes ``aggregator.pt`` and ``history.json`` to ``out_dir`` (rank 0); checkpoints to ``out_dir/checkpoints``.
    """
    if config.clip_views == "official":
        if official_views_path is None:
            raise ParameterError(
                "aggregator clip_views is 'official': pass the views written by 'extract-views "
                "--augmentation official' as --official-views"
            )
        views_path = official_views_path
    context = init_distributed(config.device)
    out_dir = Path(out_dir)
    views = read_views(views_path)
    made_by = str(views.get("augmentation", "ours"))  # files of earlier versions hold our views
    if made_by != config.clip_views:
        raise ParameterError(
            f"{views_path} holds views of the {made_by!r} augmentation, but aggregator clip_views is "
            f"{config.clip_views!r}: pass the views of 'extract-views --augmentation {config.clip_views}'"
            + (" as --official-views" if config.clip_views == "official" else " as --views")
        )
    source = TemplateBatches(views, config, source=str(views_path))
    dim = views["features"].shape[-1]
    torch.manual_seed(config.seed)
    loss = AdaFaceLoss(source.identities, dim, margin=config.margin, h=config.h, scale=config.scale)
    if config.head_init == "class_means":
        # The head starts at the identities' mean features: the frozen embedding already separates them.
        prototypes = views["features"][:, 0]
        centres = np.stack([prototypes[images].mean(0) for images in source.images_of])
        loss.kernel.data.copy_(torch.from_numpy(centres.T / np.linalg.norm(centres, axis=1)))
    else:  # the official head.py: uniform in [-1, 1] (drawn by AdaFaceLoss), each class column of unit length
        loss.kernel.data.copy_(torch.nn.functional.normalize(loss.kernel.data, dim=0))
    model = AggregatorModel(build_aggregator_from_config(config, dim), loss)
    gamma = [p for n, p in model.named_parameters() if n.endswith("gamma")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("gamma")]
    # foreach: one kernel per update step for all tensors (torch picks it on GPUs only); the same bits as the
    # per-tensor loop (tests/train/test_aggregator.py) at a fraction of a CPU step's optimizer time.
    optimizer = torch.optim.AdamW(
        [
            {"params": rest, "weight_decay": config.weight_decay},
            {"params": gamma, "weight_decay": 0.0, "lr": config.gamma_lr or config.lr},
        ],
        lr=config.lr,
        foreach=True,
    )
    scheduler = None
    if config.lr_schedule == "multistep":
        total_steps = config.epochs * (len(source) // config.batch_size)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [max(1, round(total_steps * OFFICIAL_LR_DROP_AT))], gamma=0.1)
    loop = LoopConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        checkpoint_dir=out_dir / "checkpoints",
        checkpoint_every=config.checkpoint_every,
        seed=config.seed,
        max_grad_norm=config.max_grad_norm,
        amp=config.amp,
        description=f"aggregator ({config.method})",
        on_step=kill_switch(),
        fingerprint=json.dumps(
            {"config": dataclasses.asdict(config), "views": _md5(views_path), "templates": len(source)}, sort_keys=True
        ),
    )
    history = train_loop(model, optimizer, scheduler, source, loop, context, resume=resume)
    if context.is_main:
        save_aggregator(model.aggregator, config, dim, out_dir / AGGREGATOR_FILE)
        write_json(
            out_dir / HISTORY_FILE,
            {
                "config": dataclasses.asdict(config),
                "identities": source.identities,
                "templates_per_epoch": len(source),
                "world_size": context.world_size,
                "gamma": float(model.aggregator.gamma.detach()) if config.method == "coreset" else None,
                "device": str(context.device),
                **history,
            },
        )
    return history


def _md5(path: str | Path) -> str:
    """Content hash of a file: checkpoints of a run on other view features are never resumed."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
