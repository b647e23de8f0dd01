"""Bootstrap confidence intervals for TAR at FAR, resampling subjects.

Pairs are not independent: one subject's templates take part in thousands of pairs, so resampling
pairs would understate the uncertainty. The unit of resampling is the subject. One resample draws
S subjects with replacement from the S subjects of the pairs; subject s drawn m_s times contributes
m_s copies of itself. A genuine pair of subject s then counts m_s times (once per copy: its two
templates belong to the same copy), an impostor pair of subjects s and t counts m_s * m_t times
(once per choice of a copy of each), and a pair of an undrawn subject not at all. TAR at FAR is
then measured on this weighted pair set by the same two rules as the point estimate (``roc``),
exactly as sklearn would on the pair list with every pair repeated its multiplicity times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dmlfaces.eval.roc import FARS, RocHead, check_fars, check_scores, exact_rule, head_size, nearest_rule
from dmlfaces.eval.scoring import template_rows

_DENSE_SUBJECT_PAIRS = 1 << 24  # up to this many subject pairs, impostor totals use a dense matrix
_TABLE_MAX_SPAN = 1 << 26  # id span up to which ids are factorised with a table, not a sort


@dataclass(frozen=True, eq=False)
class BootstrapTar:
    """TAR at FAR over B subject resamples.

    Attributes:
        fars: (F,) target FARs.
        nearest, exact: (B, F) TAR by each rule per resample; NaN where a resample drew no genuine
            or no impostor pair.
    """

    fars: tuple[float, ...]
    nearest: np.ndarray
    exact: np.ndarray

    def interval(self, rule: str = "nearest", confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """(F,) low and (F,) high ends of the percentile interval (e.g. 2.5% and 97.5% for 0.95)."""
        return percentile_interval({"nearest": self.nearest, "exact": self.exact}[rule], confidence)


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(F,) low and high percentile ends over the (B, F) resample values, NaN rows (no genuine or no impostor
    pair drawn) left out: of one method's TARs, or of two methods' paired differences on the same resamples."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return low, high


def pair_subjects(pairs: np.ndarray, template_ids: np.ndarray, subject_ids: np.ndarray) -> np.ndarray:
    """(P, 2) subject ids of the two templates of each pair.

    Args:
        pairs: (P, 2) template ids; template_ids, subject_ids: (T,) the subject of each template.
    Raises:
        KeyError: a pair names a template without a subject. ValueError: a template has two subjects.
    """
    order = np.argsort(np.asarray(template_ids), kind="stable")
    templates, subjects = np.asarray(template_ids)[order], np.asarray(subject_ids)[order]
    clash = (templates[1:] == templates[:-1]) & (subjects[1:] != subjects[:-1])
    if clash.any():
        i = int(np.argmax(clash))
        raise ValueError(f"template {templates[i]} is given subjects {subjects[i]} and {subjects[i + 1]}")
    first = np.r_[True, templates[1:] != templates[:-1]]  # a template listed twice (one subject) is fine
    return subjects[first][template_rows(templates[first], pairs)]


def bootstrap_tar_at_far(
    scores: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    fars: Sequence[float] = FARS,
    *,
    resamples: int = 200,
    seed: int = 0,
) -> BootstrapTar:
    """TAR at FAR by both rules on ``resamples`` subject resamples (see the module docstring).

    Args:
        scores: (P,) finite scores; labels: (P,) 1 genuine, 0 impostor.
        subjects: (P, 2) subject ids of each pair's templates (``pair_subjects``).
        seed: the resamples are a function of the seed alone.
    Raises:
        ValueError: a genuine pair joins two subjects, or an impostor pair one subject.
    """
    scores, labels = check_scores(scores, labels)
    fars = check_fars(fars)
    subject_index, count = _factorise(np.asarray(subjects))
    first, second = subject_index[:, 0], subject_index[:, 1]
    wrong = (first == second) != labels
    if wrong.any():
        row = int(np.argmax(wrong))
        kind = "genuine" if labels[row] else "impostor"
        raise ValueError(
            f"pair {row} is labelled {kind} but its templates' subjects are {subjects[row, 0]} and"
            f" {subjects[row, 1]}; the subjects and the labels disagree"
        )

    genuine_per_subject = np.bincount(first[labels], minlength=count).astype(np.float64)
    impostor_totals = _SubjectPairCounts(first[~labels], second[~labels], count)
    impostors = int(np.count_nonzero(~labels))
    # Resampling moves the FAR of a score by a few percent: the point estimate's head, with its 25%
    # margin, nearly always decides; a resample whose certificate fails tries a head twice as long.
    heads: list[tuple[RocHead, np.ndarray, np.ndarray, np.ndarray]] = []

    def rules(level: int, copies: np.ndarray, impostor_total: int, genuine_total: int) -> tuple[list[float], list[float]] | None:
        if level == len(heads):
            kept = head_size(fars, impostors) << level
            head = RocHead.select(scores, labels, min(impostors, kept))
            heads.append((head, first[head.impostor_index], second[head.impostor_index], first[head.genuine_index]))
        head, impostor_a, impostor_b, genuine_subject = heads[level]
        impostor, genuine = head.counts(copies[impostor_a] * copies[impostor_b], copies[genuine_subject])
        near = nearest_rule(impostor, genuine, impostor_total, genuine_total, head.complete, fars)
        ex = exact_rule(impostor, genuine, impostor_total, genuine_total, head.complete, fars)
        return None if near is None or ex is None else (near, ex)

    rng = np.random.default_rng(seed)
    nearest = np.full((resamples, len(fars)), np.nan)
    exact = np.full((resamples, len(fars)), np.nan)
    for b in range(resamples):
        copies = np.bincount(rng.integers(0, count, count), minlength=count)
        genuine_total = int(round(genuine_per_subject @ copies))
        impostor_total = impostor_totals.total(copies)
        if genuine_total == 0 or impostor_total == 0:
            continue
        level = 0
        while (result := rules(level, copies, impostor_total, genuine_total)) is None:
            level += 1  # terminates: a head holding every impostor is complete and always decides
        nearest[b], exact[b] = result
    return BootstrapTar(fars=fars, nearest=nearest, exact=exact)


class _SubjectPairCounts:
    """Impostor pair counts per (subject, subject), to total a resample's impostor weight quickly."""

    def __init__(self, first: np.ndarray, second: np.ndarray, count: int) -> None:
        key = first.astype(np.int32 if count * count < 1 << 31 else np.int64) * count + second
        if count * count <= _DENSE_SUBJECT_PAIRS:
            # Float64 holds these integer sums exactly (far below 2**53) and lets BLAS do the product.
            self.matrix = np.bincount(key, minlength=count * count).astype(np.float64).reshape(count, count)
        else:
            self.matrix = None
            unique, self.pairs = np.unique(key, return_counts=True)
            self.first, self.second = unique // count, unique % count

    def total(self, copies: np.ndarray) -> int:
        """Sum over impostor pairs of copies[s] * copies[t]: the resample's impostor weight."""
        if self.matrix is not None:
            weights = copies.astype(np.float64)
            return int(round(weights @ (self.matrix @ weights)))
        return int(np.sum(self.pairs * copies[self.first] * copies[self.second]))


def _factorise(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense int32 indices 0..U-1 (same shape) of integer ids, numbered in increasing id order, and U."""
    low, high = int(ids.min()), int(ids.max())
    if high - low < _TABLE_MAX_SPAN:
        # Small non-negative ids (the usual subject ids) index the table directly, without a shifted copy.
        shifted = ids if 0 <= low and high < _TABLE_MAX_SPAN else ids - low
        present = np.bincount(shifted.reshape(-1)) > 0
        table = (np.cumsum(present) - 1).astype(np.int32)
        return np.take(table, shifted), int(present.sum())
    unique, inverse = np.unique(ids, return_inverse=True)
    return inverse.reshape(ids.shape).astype(np.int32), len(unique)
