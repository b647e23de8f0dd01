"""IJB-B/C-style verification of several set aggregators side by side: the workflow behind ``dmlfaces verify``.

Real data: ``dmlfaces verify --ijb PATH/IJBC --backbone CKPT --out results/ijbc`` aligns every loose crop from
its 5 points, extracts features (flip test), describes every template with each aggregator (the baselines
and any trained ``aggregator.pt``), scores all 1:1 pairs, and writes TAR at FAR by both rules with subject
bootstrap intervals, plus 1:N identification when the gallery/probe lists are present.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from torch import nn

from dmlfaces.data.ijb import IJBProtocol
from dmlfaces.eval.identification import evaluate_one_to_n
from dmlfaces.eval.templates import check_crop_features
from dmlfaces.eval.verification import FARS, OneToOneReport, evaluate_one_to_one
from dmlfaces.features import FeatureSet
from dmlfaces.models.aggregators import build_aggregator
from dmlfaces.models.templates import describe_templates

BASELINES = ("mean", "norm_weighted", "media_template")


def aggregators(dim: int, trained: Mapping[str, str | Path] | None = None) -> dict[str, nn.Module]:
    """The untrained baselines and the trained aggregators (name -> ``aggregator.pt``), in evaluation mode."""
    from dmlfaces.train.aggregator import load_aggregator

    methods = {name: build_aggregator(name, dim).eval() for name in BASELINES}
    methods.update({name: load_aggregator(path) for name, path in (trained or {}).items()})
    return methods


def trained_aggregators(root: str | Path) -> dict[str, Path]:
    """``root/<name>/aggregator.pt`` of every trained variant, the coreset model first."""
    found = {p.parent.name: p for p in Path(root).glob("*/aggregator.pt")}
    return {name: found[name] for name in sorted(found, key=lambda n: (n != "coreset", n))}


def describe_protocol(methods: Mapping[str, nn.Module], protocol: IJBProtocol, crops: FeatureSet,
                      device: str = "auto") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Template descriptors of every method: name -> (templates (T,), unit descriptors (T, D)).

    Raises:
        ValueError: the features belong to other crops, or some are NaN/inf/zero (named).
    """
    if list(crops.names) != list(protocol.crop_names):
        raise ValueError(f"the features list {len(crops.names)} crops that are not those of {protocol.root} "
                         f"({protocol.num_crops} crops): extract them from this protocol")
    check_crop_features(crops.features * crops.norms[:, None], protocol.crop_names)
    described = {}
    for name, aggregator in methods.items():
        templates, rows, _ = describe_templates(aggregator, crops.features, crops.norms, protocol.template_ids,
                                                protocol.media_ids, device=device)
        described[name] = (templates, rows)
    return described


def verify_protocol(methods: Mapping[str, nn.Module], protocol: IJBProtocol, crops: FeatureSet, *, resamples: int = 200,
                    seed: int = 0, keep_scores: bool = False, device: str = "auto") -> tuple[OneToOneReport, dict]:
    """1:1 report of every method (with subject-bootstrap intervals when 1:N lists name the subjects) and
    the 1:N results as a JSON-able dict (empty without gallery/probe lists)."""
    described = describe_protocol(methods, protocol, crops, device)
    subjects = protocol.template_subjects() if protocol.one_to_n else None
    report = evaluate_one_to_one(described, protocol.pairs, protocol.pair_labels, fars=FARS,
                                 template_subjects=subjects, resamples=resamples if subjects is not None else 0,
                                 seed=seed, keep_scores=keep_scores)
    one_to_n = {name: {gallery: {probe: result.to_dict() for probe, result in probes.items()}
                       for gallery, probes in evaluate_one_to_n(templates, rows, protocol.one_to_n).items()}
                for name, (templates, rows) in described.items()} if protocol.one_to_n else {}
    return report, one_to_n
