"""IJB-B/C-style verification of several set aggregators side by side: the workflow behind ``dmlfaces verify``.

Real data: ``dmlfaces verify --ijb PATH/IJBC --backbone CKPT --out results/ijbc`` aligns every loose crop from
its 5 points, extracts features (flip test), describes every template with each aggregator (the baselines
and any trained ``aggregator.pt``), scores all 1:1 pairs, and writes TAR at FAR by both rules with subject
bootstrap intervals, plus 1:N identification when the gallery/probe lists are present.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.ijb import IJBProtocol
from dmlfaces.eval.identification import evaluate_one_to_n
from dmlfaces.eval.templates import insightface_template_descriptors
from dmlfaces.eval.verification import FARS, OneToOneReport, evaluate_one_to_one
from dmlfaces.features import FeatureSet
from dmlfaces.models.aggregators import build_aggregator
from dmlfaces.models.coreset_changes import CHANGES, FAITHFUL_VARIANT, change_variant
from dmlfaces.models.templates import describe_templates_by
from dmlfaces.params import AUTO_DEVICE

BASELINES = ("mean", "norm_weighted", "media_template")
# insightface's IJB evaluator with its default flags: each crop's raw flip-sum feature (its norm kept as a
# weight, N1) times its detector score (D1), averaged per media and summed (F2: the flip test, as extracted).
# "media_template" is the same recipe at N0 D0 F2.
FIELD_DEFAULT = "media_template_N1D1"
REPORTED_BASELINES = (*BASELINES, FIELD_DEFAULT)  # what every trained method is compared with
OFFICIAL_CHECKPOINT = (
    "facecoresetnet_official"  # the aggregator of the official FaceCoresetNet .ckpt (verify --coreset-checkpoint)
)
_NAMED = 5  # how many crops or templates an error message names


def compared_methods(dim: int, trained: Mapping[str, str | Path] | None = None) -> dict[str, nn.Module]:
    """The untrained baselines and the trained aggregators (name -> ``aggregator.pt``), in evaluation mode;
    each trained one says in its ``flip_test`` which crop features it is evaluated on (``reads_flip_test``)."""
    from dmlfaces.train.aggregator import load_aggregator

    methods = {name: build_aggregator(name, dim).eval() for name in BASELINES}
    methods.update({name: load_aggregator(path) for name, path in (trained or {}).items()})
    return methods


def reads_flip_test(method: nn.Module) -> bool:
    """Whether ``method`` describes templates from flip-test crop features: every method but those whose
    evaluation, as FaceCoresetNet's, reads single passes (aggregator ``flip_test: false``, the official checkpoint)."""
    return bool(getattr(method, "flip_test", True))


def trained_aggregators(root: str | Path) -> dict[str, Path]:
    """``root/<name>/aggregator.pt`` of every trained variant, the coreset model first."""
    found = {p.parent.name: p for p in Path(root).glob("*/aggregator.pt")}
    return {name: found[name] for name in sorted(found, key=lambda n: (n != "coreset", n))}


def match_crops(protocol: IJBProtocol, crops: FeatureSet) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """Row of ``crops`` holding each protocol crop, matched by crop name, whatever the file's row order.

    Rows are matched by name because the file stores each row's name beside it: a file in another order (a
    sorted one, another tool's) is the same features, and reordering by the name loses nothing. A crop may be
    absent only when the file records it as skipped (``dmlfaces extract --skip-bad-landmarks``); the templates
    that lost crops are then warned about and returned.

    Returns:
        rows (N,) int64 index into ``crops`` per protocol crop, -1 for a skipped one; lost: template id ->
        (crops lost, crops in the protocol), only for templates that lost some.
    Raises:
        DataFormatError: naming the features file: crops of another protocol, crops missing without being
            recorded as skipped, or a template whose every crop was skipped.
    """
    where = _features_path(crops)
    fix = f"extract the features from {protocol.root} ('dmlfaces extract --ijb {protocol.root}')"
    foreign = ~np.isin(crops.names, protocol.crop_names)  # the protocol names a crop once per template listing it
    if foreign.any():
        raise DataFormatError(
            where,
            f"key 'names': {np.count_nonzero(foreign)} of {len(crops.names)} crops are not crops of"
            f" {protocol.root}: {_first(crops.names[foreign])}",
            fix=fix,
        )
    rows = pd.Index(crops.names).get_indexer(protocol.crop_names).astype(np.int64)
    absent = rows < 0
    unrecorded = absent & ~np.isin(protocol.crop_names, crops.skipped)
    if unrecorded.any():
        raise DataFormatError(
            where,
            f"key 'names': {np.count_nonzero(unrecorded)} of {protocol.num_crops} crops of"
            f" {protocol.root} are missing and not recorded as skipped: {_first(protocol.crop_names[unrecorded])}"
            f" (templates {_first(np.unique(protocol.template_ids[unrecorded]))})",
            fix=fix,
        )
    if not absent.any():
        return rows, {}
    templates, totals = np.unique(protocol.template_ids, return_counts=True)
    lost_counts = np.bincount(np.searchsorted(templates, protocol.template_ids[absent]), minlength=len(templates))
    emptied = templates[lost_counts == totals]
    if len(emptied):
        raise DataFormatError(
            where,
            f"every crop of {len(emptied)} templates was skipped: templates {_first(emptied)}; their pairs cannot be scored",
            expected="at least one crop per template",
            fix="correct those crops' landmarks (see 'dmlfaces extract' without --skip-bad-landmarks) and extract again",
        )
    lost = {int(t): (int(k), int(n)) for t, k, n in zip(templates, lost_counts, totals) if k}
    warnings.warn(
        f"{where}: {np.count_nonzero(absent)} crops were skipped at extraction, so {len(lost)} templates are"
        " described by the rest: "
        + ", ".join(f"template {t} lost {k} of {n}" for t, (k, n) in list(lost.items())[:_NAMED])
        + (", ..." if len(lost) > _NAMED else ""),
        stacklevel=2,
    )
    return rows, lost


