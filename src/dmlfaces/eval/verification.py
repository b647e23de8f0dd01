"""1:1 verification: scores of template pairs, TAR at fixed FAR with bootstrap intervals, per method.

``evaluate_one_to_one`` is the one call a notebook makes: descriptors of each method in, a report
out whose ``to_dict()`` is written as ``results/metrics/verification.json``. The pieces live in
``templates`` (descriptors), ``scoring`` (pair scores), ``roc`` (the two TAR@FAR rules) and
``bootstrap`` (subject resampling); the names older code imports from here stay importable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dmlfaces.eval.bootstrap import BootstrapTar, bootstrap_tar_at_far, pair_subjects, percentile_interval
from dmlfaces.eval.roc import FARS, check_fars, tar_at_far, tar_at_far_rules
from dmlfaces.eval.scoring import pair_scores, score_pairs
from dmlfaces.eval.templates import check_crop_features, mean_template_descriptors, unit_rows

_METHODS_AT_ONCE = 2  # methods evaluated side by side (threads): the two cores of the CPU hosts the study runs on

__all__ = [
    "FARS",
    "AllPairsResult",
    "MethodResult",
    "OneToOneReport",
    "PairedDifference",
    "all_pairs_tar_at_far",
    "evaluate_one_to_one",
    "mean_template_descriptors",
    "pair_scores",
    "single_image_pairs",
    "tar_at_far",
    "unit_rows",
]


@dataclass(frozen=True, eq=False)
class MethodResult:
    """1:1 results of one method.

    Attributes:
        tar_nearest, tar_exact: target FAR -> TAR by the nearest and the exact rule (``roc``).
        interval_nearest, interval_exact: target FAR -> (low, high) bootstrap percentile interval,
            empty without bootstrap.
        scores: (P,) float64 pair scores when kept (for ROC figures), else None.
    """

    tar_nearest: dict[float, float]
    tar_exact: dict[float, float]
    interval_nearest: dict[float, tuple[float, float]]
    interval_exact: dict[float, tuple[float, float]]
    scores: np.ndarray | None


@dataclass(frozen=True, eq=False)
class PairedDifference:
    """TAR(method) - TAR(baseline), measured on the same pairs and, for the interval, the same subject resamples.

    All methods score the same pairs, so most of the resampling noise is common to both and cancels in
    the difference: its interval is far narrower than either method's own.

    Attributes:
        nearest, exact: target FAR -> point difference by each rule.
        interval_nearest, interval_exact: target FAR -> (low, high) percentile interval of the B paired
            differences (resamples where either TAR is undefined are left out).
    """

    nearest: dict[float, float]
    exact: dict[float, float]
    interval_nearest: dict[float, tuple[float, float]]
    interval_exact: dict[float, tuple[float, float]]


@dataclass(frozen=True, eq=False)
class OneToOneReport:
    """TAR at FAR of several methods on one pair list."""

    fars: tuple[float, ...]
    methods: dict[str, MethodResult]
    genuine_pairs: int
    impostor_pairs: int
    resamples: int
    confidence: float
    seed: int
    # Template id -> (crops lost, crops in the protocol) when extraction skipped crops; the TARs then
    # describe those templates by their other crops.
    lost_crops: dict[int, tuple[int, int]] = field(default_factory=dict)
    # (method, baseline) -> their paired difference; empty without bootstrap.
    differences: dict[tuple[str, str], PairedDifference] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-able: per method, per FAR (``f"{far:g}"``) tar_nearest, tar_exact, ci_low, ci_high
        (the nearest rule's interval) and ci_low_exact, ci_high_exact; intervals are None without bootstrap.
        ``differences``: per "method - baseline", per FAR, the difference by each rule with its interval
        (difference, ci_low, ci_high by the exact rule; *_nearest by the nearest rule).
        ``lost_crops`` (template, lost, crops) rows appear only when some template lost crops."""
        methods = {}
        for name, result in self.methods.items():
            rows = {}
            for far in self.fars:
                low, high = result.interval_nearest.get(far, (None, None))
                low_exact, high_exact = result.interval_exact.get(far, (None, None))
                rows[f"{far:g}"] = {
                    "tar_nearest": result.tar_nearest[far],
                    "tar_exact": result.tar_exact[far],
                    "ci_low": low,
                    "ci_high": high,
                    "ci_low_exact": low_exact,
                    "ci_high_exact": high_exact,
                }
            methods[name] = rows
        differences = {
            f"{method} - {baseline}": {
                f"{far:g}": {
                    "difference": d.exact[far],
                    "ci_low": d.interval_exact[far][0],
                    "ci_high": d.interval_exact[far][1],
                    "difference_nearest": d.nearest[far],
                    "ci_low_nearest": d.interval_nearest[far][0],
                    "ci_high_nearest": d.interval_nearest[far][1],
                }
                for far in self.fars
            }
            for (method, baseline), d in self.differences.items()
        }
        return (
            {
                "methods": methods,
                "genuine_pairs": self.genuine_pairs,
                "impostor_pairs": self.impostor_pairs,
                "bootstrap": {
                    "unit": "subject",
                    "resamples": self.resamples,
                    "confidence": self.confidence,
                    "interval": "percentile",
                    "seed": self.seed,
                },
            }
            | ({"differences": differences} if differences else {})
            | (
                {"lost_crops": [{"template": t, "lost": k, "crops": n} for t, (k, n) in self.lost_crops.items()]}
                if self.lost_crops
                else {}
            )
        )


