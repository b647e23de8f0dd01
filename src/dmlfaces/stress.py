"""Chapter 04's stresses of the template: bursts (one crop appended many times as a video) and dropping the
crops of lowest ground-truth quality; TAR at one FAR of every method, as is and under each stress.

Each stress changes the protocol's crop rows and describes the templates again with every method; the 1:1
pairs and their labels stay the protocol's. The stresses change crops, not detector scores, so insightface's
recipe with the detector score (``FIELD_DEFAULT``) is left out of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from dmlfaces.data.ijb import IJBProtocol
from dmlfaces.eval.set_properties import add_bursts, burst_shift
from dmlfaces.eval.verification import OneToOneReport, evaluate_one_to_one
from dmlfaces.features import FeatureSet
from dmlfaces.verify import FIELD_DEFAULT, describe_rows

STRESS_FAR = 1e-3  # the stresses' operating point: every SynthFaces protocol measures it


@dataclass(frozen=True)
class StressResult:
    """TAR in percent at ``STRESS_FAR`` per stress (columns "as is", "with bursts", "lowest N% dropped") and
    method (rows), as the chapter shows it; how far the bursts move each method's descriptors ((T,) ``1 - cos`` per method), and the crops dropped."""

    tars: pd.DataFrame
    shifts: dict[str, np.ndarray]
    dropped: int


def low_quality_kept(quality: np.ndarray, template_ids: np.ndarray, fraction: float) -> np.ndarray:
    """(M,) mask of the crops kept when the ``fraction`` of lowest quality is dropped; a template keeps at least
    its best crop (its crops of the template's top quality), so no template is emptied."""
    threshold = np.quantile(quality, fraction)
    best_of_template = pd.Series(quality).groupby(template_ids).transform("max").to_numpy()
    return (quality >= threshold) | (quality == best_of_template)


def tars_at(
    described: Mapping[str, tuple[np.ndarray, np.ndarray]], protocol: IJBProtocol, far: float = STRESS_FAR
) -> dict[str, float]:
    """TAR at ``far`` (exact rule) of each method's (templates, descriptors) on the protocol's 1:1 pairs."""
    report = evaluate_one_to_one(described, protocol.pairs, protocol.pair_labels, fars=[far])
    return {name: result.tar_exact[far] for name, result in report.methods.items()}


def stress_templates(
    methods: Mapping[str, nn.Module],
    protocol: IJBProtocol,
    crops: FeatureSet,
    rows: np.ndarray,
    described: Mapping[str, tuple[np.ndarray, np.ndarray]],
    report: OneToOneReport,
    quality: np.ndarray,
    *,
    burst_copies: int,
    low_quality_fraction: float,
    seed: int,
) -> StressResult:
    """Both stresses of every method's templates.

    Args:
        rows: (M,) row of ``crops`` per protocol row, -1 for a crop the features file records as skipped (it
            takes part in no template, as in the report); described, report: the unstressed descriptors and
            1:1 report; quality: (M,) ground-truth quality of each protocol row's crop.
    """
    present = rows >= 0
    features, norms = crops.features[rows[present]], crops.norms[rows[present]]
    # The same rows without the flip test, for the methods evaluated as FaceCoresetNet's code does (faithful variants).
    single_features, single_norms = (values[rows[present]] for values in crops.single_pass())
    template_ids, media_ids, quality = protocol.template_ids[present], protocol.media_ids[present], quality[present]
    with_bursts = describe_rows(
        methods,
        *add_bursts(features, norms, template_ids, media_ids, burst_copies, seed),
        single_pass=add_bursts(single_features, single_norms, template_ids, media_ids, burst_copies, seed)[:2],
    )
    keep = low_quality_kept(quality, template_ids, low_quality_fraction)
    cleaned = describe_rows(
        methods,
        features[keep],
        norms[keep],
        template_ids[keep],
        media_ids[keep],
        single_pass=(single_features[keep], single_norms[keep]),
    )
    tars = (
        pd.DataFrame(
            {
                "as is": {name: result.tar_exact[STRESS_FAR] for name, result in report.methods.items() if name != FIELD_DEFAULT},
                "with bursts": tars_at(with_bursts, protocol),
                f"lowest {low_quality_fraction:.0%} dropped": tars_at(cleaned, protocol),
            }
        )
        * 100
    )
    return StressResult(tars, burst_shift(described, with_bursts), int((~keep).sum()))