def every_crop_row(protocol: IJBProtocol, crops: FeatureSet, needed_for: str) -> np.ndarray:
    """(N,) row of ``crops`` holding each protocol crop (``match_crops``), for a measure that needs every crop
    (single-image pairs, the picks' quality): a crop skipped at extraction is an error here, not a warning.

    Raises:
        DataFormatError: naming the features file: what ``match_crops`` refuses, or crops skipped at extraction.
    """
    skipped = np.setdiff1d(np.intersect1d(protocol.crop_names, crops.skipped), crops.names)  # recorded and absent
    if len(skipped):
        raise DataFormatError(
            _features_path(crops),
            f"crops of {protocol.root} skipped at extraction: {len(skipped)} ({_first(skipped)});"
            f" every crop is needed for {needed_for}",
            fix="correct those crops' landmarks and extract again without --skip-bad-landmarks",
        )
    return match_crops(protocol, crops)[0]


def describe_protocol(
    methods: Mapping[str, nn.Module], protocol: IJBProtocol, crops: FeatureSet, device: str = AUTO_DEVICE
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Template descriptors of every method and of ``FIELD_DEFAULT``: name -> (templates (T,), unit descriptors (T, D)).

    Raises:
        DataFormatError: the features belong to other crops (see ``match_crops``), or some are NaN/inf/zero
            (named with their templates).
    """
    return _describe(methods, protocol, crops, match_crops(protocol, crops)[0], device)


def _describe(
    methods: Mapping[str, nn.Module], protocol: IJBProtocol, crops: FeatureSet, rows: np.ndarray, device: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``describe_protocol`` with the rows of ``match_crops``."""
    present = rows >= 0
    reorder = not np.array_equal(rows, np.arange(len(rows)))  # IJB-C's features are 1 GB: copy only to reorder
    names, template_ids, media_ids = protocol.crop_names[present], protocol.template_ids[present], protocol.media_ids[present]
    passes = {"flip": (crops.features, crops.norms)}
    if not all(map(reads_flip_test, methods.values())):
        passes["single"] = crops.single_pass()
    for key, (features, norms) in passes.items():
        if key == "single" and features is crops.features:  # single-pass crops (official pickle, --no-flip): one copy
            passes[key] = passes["flip"]
            continue
        passes[key] = (features[rows[present]], norms[rows[present]]) if reorder else (features, norms)
        _check_finite_non_zero(crops, *passes[key], names, template_ids, "" if key == "flip" else "single-pass ")
    described = describe_rows(methods, *passes["flip"], template_ids, media_ids, device, single_pass=passes.get("single"))
    features, norms = passes["flip"]
    described[FIELD_DEFAULT] = insightface_template_descriptors(
        features * norms[:, None], template_ids, media_ids, protocol.detector_scores[present], normalise=False
    )
    return described


def describe_rows(
    methods: Mapping[str, nn.Module],
    features: np.ndarray,
    norms: np.ndarray,
    template_ids: np.ndarray,
    media_ids: np.ndarray,
    device: str = AUTO_DEVICE,
    single_pass: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Template descriptors of every method from per-row arrays (the protocol's rows, or a stressed copy of
    them: ``add_bursts``, a quality cut): name -> (templates (T,), unit descriptors (T, D)), in ``methods`` order.

    Args:
        features: (M, D) unit flip-test crop features; norms, template_ids, media_ids: (M,).
        single_pass: the same rows' single-pass features (M, D) and norms (M,), for the methods that do not
            ``reads_flip_test``; needed only when there are such methods.
    """
    single = [name for name, method in methods.items() if not reads_flip_test(method)]
    if single and single_pass is None:
        raise ValueError(f"methods {', '.join(single)} are evaluated on single-pass crop features: pass single_pass")
    described = describe_templates_by(
        {n: m for n, m in methods.items() if n not in single}, features, norms, template_ids, media_ids, device=device
    )
    if single:
        described.update(
            describe_templates_by({n: methods[n] for n in single}, *single_pass, template_ids, media_ids, device=device)
        )
    return {name: described[name][:2] for name in methods}


def baseline_comparisons(names: Sequence[str]) -> list[tuple[str, str]]:
    """(method, baseline) for every trained method of ``names`` against every baseline among them."""
    baselines = [name for name in names if name in REPORTED_BASELINES]
    return [(name, baseline) for name in names if name not in baselines for baseline in baselines]


def change_comparisons(names: Sequence[str]) -> list[tuple[str, str]]:
    """(variant, faithful) for each one-change variant of ``names`` and for the coreset (every change at once),
    when the faithful variant is among them: what each of our changes to FaceCoresetNet does."""
    if FAITHFUL_VARIANT not in names:
        return []
    changed = [change_variant(change) for change in CHANGES] + ["coreset"]
    return [(name, FAITHFUL_VARIANT) for name in changed if name in names]


def _check_finite_non_zero(
    crops: FeatureSet, features: np.ndarray, norms: np.ndarray, names: np.ndarray, template_ids: np.ndarray, which: str = ""
) -> None:
    """Refuse NaN/inf or zero crop features (M, D) / norms (M,), naming crops (M,) and templates (M,), and
    the templates left with no non-zero crop at all; ``which`` ("single-pass ") says which features they are."""
    finite = np.isfinite(features).all(axis=1) & np.isfinite(norms)
    bad = ~finite | (norms == 0) | ~np.any(features != 0, axis=1)
    if not bad.any():
        return
    templates, index = np.unique(template_ids, return_inverse=True)
    dead = templates[np.bincount(index, weights=(~bad).astype(float), minlength=len(templates)) == 0]
    crops_named = ", ".join(f"{str(n)!r} (template {t})" for n, t in zip(names[bad][:_NAMED], template_ids[bad][:_NAMED]))
    problem = (
        f"{np.count_nonzero(~finite)} {which}crop features are NaN/inf and {np.count_nonzero(bad & finite)} are zero:"
        f" {crops_named}{', ...' if np.count_nonzero(bad) > _NAMED else ''}"
    )
    if len(dead):
        problem += f"; every crop of templates {_first(dead)} has a zero or non-finite feature"
    raise DataFormatError(
        _features_path(crops),
        problem,
        expected="finite, non-zero features for every crop",
        fix="re-extract those crops (check their images and landmarks) or drop them from the protocol",
    )


def _features_path(crops: FeatureSet) -> Path | str:
    """The file ``crops`` came from, or a stand-in for features built in memory."""
    return crops.path if crops.path is not None else "features (in memory)"


def _first(values: np.ndarray) -> str:
    """The first few ``values`` (quoted when strings), with '...' when there are more."""
    shown = [repr(str(v)) if isinstance(v, str) else str(v) for v in values[:_NAMED].tolist()]
    return ", ".join(shown) + (", ..." if len(values) > _NAMED else "")


def verify_protocol(
    methods: Mapping[str, nn.Module],
    protocol: IJBProtocol,
    crops: FeatureSet,
    *,
    resamples: int = 200,
    seed: int = 0,
    keep_scores: bool = False,
    device: str = AUTO_DEVICE,
) -> tuple[OneToOneReport, dict]:
    """1:1 report of every method and of insightface's recipe at its default flags (``FIELD_DEFAULT``), with
    subject-bootstrap intervals and every trained method's paired difference to every baseline when 1:N lists
    name the subjects, and the 1:N results as a JSON-able dict (empty without gallery/probe lists)."""
    rows, lost = match_crops(protocol, crops)
    return verify_descriptors(
        _describe(methods, protocol, crops, rows, device),
        protocol,
        lost=lost,
        resamples=resamples,
        seed=seed,
        keep_scores=keep_scores,
    )


def verify_descriptors(
    described: Mapping[str, tuple[np.ndarray, np.ndarray]],
    protocol: IJBProtocol,
    *,
    lost: Mapping[int, tuple[int, int]] | None = None,
    resamples: int = 200,
    seed: int = 0,
    keep_scores: bool = False,
) -> tuple[OneToOneReport, dict]:
    """``verify_protocol`` on descriptors already made (``describe_protocol``), for a caller that reuses them.

    Args:
        described: name -> (templates (T,), unit descriptors (T, D)); lost: the templates that lost crops, as
            ``match_crops`` returns them.
    """
    subjects = protocol.template_subjects() if protocol.one_to_n else None
    report = evaluate_one_to_one(
        described,
        protocol.pairs,
        protocol.pair_labels,
        fars=FARS,
        template_subjects=subjects,
        resamples=resamples if subjects is not None else 0,
        seed=seed,
        keep_scores=keep_scores,
        comparisons=baseline_comparisons(list(described)) + change_comparisons(list(described))
        if subjects is not None and resamples
        else (),
    )
    report = dataclasses.replace(report, lost_crops=dict(lost or {}))
    one_to_n = (
        {
            name: {
                gallery: {probe: result.to_dict() for probe, result in probes.items()}
                for gallery, probes in evaluate_one_to_n(templates, rows, protocol.one_to_n).items()
            }
            for name, (templates, rows) in described.items()
        }
        if protocol.one_to_n
        else {}
    )
    return report, one_to_n