def evaluate_one_to_one(
    descriptors_by_method: Mapping[str, tuple[np.ndarray, np.ndarray]],
    pairs: np.ndarray,
    labels: np.ndarray,
    *,
    fars: Sequence[float] = FARS,
    template_subjects: tuple[np.ndarray, np.ndarray] | None = None,
    resamples: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    keep_scores: bool = False,
    comparisons: Sequence[tuple[str, str]] = (),
) -> OneToOneReport:
    """Score every pair with each method's descriptors and measure TAR at FAR by both rules.

    Args:
        descriptors_by_method: method name -> (templates (T,) sorted unique ids, descriptors (T, D) unit rows).
        pairs: (P, 2) template ids; labels: (P,) 1 genuine, 0 impostor (``IJBProtocol.pairs`` and
            ``pair_labels``).
        template_subjects: (template ids (T',), subject ids (T',)), needed when ``resamples`` > 0.
        resamples: subject bootstrap resamples B per method (0: no intervals); all methods see the
            same resamples, so their intervals are comparable.
        keep_scores: keep each method's (P,) scores in the report, e.g. for ``dmlfaces.figures.verification.roc``.
        comparisons: (method, baseline) names whose paired difference is measured (needs ``resamples`` > 0).
    Raises:
        KeyError: a pair names a template a method has no descriptor for.
        ValueError: non-finite or non-unit descriptors, bad labels or targets, missing subjects.
    """
    fars = check_fars(fars)
    labels = np.asarray(labels)
    subjects = None
    if resamples > 0:
        if template_subjects is None:
            raise ValueError("bootstrap intervals need template_subjects (template ids, subject ids)")
        subjects = pair_subjects(pairs, *template_subjects)
    unknown = sorted({name for pair in comparisons for name in pair} - set(descriptors_by_method))
    if unknown:
        raise ValueError(f"comparisons name methods {unknown} that have no descriptors; methods: {list(descriptors_by_method)}")
    if comparisons and subjects is None:
        raise ValueError("paired differences need the bootstrap: give resamples > 0 and template_subjects")

    def evaluate(templates: np.ndarray, descriptors: np.ndarray) -> tuple[MethodResult, BootstrapTar | None]:
        scores = score_pairs(templates, descriptors, pairs)
        nearest, exact = tar_at_far_rules(scores, labels, fars)
        intervals: dict[str, dict[float, tuple[float, float]]] = {"nearest": {}, "exact": {}}
        samples = None
        if subjects is not None:
            samples = bootstrap_tar_at_far(scores, labels, subjects, fars, resamples=resamples, seed=seed)
            for rule, interval in intervals.items():
                low, high = samples.interval(rule, confidence)
                interval.update({far: (float(lo), float(hi)) for far, lo, hi in zip(fars, low, high)})
        return MethodResult(
            tar_nearest=nearest,
            tar_exact=exact,
            interval_nearest=intervals["nearest"],
            interval_exact=intervals["exact"],
            scores=scores if keep_scores else None,
        ), samples

    # NumPy releases the GIL in the heavy loops (the scoring products, partitions, cumulative sums), so methods
    # evaluated side by side use the cores a single one leaves idle; each method's numbers are its own.
    with ThreadPoolExecutor(max_workers=_METHODS_AT_ONCE) as pool:
        evaluated = dict(zip(descriptors_by_method, pool.map(lambda item: evaluate(*item), descriptors_by_method.values())))
    methods = {name: result for name, (result, _) in evaluated.items()}
    samples_by_method = {name: samples for name, (_, samples) in evaluated.items()}
    differences = {}
    for method, baseline in comparisons:
        # One seed gives every method the same subject resamples, so resample b of each is paired.
        ours, theirs = samples_by_method[method], samples_by_method[baseline]
        intervals = {}
        for rule in ("nearest", "exact"):
            low, high = percentile_interval(getattr(ours, rule) - getattr(theirs, rule), confidence)
            intervals[rule] = {far: (float(lo), float(hi)) for far, lo, hi in zip(fars, low, high)}
        differences[(method, baseline)] = PairedDifference(
            nearest={far: methods[method].tar_nearest[far] - methods[baseline].tar_nearest[far] for far in fars},
            exact={far: methods[method].tar_exact[far] - methods[baseline].tar_exact[far] for far in fars},
            interval_nearest=intervals["nearest"],
            interval_exact=intervals["exact"],
        )
    genuine = int(np.count_nonzero(labels))
    return OneToOneReport(
        fars=fars,
        methods=methods,
        genuine_pairs=genuine,
        impostor_pairs=len(labels) - genuine,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        differences=differences,
    )


