"""Backbone checkpoints, read and written in one place: this package's ``backbone.pt`` and the two public layouts.

* ``backbone.pt`` (``save_backbone``): ``dmlfaces_backbone`` (the backbone name), ``embedding_dim`` and the
  ``state_dict``; every checkpoint the package writes goes through ``write_checkpoint`` (atomic, the same
  state giving the same bytes).

* insightface arcface_torch ``backbone.pth``: a plain state dict with this package's module names
  (``conv1 bn1 prelu layer1..4 bn2 fc features``); RGB input normalised as (x / 255 - 0.5) / 0.5.
* AdaFace ``.ckpt`` (PyTorch Lightning): ``state_dict`` with keys ``model.input_layer.*``,
  ``model.body.<i>.res_layer.<j>.*`` / ``shortcut_layer.*`` and ``model.output_layer.*`` (AdaFace's
  net.py), plus the classifier ``head.*`` which is not part of the backbone. BGR input, same scaling.

Both load into :class:`dmlfaces.models.backbones.IResNet`; the returned model takes RGB and flips the
channels itself when the checkpoint expects BGR. A key mismatch raises :class:`CheckpointKeyError`
naming the missing and unexpected keys.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from dmlfaces.errors import UserError
from dmlfaces.io import atomic_path
from dmlfaces.models.backbones import DEPTHS, WIDTHS, IResNet, build_backbone


class EmbeddingSettings(Protocol):
    """What a ``backbone.pt`` records of its training run (``train.embedding.EmbeddingConfig`` has both)."""

    backbone: str
    embedding_dim: int


# AdaFace module index -> arcface_torch name, inside one residual unit and around the body.
_UNIT_PARTS = {
    "res_layer.0": "bn1",
    "res_layer.1": "conv1",
    "res_layer.2": "bn2",
    "res_layer.3": "prelu",
    "res_layer.4": "conv2",
    "res_layer.5": "bn3",
    "shortcut_layer.0": "downsample.0",
    "shortcut_layer.1": "downsample.1",
}
_OUTER_PARTS = {
    "input_layer.0": "conv1",
    "input_layer.1": "bn1",
    "input_layer.2": "prelu",
    "output_layer.0": "bn2",
    "output_layer.3": "fc",
    "output_layer.4": "features",
}


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be loaded; the message names the file and the fix."""


class CheckpointKeyError(CheckpointError):
    """The checkpoint's keys do not match the model: names the missing and unexpected keys."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        layout: str,
        missing: list[str],
        unexpected: list[str],
        model: str = "the backbone",
        fix: str = "check the backbone depth (r18/r34/r50/r100) and the layout",
    ) -> None:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "") if keys else "none"

        super().__init__(
            f"{os.fspath(path)}: {layout} checkpoint does not match {model}. Missing keys: {show(missing)}. "
            f"Unexpected keys: {show(unexpected)}. Fix: {fix}."
        )
        self.missing, self.unexpected = missing, unexpected


def arcface_torch_backbone(name: str) -> IResNet:
    """An empty IResNet shaped like arcface_torch's ``get_model(name)``."""
    return IResNet(DEPTHS[name], WIDTHS, pool_shortcut=False, affine_features=True, channels_bgr=False)


def adaface_backbone(name: str, affine_features: bool = False) -> IResNet:
    """An empty IResNet shaped like AdaFace's ``build_model('ir_<depth>')`` (its last BatchNorm1d has no
    affine parameters in the released models; some forks add them)."""
    return IResNet(DEPTHS[name], WIDTHS, pool_shortcut=True, affine_features=affine_features, channels_bgr=True)


def _unit_index(layers: tuple[int, ...]) -> list[tuple[int, int]]:
    """AdaFace body position i -> (stage, unit) of the arcface_torch names."""
    return [(stage, unit) for stage, units in enumerate(layers, start=1) for unit in range(units)]


def _adaface_to_ours(key: str, layers: tuple[int, ...]) -> str | None:
    """Our name for an AdaFace backbone key, or None when it is not a backbone key."""
    if not key.startswith("model."):
        return None
    key = key[len("model.") :]
    match = re.fullmatch(r"body\.(\d+)\.((?:res_layer|shortcut_layer)\.\d+)\.(.+)", key)
    if match:
        index, part, leaf = int(match[1]), match[2], match[3]
        units = _unit_index(layers)
        if index >= len(units) or part not in _UNIT_PARTS:
            return f"unmapped.{key}"
        stage, unit = units[index]
        return f"layer{stage}.{unit}.{_UNIT_PARTS[part]}.{leaf}"
    for prefix, ours in _OUTER_PARTS.items():
        if key.startswith(prefix + "."):
            return ours + key[len(prefix) :]
    return f"unmapped.{key}"


