"""TAR at fixed FAR by two rules, from the top of the ROC curve only (no sort of all scores).

Conventions: a pair is accepted when its score passes a threshold; FAR (false accept rate) is the
fraction of impostor pairs accepted, TAR (true accept rate) the fraction of genuine pairs accepted.
The IJB-B/C tables report TAR at FAR = 1e-6 .. 1e-1 (``FARS``, the columns of insightface's
``recognition/_evaluation_/ijb/ijb_11.py``). Two rules turn a target FAR into a TAR:

* **Nearest rule** ("nearest"), the one of the public evaluators (insightface ``ijb_11.py``,
  arcface_torch ``eval_ijbc.py`` and the many copies of them): compute ``fpr, tpr`` with
  ``sklearn.metrics.roc_curve`` (``drop_intermediate=True``: points lying on a straight segment
  between two neighbours are removed, and a point (0, 0) is put first), reverse both arrays, and
  take ``tpr[argmin(|fpr - target|)]``. In the original order this is the ROC point whose FPR is
  nearest to the target, the *last* such point when several are equally near: the largest TAR among
  points sharing that FPR. Its FAR may exceed the target. We reproduce these floats exactly.
* **Exact rule** ("exact"): the largest TAR among all thresholds whose FAR does not exceed the
  target (FAR = false accepts / impostors, as the float sklearn computes), i.e. the ROC point of
  highest TPR with ``fpr <= target`` before any point is dropped. Pairs are accepted when strictly
  above the threshold, so a tie at the threshold is accepted or rejected as a whole.

Only scores above the ``~(1.25 * max target)``-quantile of the impostors decide either rule for FAR
<= 1e-1, so one ``np.partition`` selects them and only they are sorted; a certificate checks that no
ROC point beyond them could be nearer, and the selection widens in the rare case it fails. The
same machinery counts bootstrap resamples, given per-pair integer multiplicities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FARS: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # insightface ijb_11.py x_labels
# The FARs of the book's tables (1e-5 and below need more impostor pairs than the SynthFaces protocols have).
REPORTED_FARS: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)


def far_key(far: float) -> str:
    """A FAR as the reports' JSON keys write it (``1e-4`` -> ``"0.0001"``)."""
    return f"{far:g}"


def measurable_fars(fars: Sequence[float], impostors: int) -> list[float]:
    """The FARs of ``fars`` that ``impostors`` impostor pairs can measure: below 1 / impostors not one false
    accept may be allowed, so TAR there is the share of genuine pairs above every impostor, not a rate."""
    return [far for far in fars if far * impostors >= 1]


_HEAD_MARGIN = 1.25  # impostors kept above the largest target, as a multiple of it
_HEAD_EXTRA = 64  # and a few more, for small sets
_CURVE_POINTS = 400  # log-spaced FAR targets of a plotted ROC curve


