"""The official FaceCoresetNet checkpoint (the PyTorch Lightning ``.ckpt`` its README names) as our coreset model.

The official ``FaceCoresetNet`` Lightning module (ligaripash/FaceCoresetNet at 6e13498, ``train_val_template.py``)
saves its backbone (``model.*``, again as ``template_model.module.*``), its AdaFace head (``head.*``) and the
aggregator (``aggregate_model.*``, ``net_template.TemplateAggregateModel``). The aggregator's keys map onto a
:class:`~dmlfaces.models.aggregators.CoresetAggregator` with every official setting
(:data:`~dmlfaces.models.coreset_changes.FAITHFUL`): ``nn.MultiheadAttention``'s stacked input projection splits
into our query, key and value maps. The modules the official ``__init__`` builds and its forward never calls are
ignored and listed; the backbone loads with :func:`dmlfaces.models.checkpoints.load_backbone` from the same file.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from dmlfaces.models.aggregators import CoresetAggregator
from dmlfaces.models.checkpoints import CheckpointError, CheckpointKeyError

PREFIX = "aggregate_model."
HEADS = 8  # TransformerDecoderLayerOrig(nhead=8) in TemplateAggregateModel
DROPOUT = 0.1
_DIRECT = {
    "gamma": "gamma",
    "pos_trans_norm.weight": "encode_norm.weight",
    "pos_trans_norm.bias": "encode_norm.bias",
    "decoder_layer1.norm1.weight": "norm1.weight",
    "decoder_layer1.norm1.bias": "norm1.bias",
    "decoder_layer1.norm2.weight": "norm2.weight",
    "decoder_layer1.norm2.bias": "norm2.bias",
}
_ATTENTION = {"decoder_layer1.self_attn1": "self_attention", "decoder_layer1.multihead_attn1": "cross_attention"}
# Built by the official __init__, never called by its forward (the learned tau is read only in a comment).
UNUSED = (
    "tau",
    "feature_norm_normalizer",
    "ur_center",
    "dist_from_ur_center_norm_size_balance",
    "quality_measure.",
    "decoder_layer1.self_attn2.",
    "decoder_layer1.multihead_attn2.",
    "decoder_layer1.multihead_attn3.",
    "decoder_layer1.norm3.",
    "decoder_layer1.norm4.",
)


class _LightningUnpickler(pickle.Unpickler):
    """Unpickles a Lightning checkpoint without Lightning: its ``AttributeDict`` of hyper-parameters reads as a dict."""

    def find_class(self, module: str, name: str) -> object:
        if module.split(".")[0] in ("pytorch_lightning", "lightning") and name == "AttributeDict":
            return dict
        return super().find_class(module, name)


class _lightning_pickle:  # noqa: N801 - a stand-in for the pickle module, as torch.load's pickle_module expects
    Unpickler = _LightningUnpickler
    load = staticmethod(pickle.load)


def _official_name(ours: str) -> str:
    """The official key our parameter ``ours`` is loaded from (the stacked input projection for q, k and v)."""
    direct = {value: key for key, value in _DIRECT.items()}
    if ours in direct:
        return PREFIX + direct[ours]
    module, part, leaf = ours.split(".")
    theirs = {value: key for key, value in _ATTENTION.items()}[module]
    return PREFIX + (f"{theirs}.out_proj.{leaf}" if part == "out" else f"{theirs}.in_proj_{leaf} ({part} rows)")


def _hyper_parameter(checkpoint: Mapping, name: str) -> object:
    """A Lightning checkpoint's hyper-parameter (stored as a dict or an argparse Namespace), or None."""
    hyper = checkpoint.get("hyper_parameters") or {}
    return hyper.get(name) if isinstance(hyper, Mapping) else getattr(hyper, name, None)