def _ours_to_adaface(key: str, layers: tuple[int, ...]) -> str:
    match = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", key)
    if match:
        stage, unit, rest = int(match[1]), int(match[2]), match[3]
        index = _unit_index(layers).index((stage, unit))
        for theirs, ours in _UNIT_PARTS.items():
            if rest.startswith(ours + "."):
                return f"model.body.{index}.{theirs}{rest[len(ours) :]}"
    for theirs, ours in _OUTER_PARTS.items():
        if key.startswith(ours + "."):
            return f"model.{theirs}{key[len(ours) :]}"
    raise KeyError(key)


def _depth_from_units(units_per_stage: dict[int, int], path: Path) -> str:
    layers = tuple(units_per_stage.get(stage, 0) for stage in range(1, 5))
    for name, depth in DEPTHS.items():
        if depth == layers:
            return name
    raise ValueError(f"{path}: {layers} units per stage match no IResNet depth {DEPTHS}")


def _strict_load(model: IResNet, state: dict[str, torch.Tensor], path: Path, layout: str) -> IResNet:
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointKeyError(path, layout, missing, unexpected)
    model.load_state_dict(state)
    return model.eval()


def load_arcface_torch(path: str | os.PathLike[str], name: str | None = None) -> IResNet:
    """An IResNet from an insightface arcface_torch ``backbone.pth`` (depth inferred when ``name`` is None)."""
    path = Path(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if name is None:
        units: dict[int, int] = {}
        for key in state:
            match = re.match(r"layer(\d)\.(\d+)\.", key)
            if match:
                units[int(match[1])] = max(units.get(int(match[1]), 0), int(match[2]) + 1)
        name = _depth_from_units(units, path)
    return _strict_load(arcface_torch_backbone(name), state, path, "arcface_torch")


def load_adaface(path: str | os.PathLike[str], name: str | None = None) -> IResNet:
    """An IResNet from an AdaFace Lightning ``.ckpt`` (classifier ``head.*`` keys are ignored)."""
    path = Path(path)
    # Lightning checkpoints pickle their hyper-parameters, so weights_only loading cannot read them.
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    raw = checkpoint.get("state_dict", checkpoint)
    if name is None:
        bodies = [int(m[1]) for k in raw if (m := re.match(r"model\.body\.(\d+)\.", k))]
        total = max(bodies) + 1 if bodies else 0
        name = next((n for n, d in DEPTHS.items() if sum(d) == total), None)
        if name is None:
            raise ValueError(f"{path}: {total} residual units match no IResNet depth {DEPTHS}")
    layers = DEPTHS[name]
    state = {}
    for key, value in raw.items():
        ours = _adaface_to_ours(key, layers)
        if ours is not None:
            state[ours] = value
    affine = "model.output_layer.4.weight" in raw
    return _strict_load(adaface_backbone(name, affine), state, path, "AdaFace")


def write_checkpoint(state: object, path: str | os.PathLike[str]) -> None:
    """``torch.save`` ``state`` to ``path`` atomically, the same state giving the same bytes.

    Saved through a file object: given a path, ``torch.save`` names the archive's inner folder after the file,
    here the temporary's random name, so two identical runs would write different bytes.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        torch.save(state, stream)


def save_backbone(backbone: nn.Module, config: EmbeddingSettings, path: str | os.PathLike[str]) -> None:
    """Write a trained backbone as this package's ``backbone.pt``, with the settings that rebuild it (read by
    ``load_backbone``); ``config`` is the run's ``EmbeddingConfig`` (its ``backbone`` and ``embedding_dim``)."""
    write_checkpoint(
        {
            "dmlfaces_backbone": config.backbone,
            "embedding_dim": config.embedding_dim,
            "state_dict": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
        },
        path,
    )


def save_arcface_torch(model: IResNet, path: str | os.PathLike[str]) -> None:
    """Write ``model`` as an arcface_torch ``backbone.pth`` (atomically)."""
    write_checkpoint(model.state_dict(), path)


def save_adaface(model: IResNet, name: str, path: str | os.PathLike[str]) -> None:
    """Write ``model`` as an AdaFace-style Lightning checkpoint (atomically)."""
    layers = DEPTHS[name]
    state = {_ours_to_adaface(k, layers): v for k, v in model.state_dict().items()}
    write_checkpoint({"state_dict": state}, path)


def load_backbone(path: str | os.PathLike[str], name: str | None = None) -> IResNet:
    """Any backbone this package reads: its own ``backbone.pt``, an AdaFace ``.ckpt`` or an arcface_torch
    ``backbone.pth`` (told apart by their contents)."""
    path = Path(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(checkpoint, dict) and "dmlfaces_backbone" in checkpoint:
        model = build_backbone(checkpoint["dmlfaces_backbone"], checkpoint["embedding_dim"])
        return _strict_load(model, checkpoint["state_dict"], path, "dmlfaces")
    if isinstance(checkpoint, dict) and ("state_dict" in checkpoint or any(k.startswith("model.") for k in checkpoint)):
        return load_adaface(path, name)
    return load_arcface_torch(path, name)