@dataclass(frozen=True, eq=False)
class RocHead:
    """The pairs with the highest scores, grouped by distinct score (group 0 = the highest score).

    Attributes:
        impostor_index, genuine_index: (Ci,) and (Cg,) indices of the head's impostor and genuine pairs.
        impostor_group, genuine_group: (Ci,) and (Cg,) the distinct-score group of each.
        groups: the number G of distinct scores in the head.
        complete: whether every pair is in the head (otherwise only those with score >= the cut).
    """

    impostor_index: np.ndarray
    impostor_group: np.ndarray
    genuine_index: np.ndarray
    genuine_group: np.ndarray
    groups: int
    complete: bool

    @classmethod
    def select(cls, scores: np.ndarray, labels: np.ndarray, impostors_kept: int) -> RocHead:
        """The head holding at least the ``impostors_kept`` highest impostor scores and all pairs tied or above.

        Args:
            scores: (P,) finite scores; labels: (P,) bool, True for genuine.
        """
        impostor = scores[~labels]
        if impostors_kept >= len(impostor):
            index = np.arange(len(scores))
        else:
            impostor.partition(len(impostor) - impostors_kept)  # in place: `impostor` is a copy
            index = np.flatnonzero(scores >= impostor[len(impostor) - impostors_kept])
        index = index[np.argsort(scores[index])[::-1]]  # the order within ties does not matter
        ordered = scores[index]
        group = np.cumsum(np.r_[False, ordered[1:] != ordered[:-1]])
        genuine = labels[index]
        return cls(
            impostor_index=index[~genuine],
            impostor_group=group[~genuine],
            genuine_index=index[genuine],
            genuine_group=group[genuine],
            groups=int(group[-1]) + 1,
            complete=len(index) == len(scores),
        )

    def counts(
        self, impostor_weight: np.ndarray | None = None, genuine_weight: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(G,) int64 impostor and genuine counts per distinct score, each pair counted its weight
        ((Ci,) and (Cg,) integers; one when None)."""
        impostor = np.bincount(self.impostor_group, impostor_weight, minlength=self.groups)
        genuine = np.bincount(self.genuine_group, genuine_weight, minlength=self.groups)
        # With weights bincount sums in float64, exact for integer totals below 2**53.
        return impostor.astype(np.int64), genuine.astype(np.int64)


def check_scores(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated (P,) scores and (P,) bool labels (True genuine); raises ValueError naming the problem."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"scores and labels must be two (P,) arrays, got {scores.shape} and {labels.shape}")
    finite = np.isfinite(scores)
    if not finite.all():
        raise ValueError(
            f"{np.count_nonzero(~finite)} scores are NaN or infinite, first at pair {np.argmax(~finite)}; check the descriptors"
        )
    if np.count_nonzero(labels) != np.count_nonzero(labels == 1):
        raise ValueError("labels must be 1 (genuine) or 0 (impostor)")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("TAR at FAR needs both genuine and impostor pairs")
    return scores, labels


def check_fars(fars: Sequence[float]) -> tuple[float, ...]:
    """The targets as floats; each must lie in (0, 1]."""
    fars = tuple(float(f) for f in fars)
    if not fars or not all(0 < f <= 1 for f in fars):
        raise ValueError(f"FAR targets must be non-empty and in (0, 1], got {fars}")
    return fars


def head_size(fars: Sequence[float], impostors: int) -> int:
    """How many top impostor scores a first ``RocHead`` keeps for these targets."""
    return min(impostors, math.ceil(_HEAD_MARGIN * max(fars) * impostors) + _HEAD_EXTRA)


def tar_at_far_rules(
    scores: np.ndarray, labels: np.ndarray, fars: Sequence[float] = FARS
) -> tuple[dict[float, float], dict[float, float]]:
    """TAR at each target FAR by the nearest rule and by the exact rule (see the module docstring).

    Args:
        scores: (P,) finite similarity scores; labels: (P,) 1 genuine, 0 impostor.
    Returns:
        (nearest, exact): dicts target FAR -> TAR; ``nearest`` equals the public evaluators' floats.
    """
    scores, labels = check_scores(scores, labels)
    fars = check_fars(fars)
    impostors = int(np.count_nonzero(~labels))
    genuines = len(labels) - impostors
    kept = head_size(fars, impostors)
    while True:
        head = RocHead.select(scores, labels, kept)
        impostor, genuine = head.counts()
        nearest = nearest_rule(impostor, genuine, impostors, genuines, head.complete, fars)
        exact = exact_rule(impostor, genuine, impostors, genuines, head.complete, fars)
        if nearest is not None and exact is not None:
            return dict(zip(fars, nearest)), dict(zip(fars, exact))
        kept = min(impostors, 4 * kept)


def tar_at_far(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float]) -> dict[float, float]:
    """True accept rate at each target false accept rate, by the exact-threshold rule.

    For each target the threshold is the lowest one whose FAR does not exceed the target (a pair is
    accepted when its score is strictly above the threshold), and TAR is measured there. Only the
    few largest impostor scores are ordered, so no full sort is needed.

    Args:
        scores: (P,) similarity scores; labels: (P,) 1 genuine, 0 impostor.
    """
    return tar_at_far_rules(scores, labels, fars)[1]


def tar_at_far_nearest(scores: np.ndarray, labels: np.ndarray, fars: Sequence[float] = FARS) -> dict[float, float]:
    """TAR at each target FAR by the public evaluators' nearest rule (see the module docstring).

    Args:
        scores: (P,) similarity scores; labels: (P,) 1 genuine, 0 impostor.
    """
    return tar_at_far_rules(scores, labels, fars)[0]


def nearest_rule(
    impostor: np.ndarray, genuine: np.ndarray, impostors: int, genuines: int, complete: bool, fars: Sequence[float]
) -> list[float] | None:
    """Nearest-rule TARs from the top of the ROC, or None when the head is too short to be sure.

    Args:
        impostor, genuine: (G,) counts per distinct score, descending scores, of the head.
        impostors, genuines: totals over all pairs (the denominators of FPR and TPR).
        complete: whether the head holds every pair.
    """
    # sklearn drops scores of zero weight before anything else (resampling gives many).
    present = (impostor + genuine) > 0
    impostor, genuine = impostor[present], genuine[present]
    fps, tps = np.cumsum(impostor), np.cumsum(genuine)
    count = len(fps)
    # sklearn keeps point k when its second differences are not both zero, i.e. when the step into
    # k (the counts at score k) differs from the step out of it (the counts at score k + 1); the
    # first and last points are always kept, and with at most two points nothing is dropped.
    keep = np.ones(count, dtype=bool)
    keep[1:-1] = (impostor[1:-1] != impostor[2:]) | (genuine[1:-1] != genuine[2:])
    if not complete and count > 1:
        keep[-1] = False  # its step out lies below the head: unknown; the certificate covers it
    # Candidates in sklearn's order: the (0, 0) point it prepends, then the kept points.
    fpr = np.r_[0.0, fps[keep] / np.float64(impostors)]  # the same float operations as sklearn
    tpr = np.r_[0.0, tps[keep] / np.float64(genuines)]
    tars = []
    for far in fars:
        # fpr never decreases, so the nearest points are the last at or below the target and the last of
        # those sharing the first value above it: two binary searches instead of a pass over every point
        # (a bootstrap runs this per resample). The later of two equally near points wins, as argmin over
        # the reversed distances picks it.
        below = int(np.searchsorted(fpr, far, side="right")) - 1  # >= 0: fpr[0] = 0 < far
        best = below
        if below + 1 < len(fpr):
            above = int(np.searchsorted(fpr, fpr[below + 1], side="right")) - 1
            near_below, near_above = np.abs(fpr[[below, above]] - far)
            if near_above <= near_below:
                best = above
        if not complete:
            # Every point past the head has FPR >= that of the head's last score; it must be farther.
            bound = fps[-1] / np.float64(impostors) - far if count else -np.inf
            if not np.abs(fpr[best] - far) < bound:
                return None
        tars.append(float(tpr[best]))
    return tars


def exact_rule(
    impostor: np.ndarray, genuine: np.ndarray, impostors: int, genuines: int, complete: bool, fars: Sequence[float]
) -> list[float] | None:
    """Exact-rule TARs from the top of the ROC, or None when the head is too short to be sure.

    Arguments as for ``nearest_rule``.
    """
    fps, tps = np.cumsum(impostor), np.cumsum(genuine)
    tars = []
    for far in fars:
        allowed = false_accepts_allowed(far, impostors)
        if not complete and not (len(fps) and fps[-1] > allowed):
            return None
        # The last score whose cumulative false accepts stay within the allowance.
        last = int(np.searchsorted(fps, allowed, side="right")) - 1
        tars.append(float(tps[last] / np.float64(genuines)) if last >= 0 else 0.0)
    return tars


def false_accepts_allowed(far: float, impostors: int) -> int:
    """The most false accepts k whose rate k / impostors (a float64 division, as sklearn's) is <= ``far``."""
    allowed = min(impostors, math.floor(far * impostors))
    # far * impostors may round to either side of an integer; step to the float-exact answer.
    while allowed < impostors and (allowed + 1) / np.float64(impostors) <= far:
        allowed += 1
    while allowed > 0 and allowed / np.float64(impostors) > far:
        allowed -= 1
    return allowed


@dataclass(frozen=True, eq=False)
class RocCurve:
    """ROC operating points for plotting: (K,) FAR and TAR, increasing FAR."""

    far: np.ndarray
    tar: np.ndarray


def roc_curve_points(scores: np.ndarray, labels: np.ndarray, points: int = _CURVE_POINTS) -> RocCurve:
    """The exact-rule operating points at ``points`` log-spaced FAR targets from 1/impostors to 1.

    Sorts the impostor scores once (a few seconds at IJB-C scale). The FAR reported is the one
    reached (at most the target), so the curve has no point that was not an operating point.
    """
    scores, labels = check_scores(scores, labels)
    impostor = np.sort(scores[~labels])[::-1]
    genuine = np.sort(scores[labels])
    targets = np.unique(np.floor(np.geomspace(1, len(impostor), points)).astype(np.int64))
    # Accepting strictly above the (allowed + 1)-th largest impostor admits at most `allowed` of them.
    threshold = np.r_[impostor, -np.inf][targets]
    accepted_impostors = len(impostor) - np.searchsorted(impostor[::-1], threshold, side="right")
    accepted_genuine = len(genuine) - np.searchsorted(genuine, threshold, side="right")
    return RocCurve(far=accepted_impostors / len(impostor), tar=accepted_genuine / len(genuine))