def _map_attention(key: str, value: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """Our keys for one official attention key (the stacked input projection splits in three), or None."""
    for theirs, ours in _ATTENTION.items():
        if not key.startswith(theirs + "."):
            continue
        leaf = key[len(theirs) + 1 :]
        if leaf in ("in_proj_weight", "in_proj_bias"):
            kind = leaf.removeprefix("in_proj_")
            return {f"{ours}.{part}.{kind}": chunk for part, chunk in zip(("query", "key", "value"), value.chunk(3))}
        if leaf in ("out_proj.weight", "out_proj.bias"):
            return {f"{ours}.out.{leaf.removeprefix('out_proj.')}": value}
    return None


def load_official_coreset(path: str | os.PathLike[str], k: int | None = None) -> tuple[CoresetAggregator, list[str]]:
    """The aggregator of an official FaceCoresetNet ``.ckpt``, in evaluation mode, and the ignored keys.

    Args:
        k: picks; by default the checkpoint's ``hyper_parameters.coreset_size`` (3 in the released model).
    Raises:
        CheckpointKeyError: naming the missing and unexpected ``aggregate_model.*`` keys.
        CheckpointError: unreadable, not a FaceCoresetNet checkpoint, tensors of the wrong shape, or no K.
    """
    path = Path(path)
    # Lightning checkpoints pickle their hyper-parameters, so weights_only loading cannot read them: like
    # torch.load itself, this runs what the file names, so load checkpoints from a source you trust.
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_lightning_pickle)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint; give the official FaceCoresetNet.ckpt") from None
    except (pickle.UnpicklingError, EOFError, RuntimeError, ModuleNotFoundError, AttributeError) as error:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({error}); give the official FaceCoresetNet.ckpt "
            "(a PyTorch Lightning checkpoint)"
        ) from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not any(str(key).startswith(PREFIX) for key in state):
        raise CheckpointError(
            f"{path}: no '{PREFIX}*' keys, so not a FaceCoresetNet checkpoint; give the Lightning .ckpt "
            "of the official repository (pretrained_models/FaceCoresetNet.ckpt)"
        )
    k = k if k is not None else _hyper_parameter(checkpoint, "coreset_size")
    if not isinstance(k, int) or k < 1:
        raise CheckpointError(f"{path}: hyper_parameters.coreset_size is {k!r}; pass k (the released model uses 3)")
    theirs = {key[len(PREFIX) :]: value for key, value in state.items() if key.startswith(PREFIX)}
    if "gamma" not in theirs and isinstance(_hyper_parameter(checkpoint, "gamma"), (int, float)):
        theirs["gamma"] = torch.tensor(float(_hyper_parameter(checkpoint, "gamma")))  # a fixed gamma is not saved
    norm_weight = theirs.get("pos_trans_norm.weight")
    dim = norm_weight.shape[0] if isinstance(norm_weight, torch.Tensor) else 512
    model = CoresetAggregator(
        dim,
        heads=HEADS,
        k=k,
        dropout=DROPOUT,
        pick_logits="distance",
        first_pick="sample",
        norm_encoding="interleaved_2pi",
        attention="official",
    )
    ours: dict[str, torch.Tensor] = {}
    ignored, unexpected = [], []
    for key, value in theirs.items():
        if key in _DIRECT:
            ours[_DIRECT[key]] = value.reshape(()) if _DIRECT[key] == "gamma" else value
        elif (mapped := _map_attention(key, value)) is not None:
            ours.update(mapped)
        elif key.startswith(UNUSED):
            ignored.append(PREFIX + key)
        else:
            unexpected.append(PREFIX + key)
    expected = model.state_dict()
    missing = sorted({_official_name(key) for key in set(expected) - set(ours)})
    shapes = sorted(
        f"{_official_name(key)} {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
        for key, value in ours.items()
        if value.shape != expected[key].shape
    )
    if missing or unexpected:
        raise CheckpointKeyError(
            path,
            "FaceCoresetNet",
            missing,
            sorted(unexpected),
            model=f"the official aggregator (dim {dim}, {HEADS} heads)",
            fix="give the official FaceCoresetNet.ckpt, or a checkpoint of its net_template.py at 6e13498",
        )
    if shapes:
        raise CheckpointError(
            f"{path}: FaceCoresetNet checkpoint tensors of the wrong shape for dim {dim}: {'; '.join(shapes[:8])}; "
            "give the official FaceCoresetNet.ckpt, or a checkpoint of its net_template.py at 6e13498"
        )
    model.load_state_dict(ours)
    model.flip_test = False  # its evaluation reads single-pass crop features (dmlfaces.verify.reads_flip_test)
    return model.eval(), sorted(ignored)
