"""1:N identification: search each probe template against a gallery of enrolled subjects.

Scores are cosines between unit template descriptors; a gallery subject's score is the best over
its gallery templates. Closed set: rank-k accuracy over *mated* probes (whose subject is enrolled),
the mate's rank counting every other subject scoring at least as high (ties count against the
probe). Open set (NIST FRVT 1:N conventions): a search returns a candidate when the top score is
strictly above a threshold; FPIR is the fraction of *non-mated* probes (subject not enrolled, as
the probes of the other gallery's subjects in IJB-C's G1/G2 split) that return one, TPIR the
fraction of mated probes whose mate is at rank 1 and above the threshold. TPIR at a target FPIR
takes the lowest threshold whose FPIR does not exceed the target (the exact rule of ``roc``).

insightface's ``ijb_1n.py`` instead searches the union G1+G2 (every probe mated) and derives its
"far" from all non-mate scores; pass the union gallery to reproduce its rank accuracies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dmlfaces.data.ijb import OneToNList
from dmlfaces.eval.roc import false_accepts_allowed
from dmlfaces.eval.scoring import template_rows

RANKS: tuple[int, ...] = (1, 5)
FPIRS: tuple[float, ...] = (1e-2, 1e-1)


@dataclass(frozen=True, eq=False)
class IdentificationResult:
    """1:N metrics of one gallery and one probe list.

    Attributes:
        rank_accuracy: rank k -> fraction of mated probes with the mate at rank <= k (NaN without mated probes).
        tpir_at_fpir: target FPIR -> TPIR (NaN without non-mated probes, i.e. a closed-set search).
        mated, non_mated: probe counts.
    """

    rank_accuracy: dict[int, float]
    tpir_at_fpir: dict[float, float]
    mated: int
    non_mated: int

    def to_dict(self) -> dict[str, object]:
        """JSON-able: rank keys as 'rank_1', FPIR keys formatted with ``:g``; NaN becomes None."""
        return {
            **{f"rank_{k}": _json_float(v) for k, v in self.rank_accuracy.items()},
            "tpir_at_fpir": {f"{f:g}": _json_float(v) for f, v in self.tpir_at_fpir.items()},
            "mated_probes": self.mated,
            "non_mated_probes": self.non_mated,
        }


def identify(
    gallery: np.ndarray,
    gallery_subjects: np.ndarray,
    probes: np.ndarray,
    probe_subjects: np.ndarray,
    *,
    ranks: Sequence[int] = RANKS,
    fpirs: Sequence[float] = FPIRS,
    block_bytes: int = 64 << 20,
) -> IdentificationResult:
    """Closed-set rank accuracy and open-set TPIR at FPIR (see the module docstring).

    Args:
        gallery: (G, D) unit descriptors; gallery_subjects: (G,) their subject ids (a subject may
            have several gallery templates).
        probes: (Q, D) unit descriptors; probe_subjects: (Q,) their subject ids.
        block_bytes: size bound of one (probes x gallery) score block.
    """
    gallery_subjects, probe_subjects = np.asarray(gallery_subjects), np.asarray(probe_subjects)
    if len(gallery) == 0 or len(gallery_subjects) != len(gallery) or len(probe_subjects) != len(probes):
        raise ValueError("need a non-empty gallery and one subject id per gallery and probe template")
    enrolled, subject_column = np.unique(gallery_subjects, return_inverse=True)
    # Gallery columns grouped by subject, so a subject's best template is one maximum.reduceat.
    order = np.argsort(subject_column, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(subject_column[order]) != 0])
    gallery_t = np.ascontiguousarray(np.asarray(gallery, dtype=np.float64)[order].T)
    mate = np.minimum(np.searchsorted(enrolled, probe_subjects), len(enrolled) - 1)
    mated = enrolled[mate] == probe_subjects

    rank = np.zeros(len(probes), dtype=np.int64)
    mate_score = np.full(len(probes), -np.inf)
    top_score = np.empty(len(probes))
    step = max(1, block_bytes // (8 * len(order)))
    for start in range(0, len(probes), step):
        rows = slice(start, start + step)
        scores = np.asarray(probes[rows], dtype=np.float64) @ gallery_t
        if len(starts) < len(order):
            scores = np.maximum.reduceat(scores, starts, axis=1)
        top_score[rows] = scores.max(axis=1)
        own = scores[np.arange(len(scores)), mate[rows]]
        rank[rows] = np.count_nonzero(scores >= own[:, None], axis=1)
        mate_score[rows] = np.where(mated[rows], own, -np.inf)

    mated_rank = rank[mated]
    rank_accuracy = {int(k): float(np.mean(mated_rank <= k)) if len(mated_rank) else math.nan for k in ranks}
    # A mated search is identified at a threshold when its mate is at rank 1 and strictly above it.
    hit = np.where(rank == 1, mate_score, -np.inf)[mated]
    non_mated_top = np.sort(top_score[~mated])[::-1]
    tpir = {}
    for fpir in fpirs:
        if len(non_mated_top) == 0 or len(hit) == 0:
            tpir[float(fpir)] = math.nan
            continue
        allowed = false_accepts_allowed(fpir, len(non_mated_top))
        threshold = non_mated_top[allowed] if allowed < len(non_mated_top) else -np.inf
        tpir[float(fpir)] = float(np.count_nonzero(hit > threshold) / len(hit))
    return IdentificationResult(
        rank_accuracy=rank_accuracy, tpir_at_fpir=tpir, mated=int(mated.sum()), non_mated=int((~mated).sum())
    )


def evaluate_one_to_n(
    templates: np.ndarray,
    descriptors: np.ndarray,
    one_to_n: Mapping[str, OneToNList],
    *,
    ranks: Sequence[int] = RANKS,
    fpirs: Sequence[float] = FPIRS,
) -> dict[str, dict[str, IdentificationResult]]:
    """Every gallery list against every probe list of a protocol (``IJBProtocol.one_to_n``).

    Args:
        templates: (T,) sorted unique template ids; descriptors: (T, D) unit rows.
        one_to_n: lists keyed like "1N_gallery_G1", "1N_probe_mixed" (keys with "gallery" / "probe").
    Returns:
        result[gallery key][probe key]; empty when the protocol has no 1:N lists.
    Raises:
        KeyError: a list names a template without a descriptor (named in the message).
    """
    galleries = {k: v for k, v in one_to_n.items() if "gallery" in k}
    probe_lists = {k: v for k, v in one_to_n.items() if "probe" in k}
    results: dict[str, dict[str, IdentificationResult]] = {}
    for gallery_key, gallery in galleries.items():
        gallery_rows = descriptors[template_rows(templates, gallery.template_ids)]
        results[gallery_key] = {}
        for probe_key, probe in probe_lists.items():
            probe_rows = descriptors[template_rows(templates, probe.template_ids)]
            results[gallery_key][probe_key] = identify(
                gallery_rows, gallery.subject_ids, probe_rows, probe.subject_ids, ranks=ranks, fpirs=fpirs
            )
    return results


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value
