"""1:N identification on a hand-checkable 2-D example: ranks, open-set TPIR at FPIR, protocol lists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dmlfaces.data.ijb import OneToNList
from dmlfaces.eval.identification import evaluate_one_to_n, identify


def at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


# Gallery: subject 10 at 0 deg; subject 20 at 90 deg and at 80 deg (its best template counts).
GALLERY = np.array([at(0), at(90), at(80)])
GALLERY_SUBJECTS = np.array([10, 20, 20])
# Probes: 10 at 35 deg (cos 35 = .819 to 10 beats cos 45 = .707 to 20: rank 1); 20 at 30 deg (.866 to 10
# beats cos 50 = .643 to 20: rank 2); non-mated 30 at 15 deg (top .966) and at -60 deg (top .5).
PROBES = np.array([at(35), at(30), at(15), at(-60)])
PROBE_SUBJECTS = np.array([10, 20, 30, 30])


def test_hand_checked_ranks_and_tpir() -> None:
    result = identify(GALLERY, GALLERY_SUBJECTS, PROBES, PROBE_SUBJECTS, ranks=(1, 2, 5), fpirs=(0.1, 0.5, 1.0))
    assert result.rank_accuracy == {1: 0.5, 2: 1.0, 5: 1.0}
    assert (result.mated, result.non_mated) == (2, 2)
    # FPIR 0.1: no non-mated search may return a candidate: threshold .966, the rank-1 mate (.819) fails.
    # FPIR 0.5: one may: threshold .5, the rank-1 mate passes; the rank-2 mate never counts.
    assert result.tpir_at_fpir == {0.1: 0.0, 0.5: 0.5, 1.0: 0.5}
    assert result.to_dict() == {
        "rank_1": 0.5,
        "rank_2": 1.0,
        "rank_5": 1.0,
        "tpir_at_fpir": {"0.1": 0.0, "0.5": 0.5, "1": 0.5},
        "mated_probes": 2,
        "non_mated_probes": 2,
    }


def test_ties_count_against_the_probe_and_closed_set_has_no_tpir() -> None:
    # The probe is equally close to both subjects: rank 2, not 1.
    result = identify(
        np.eye(2), np.array([1, 2]), np.full((1, 2), math.sqrt(0.5)), np.array([1]), ranks=(1, 2), fpirs=(0.1,), block_bytes=8
    )
    assert result.rank_accuracy == {1: 0.0, 2: 1.0}
    assert math.isnan(result.tpir_at_fpir[0.1]) and result.to_dict()["tpir_at_fpir"] == {"0.1": None}


def test_evaluate_one_to_n_pairs_every_gallery_with_every_probe_list() -> None:
    templates = np.array([1, 2, 3, 4, 5, 6, 7])
    descriptors = np.vstack([GALLERY, PROBES])
    lists = {
        "1N_gallery_G1": OneToNList(np.array([1, 2, 3]), GALLERY_SUBJECTS),
        "1N_gallery_G2": OneToNList(np.array([2, 3]), np.array([20, 20])),
        "1N_probe_mixed": OneToNList(np.array([4, 5, 6, 7]), PROBE_SUBJECTS),
    }
    results = evaluate_one_to_n(templates, descriptors, lists, ranks=(1,), fpirs=(0.5,))
    assert set(results) == {"1N_gallery_G1", "1N_gallery_G2"} and set(results["1N_gallery_G1"]) == {"1N_probe_mixed"}
    assert results["1N_gallery_G1"]["1N_probe_mixed"].rank_accuracy == {1: 0.5}
    # Against G2 alone only the subject-20 probe is mated, and it is rank 1 there.
    only_20 = results["1N_gallery_G2"]["1N_probe_mixed"]
    assert (only_20.mated, only_20.non_mated, only_20.rank_accuracy) == (1, 3, {1: 1.0})
    with pytest.raises(KeyError, match="template 8 is unknown"):
        evaluate_one_to_n(templates, descriptors, {**lists, "1N_probe_x": OneToNList(np.array([8]), np.array([10]))})
