"""The settings of an aggregator training run (``params.yaml`` sections ``aggregator`` and ``aggregator_variants``).

Torch-free, so that ``dmlfaces check-params`` and the book's text helpers read and check them without loading
torch; ``dmlfaces.train.aggregator`` trains from them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from dmlfaces.errors import ParameterError
from dmlfaces.models.choices import ATTENTION_LAYERS, FIRST_PICKS, NORM_ENCODINGS, PICK_LOGITS
from dmlfaces.params import (
    AUTO_DEVICE,
    check_choice,
    check_device,
    check_positive_ints,
    check_range,
    check_types,
    load_section,
    read_params,
)

TRAINABLE = ("coreset", "attention_pooling")
HEAD_INITS = ("class_means", "random")
LR_SCHEDULES = ("constant", "multistep")
CLIP_VIEWS = ("ours", "official")
OUR_VIEWS = CLIP_VIEWS[0]  # our augmentation of the precomputed training views, extract-views' default


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
    real_clip_rate: float = 0.3  # fraction of a template's clips taken from real video clips, where there are any
    templates_per_identity: int = 8
    epochs: int = 6
    batch_size: int = 20
    lr: float = 1e-4
    gamma_lr: float | None = 0.01  # learning rate of gamma's own group (None: lr); at lr 1e-4 gamma stays near its 0.01 start
    weight_decay: float = 1e-3
    max_grad_norm: float = 1.0
    margin: float = 0.8
    h: float = 0.333
    scale: float = 48.0
    seed: int = 0
    checkpoint_every: int = 100
    device: str = AUTO_DEVICE
    amp: bool = True
    # Each departure from the official code (dmlfaces.models.coreset_changes.CHANGES), at our value.
    pick_logits: str = "log_distance"
    first_pick: str = "argmax"
    norm_encoding: str = "sin_cos_halves"
    attention: str = "ours"
    head_init: str = "class_means"
    clip_views: str = "ours"
    lr_schedule: str = "constant"
    flip_test: bool = True  # evaluation only: IJB templates from flip-test crop features (False: single passes)

    def __post_init__(self) -> None:
        check_choice("aggregator", "method", self.method, TRAINABLE)
        for key, choices in (
            ("pick_logits", PICK_LOGITS),
            ("first_pick", FIRST_PICKS),
            ("norm_encoding", NORM_ENCODINGS),
            ("attention", ATTENTION_LAYERS),
            ("head_init", HEAD_INITS),
            ("clip_views", CLIP_VIEWS),
            ("lr_schedule", LR_SCHEDULES),
        ):
            check_choice("aggregator", key, getattr(self, key), choices)
        check_positive_ints(
            self,
            "aggregator",
            ("k", "heads", "max_set_size", "max_clip", "templates_per_identity", "epochs", "batch_size", "checkpoint_every"),
        )
        check_range("aggregator", "dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_range("aggregator", "real_clip_rate", self.real_clip_rate, 0.0, 1.0)
        for key in ("lr", "gamma_lr", "tau", "scale", "h", "max_grad_norm"):
            check_range("aggregator", key, getattr(self, key), 0.0, low_open=True)
        check_range("aggregator", "gamma", self.gamma, 0.0)  # the exponent of quality in the FPS metric; 0: none
        check_range("aggregator", "margin", self.margin, 0.0, math.pi / 2, high_open=True)
        check_range("aggregator", "weight_decay", self.weight_decay, 0.0)
        check_range("aggregator", "seed", self.seed, 0)
        check_device("aggregator", "device", self.device)


def load_config(params_path: str | Path, variant: str | None = None) -> AggregatorConfig:
    """``params.yaml``'s ``aggregator`` section, changed by ``aggregator_variants.<variant>`` when given."""
    config = load_section(AggregatorConfig, params_path, "aggregator")
    if variant is None:
        return config
    ablations = read_params(params_path).get("aggregator_variants") or {}
    if not isinstance(ablations, dict) or variant not in ablations:
        raise ParameterError(
            f"{params_path}: no variant {variant!r} in aggregator_variants; "
            f"found {sorted(ablations) if isinstance(ablations, dict) else ablations!r}"
        )
    changes = ablations[variant] or {}
    if not isinstance(changes, dict):
        raise ParameterError(
            f"{params_path}: aggregator_variants.{variant} must be a mapping of aggregator keys to values, not {changes!r}"
        )
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(AggregatorConfig)})
    if unknown:
        raise ParameterError(
            f"{params_path}: unknown keys {unknown} in aggregator_variants.{variant}; "
            f"allowed: the aggregator keys {sorted(f.name for f in dataclasses.fields(AggregatorConfig))}"
        )
    try:
        check_types(AggregatorConfig, "aggregator", changes)
        return dataclasses.replace(config, **changes)
    except ValueError as error:
        raise ParameterError(f"{params_path}: aggregator_variants.{variant}: {error}") from None