def single_image_pairs(
    subjects: np.ndarray, media: np.ndarray, n_genuine: int, n_impostor: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sample image pairs for single-image verification, the same for every method compared.

    Genuine pairs join two images of one subject from different media (frames of one clip would be
    near-duplicates); impostor pairs join images of two subjects.

    Args:
        subjects, media: (N,) subject and media id of each image.
    Returns:
        pairs (P, 2) image indices and labels (P,) int8, genuine first.
    """
    rng = np.random.default_rng([seed, 31337])
    n = len(subjects)
    genuine: list[np.ndarray] = []
    # Rejection sampling: draw candidate pairs in rounds, keep the valid ones.
    while sum(len(g) for g in genuine) < n_genuine:
        a = rng.integers(0, n, 4 * n_genuine)
        order = np.argsort(subjects, kind="stable")
        starts = np.searchsorted(subjects[order], subjects[a], side="left")
        ends = np.searchsorted(subjects[order], subjects[a], side="right")
        b = order[starts + (rng.random(len(a)) * (ends - starts)).astype(int)]
        keep = media[a] != media[b]
        genuine.append(np.stack([a[keep], b[keep]], axis=1))
    genuine_pairs = np.concatenate(genuine)[:n_genuine]
    a = rng.integers(0, n, 2 * n_impostor)
    b = rng.integers(0, n, 2 * n_impostor)
    keep = subjects[a] != subjects[b]
    impostor_pairs = np.stack([a[keep], b[keep]], axis=1)[:n_impostor]
    pairs = np.concatenate([genuine_pairs, impostor_pairs])
    labels = np.concatenate([np.ones(len(genuine_pairs), np.int8), np.zeros(len(impostor_pairs), np.int8)])
    return pairs, labels


_ALL_PAIRS_BLOCK_ROWS = 512  # image rows per score tile: 512 x 4,000 float64 is 16 MiB


@dataclass(frozen=True, eq=False)
class AllPairsResult:
    """Single-image verification over every pair of images of a labelled set.

    Attributes:
        tar: target FAR -> TAR by the exact rule (``roc``: the largest TAR whose FAR does not exceed the target).
        genuine_pairs, impostor_pairs: how many pairs join two images of one identity, and of two.
    """

    tar: dict[float, float]
    genuine_pairs: int
    impostor_pairs: int

    def to_dict(self) -> dict[str, object]:
        """JSON-able: ``tar_at_far`` keyed ``f"{far:g}"`` (as the other reports), the two pair counts and the rule."""
        return {
            "tar_at_far": {f"{far:g}": tar for far, tar in self.tar.items()},
            "rule": "exact",
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
        }


def all_pairs_tar_at_far(
    features: np.ndarray,
    identities: np.ndarray,
    fars: Sequence[float] = FARS,
    *,
    block_rows: int = _ALL_PAIRS_BLOCK_ROWS,
) -> AllPairsResult:
    """TAR at each target FAR when every image is compared with every other: the cosine of their features,
    genuine when their identities agree. N images give N (N - 1) / 2 pairs (4,000 images: 8 M), scored in
    float64 tiles of ``block_rows`` rows by matrix products (float64 for the reason ``scoring`` gives).

    Args:
        features: (N, D) features (unit rows; others are scaled to unit length, so the score is the cosine).
        identities: (N,) identity of each image.
    Raises:
        ValueError: shapes that do not match, NaN/inf or all-zero features, fewer than two images, or no
            genuine or no impostor pair.
    """
    features = np.asarray(features)
    identities = np.asarray(identities)
    if features.ndim != 2 or identities.shape != (len(features),):
        raise ValueError(f"expected (N, D) features and (N,) identities, got {features.shape} and {identities.shape}")
    if len(features) < 2:
        raise ValueError(f"{len(features)} images make no pair; give at least two")
    fars = check_fars(fars)
    unit = features.astype(np.float64) / check_crop_features(features)[:, None]
    codes = np.unique(identities, return_inverse=True)[1].reshape(-1)
    count = len(unit)
    scores = np.empty(count * (count - 1) // 2)
    genuine = np.empty(len(scores), dtype=bool)
    filled = 0
    for start in range(0, count - 1, block_rows):
        stop = min(start + block_rows, count)
        tile = unit[start:stop] @ unit[start:].T  # rows start..stop against every later image
        rows, columns = np.triu_indices(stop - start, 1, count - start)  # each pair once: column after row
        scores[filled : filled + len(rows)] = tile[rows, columns]
        genuine[filled : filled + len(rows)] = codes[start + rows] == codes[start + columns]
        filled += len(rows)
    genuines = int(np.count_nonzero(genuine))
    return AllPairsResult(tar=tar_at_far(scores, genuine, fars), genuine_pairs=genuines, impostor_pairs=len(scores) - genuines)
