"""Study A's protocols: which attributes live inside an identity embedding.

* Intra-class (minor attributes of one person: beard, glasses, expression): each identity's image
  embeddings are clustered into k = 2 and matched to the attribute's two states; the report gives the
  distribution of the per-identity accuracy over identities.
* Extra-class (major attributes that separate people: gender, skin tone, age): one embedding per identity,
  all identities clustered into k = 2, on all identities (uncontrolled) and on a controlled subset.

Assumptions, since the paper's protocol is unknown (see STUDIES.md):

* k = the number of states = 2; accuracy is Hungarian-matched; the majority-class rate, NMI, ARI and a
  cross-validated linear probe (the supervised upper bound) are reported beside it.
* CelebA labels images, not people: an identity's label for an extra-class attribute is the majority vote
  of its images; identities with a tied vote are left out and counted.
* Controlled subset of an extra-class attribute: the identities whose held attributes (by default the
  other two extra-class attributes) all take their majority state among the identities; if that leaves
  fewer than ``min_identities_per_state`` identities in a state, only the one held attribute keeping the
  most identities of the rarer state is held, and failing that none. The subset is then balanced by
  subsampling the commoner state with the seed. The report names what was held fixed.

With SynthFaces' ground truth (``ground_truth.csv``, see :mod:`dmlfaces.eval.factors`) the study also says what
each split follows (its agreement with every latent factor), reruns the within-identity protocol on images
whose pose, light strength, occlusion, blur and resolution lie within the ``controlled_*`` thresholds (exposure,
noise, background and the other attributes still vary), and splits glasses by the frame a person wears.

Its length: the two protocols, their parameters and the nuisance control are one study whose pieces
share the identity grouping; the clustering engine and the factor analysis are modules of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from dmlfaces.data.celeba import ATTRIBUTES_FILE, CelebA
from dmlfaces.data.errors import DataFormatError
from dmlfaces.eval.clustering import NOISE, Clusterer, grouped_partition_scores, partition_scores, probe_accuracy
from dmlfaces.eval.factors import (
    agreement_summary,
    factor_agreement,
    grouped_factor_agreement,
    identity_factors,
    image_factors,
    shuffled_clusters,
    split_followed,
)
from dmlfaces.eval.verification import mean_template_descriptors, unit_rows
from dmlfaces.features import FeatureSet
from dmlfaces.params import check_choice, check_positive_ints, check_range

INTRA_ATTRIBUTES: dict[str, str] = {"beard": "No_Beard", "glasses": "Eyeglasses", "expression": "Smiling"}
EXTRA_ATTRIBUTES: dict[str, str] = {"gender": "Male", "skin_tone": "Pale_Skin", "age": "Young"}
IDENTITY_EMBEDDINGS: tuple[str, ...] = ("mean", "one_image")
STATES = 2  # every attribute studied is binary: k = 2 clusters


class NothingToClusterError(ValueError):
    """Filtering left nothing to cluster; ``counts`` says what was dropped and why."""

    def __init__(self, message: str, counts: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts


def attribute_columns(celeba: CelebA, columns: Sequence[str]) -> pd.DataFrame:
    """The (N, C) {-1, 1} columns of ``celeba.attributes``.

    Raises:
        DataFormatError: a column is missing; it names the column, the attribute file and the columns there.
    """
    available = list(celeba.attributes.columns)
    for column in columns:
        if column not in available:
            raise DataFormatError(
                celeba.root / ATTRIBUTES_FILE,
                f"no attribute column {column!r}",
                expected=f"one of its {len(available)} columns: {', '.join(available)}",
                fix="request one of those columns, or restore the column in the file",
            )
    return celeba.attributes[list(dict.fromkeys(columns))]  # each column once, in the order asked


# ------------------------------------------------------------------------------------------ intra-class


@dataclass(frozen=True, eq=False)
class IntraClassResult:
    """``summary``: JSON-able report; ``per_identity``: one row per identity used (see grouped_partition_scores)."""

    summary: dict
    per_identity: pd.DataFrame


def cluster_identities(features: np.ndarray, identities: np.ndarray, clusterer: Clusterer) -> np.ndarray:
    """(N,) labels from clustering each identity's (N, D) image features into two.

    Images of single-image identities get -1 (no protocol scores them). The result does not depend on the
    attribute, so one clustering serves every intra-class attribute.
    """
    ids, sizes = np.unique(identities, return_counts=True)
    several = np.isin(identities, ids[sizes >= STATES])
    labels = np.full(len(identities), -1, dtype=np.int64)
    if several.any():
        labels[several] = clusterer.fit_predict_groups(features[several], identities[several], STATES)
    return labels


def _intra_eligible(identities: np.ndarray, states: np.ndarray, column: str) -> tuple[np.ndarray, dict[str, int]]:
    """(N,) mask of the images of identities with two or more images and both states, and the skip counts."""
    per = pd.Series(states).groupby(identities).agg(["size", "nunique"])
    single = per["size"] < 2
    one_state = ~single & (per["nunique"] < STATES)
    used = per.index[~single & ~one_state]
    counts = {"total": len(per), "used": len(used), "single_image": int(single.sum()), "one_state": int(one_state.sum())}
    if not len(used):
        raise NothingToClusterError(
            f"{column}: no identity has two or more images showing both states ({counts['single_image']} of "
            f"{counts['total']} identities have a single image, {counts['one_state']} show one state only)",
            counts,
        )
    return np.isin(identities, used), counts


def _distribution(values: pd.Series) -> dict:
    """Mean, median, quantiles and a 20-bin histogram on [0, 1] of per-identity scores."""
    counts, _ = np.histogram(values, bins=20, range=(0.0, 1.0))
    quantiles = {f"q{int(q * 100)}": float(values.quantile(q)) for q in (0.1, 0.25, 0.75, 0.9)}
    return {
        "mean": float(values.mean()),
        "median": float(values.median()),
        **quantiles,
        "histogram": {"range": [0.0, 1.0], "counts": counts.tolist()},
    }


FLOOR_RESAMPLES = 1000  # bootstrap resamples of identities for the interval of the accuracy above its floor


def _interval(gaps: np.ndarray, observed: float) -> dict:
    """``{"difference", "low", "high"}``: the observed gap and the 95 % percentile interval of resampled ones."""
    low, high = np.quantile(gaps, [0.025, 0.975])
    return {"difference": float(observed), "low": float(low), "high": float(high)}


def intra_floor_gap(per_identity: pd.DataFrame, seed: int) -> dict:
    """Mean per-identity accuracy minus its floor (the higher of the mean majority rate and mean chance level),
    with a 95 % interval from resampling identities: the clustering beats its floor when ``low`` > 0."""
    values = per_identity[["accuracy", "majority_rate", "chance_accuracy"]].to_numpy()
    draws = np.random.default_rng([seed, 17]).integers(0, len(values), (FLOOR_RESAMPLES, len(values)))
    means = values[draws].mean(1)  # (R, 3)
    gaps = means[:, 0] - means[:, 1:].max(1)
    observed = values.mean(0)
    return _interval(gaps, observed[0] - observed[1:].max())


def extra_floor_gap(truth: np.ndarray, predicted: np.ndarray, seed: int) -> dict:
    """Hungarian accuracy of one split of identities minus the majority rate, with a 95 % interval from
    resampling identities (the split and its matching to the states kept)."""
    states, truth_code = np.unique(truth, return_inverse=True)
    clusters, predicted_code = np.unique(predicted, return_inverse=True)
    table = np.zeros((len(states), len(clusters)), dtype=np.int64)
    np.add.at(table, (truth_code, predicted_code), 1)
    noise = int(clusters[0] == NOISE)  # HDBSCAN's noise column is never matched, as in hungarian_accuracy
    rows, cols = linear_sum_assignment(table[:, noise:], maximize=True)
    matched = np.full(len(clusters), -1)
    matched[cols + noise] = rows
    correct = matched[predicted_code] == truth_code
    draws = np.random.default_rng([seed, 19]).integers(0, len(truth), (FLOOR_RESAMPLES, len(truth)))
    shares = np.stack([(truth_code[draws] == s).mean(1) for s in range(len(states))], 1)
    gaps = correct[draws].mean(1) - shares.max(1)
    return _interval(gaps, correct.mean() - np.bincount(truth_code).max() / len(truth))


def intra_class_protocol(
    features: np.ndarray,
    identities: np.ndarray,
    states: np.ndarray,
    *,
    column: str = "attribute",
    clusterer: Clusterer = Clusterer(),
    clusters: np.ndarray | None = None,
    probe_folds: int = 5,
    probe_max_images: int | None = 20_000,
) -> IntraClassResult:
    """Cluster each identity's images into two and score them against a binary attribute.

    The probe is trained on identity-centred features (each image minus its identity's mean) and scored on
    identities left out (GroupKFold): it asks whether one linear direction tells the states apart inside
    identities. It sees at most ``probe_max_images`` images, drawn with the clusterer's seed.

    Args:
        features: (N, D) image features; identities, states: (N,) identity and attribute state per image.
        column: the attribute's name, for messages.
        clusters: optional (N,) labels from :func:`cluster_identities`, to share one clustering.
    Raises:
        NothingToClusterError: no identity has two or more images showing both states.
    """
    features, identities, states = np.asarray(features), np.asarray(identities), np.asarray(states)
    if len(np.unique(states)) > STATES:
        raise ValueError(f"{column}: the protocol takes binary attributes, got states {np.unique(states).tolist()}")
    eligible, counts = _intra_eligible(identities, states, column)
    if clusters is None:
        clusters = cluster_identities(features, identities, clusterer)
    ids, truth = identities[eligible], states[eligible]
    per_identity = grouped_partition_scores(truth, clusters[eligible], ids, seed=clusterer.seed)

    rows = np.flatnonzero(eligible)
    _, group, sizes = np.unique(ids, return_inverse=True, return_counts=True)
    by_identity = rows[np.argsort(group, kind="stable")]
    means = np.add.reduceat(features[by_identity], np.cumsum(sizes) - sizes, dtype=np.float64) / sizes[:, None]
    keep = np.arange(len(rows))
    if probe_max_images is not None and len(keep) > probe_max_images:
        keep = np.sort(np.random.default_rng(clusterer.seed).choice(keep, probe_max_images, replace=False))
    centred = features[rows[keep]] - means[group[keep]]
    probe = probe_accuracy(centred, truth[keep], ids[keep], folds=probe_folds, seed=clusterer.seed)

    summary = {
        "identities": counts,
        "images": int(eligible.sum()),
        "accuracy": _distribution(per_identity["accuracy"]),
        **{name: float(per_identity[name].mean()) for name in ("majority_rate", "chance_accuracy", "nmi", "ari")},
        "probe_accuracy": probe,
        "floor_gap": intra_floor_gap(per_identity, clusterer.seed),
    }
    return IntraClassResult(summary=summary, per_identity=per_identity)


# ------------------------------------------------------------------------------------------ extra-class


@dataclass(frozen=True, eq=False)
class IdentityEmbeddings:
    """One embedding per identity.

    Attributes:
        embeddings: (I, D) unit rows, in the order of ``labels.index`` (sorted identity ids).
        labels: (I, C) frame of each identity's attribute states; 0 marks a tied vote.
        images: (I,) number of images behind each embedding.
    """

    embeddings: np.ndarray
    labels: pd.DataFrame
    images: np.ndarray


def identity_embeddings(
    features: np.ndarray, identities: np.ndarray, attributes: pd.DataFrame, *, mode: str = "mean", seed: int = 0
) -> IdentityEmbeddings:
    """One embedding per identity from (N, D) image features and the (N, C) {-1, 1} attributes of the images.

    ``mode="mean"``: the unit mean of the identity's unit features, labelled by the majority vote of its
    images; ``mode="one_image"``: one image per identity drawn with ``seed``, with that image's labels.
    """
    identities = np.asarray(identities)
    if mode == "mean":
        ids, embeddings = mean_template_descriptors(np.asarray(features), identities)
        votes = attributes.groupby(identities).mean()
        labels = pd.DataFrame(np.sign(votes.to_numpy()).astype(np.int8), index=votes.index, columns=votes.columns)
        return IdentityEmbeddings(embeddings, labels.loc[ids], np.unique(identities, return_counts=True)[1])
    if mode == "one_image":
        order = np.lexsort((np.random.default_rng(seed).random(len(identities)), identities))
        ids, first = np.unique(identities[order], return_index=True)
        rows = order[first]
        labels = attributes.iloc[rows].set_axis(pd.Index(ids))
        return IdentityEmbeddings(unit_rows(np.asarray(features)[rows]), labels, np.ones(len(ids), dtype=np.int64))
    raise ValueError(f"unknown identity embedding {mode!r}; choose one of {', '.join(IDENTITY_EMBEDDINGS)}")


def _extra_scores(
    table: IdentityEmbeddings, rows: np.ndarray, column: str, clusterer: Clusterer, probe_folds: int, factors: pd.DataFrame | None
) -> dict:
    """Clustering scores, probe and counts of the identities ``rows`` (positions in ``table``); with ``factors``
    ((I, F) states per identity of ``table``), the split's agreement with each."""
    embeddings, truth = table.embeddings[rows], table.labels[column].to_numpy()[rows]
    predicted = clusterer.fit_predict(embeddings, STATES)
    states, counts = np.unique(truth, return_counts=True)
    agreement = {} if factors is None else {"factors": _split_agreement(factors.iloc[rows], predicted, clusterer.seed)}
    return {
        **partition_scores(truth, predicted),
        "probe_accuracy": probe_accuracy(embeddings, truth, folds=probe_folds, seed=clusterer.seed),
        "identities": len(rows),
        "images": int(table.images[rows].sum()),
        "state_counts": {str(s): int(c) for s, c in zip(states, counts)},
        "floor_gap": extra_floor_gap(truth, predicted, clusterer.seed),
        **agreement,
    }


def _split_agreement(factors: pd.DataFrame, predicted: np.ndarray, seed: int) -> dict:
    """One split's agreement with each factor, and the factor it follows beyond chance (``none`` if none)."""
    scores = factor_agreement(factors, predicted, seed=seed)
    return {"scores": scores, "most_followed": split_followed(scores)}


def _controlled_rows(
    labels: pd.DataFrame, candidates: np.ndarray, column: str, held: Sequence[str], min_per_state: int, seed: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Positions of the controlled, balanced subset among ``candidates``, and the held attributes' states."""
    sub = labels.iloc[candidates]
    target = sub[column].to_numpy()
    majority = {h: 1 if (sub[h] == 1).sum() >= (sub[h] == -1).sum() else -1 for h in held}

    def kept(hold: tuple[str, ...]) -> np.ndarray:
        mask = np.ones(len(sub), dtype=bool)
        for h in hold:
            mask &= sub[h].to_numpy() == majority[h]
        return mask

    def rarer(hold: tuple[str, ...]) -> int:
        return min(int((kept(hold) & (target == state)).sum()) for state in (-1, 1))

    singles = sorted(((h,) for h in held), key=rarer, reverse=True)
    hold = next((h for h in [tuple(held), *singles] if rarer(h) >= min_per_state), ())
    keep, size = kept(hold), rarer(hold)
    rng = np.random.default_rng([seed, 11])
    chosen = [rng.choice(np.flatnonzero(keep & (target == state)), size, replace=False) for state in (-1, 1)]
    return candidates[np.sort(np.concatenate(chosen))], {h: majority[h] for h in hold}


def extra_class_protocol(
    table: IdentityEmbeddings,
    column: str,
    *,
    held: Sequence[str] = (),
    clusterer: Clusterer = Clusterer(),
    probe_folds: int = 5,
    min_identities_per_state: int = 5,
    factors: pd.DataFrame | None = None,
) -> dict:
    """Cluster identity embeddings into two and score them against a binary attribute, uncontrolled and controlled.

    Args:
        table: from :func:`identity_embeddings`; column: the attribute; held: attributes the controlled
            subset holds fixed (see the module docstring); factors: optional (I, F) ground-truth states of
            ``table``'s identities (:func:`dmlfaces.eval.factors.identity_factors`), for each split's agreement.
    Returns:
        JSON-able ``{"tied_votes": n, "uncontrolled": scores, "controlled": scores + "held_fixed"}``.
    Raises:
        NothingToClusterError: the attribute shows one state only.
    """
    target = table.labels[column].to_numpy()
    candidates = np.flatnonzero(target != 0)
    states = np.unique(target[candidates])
    counts = {"total": len(target), "tied_votes": int((target == 0).sum())}
    if len(states) < STATES:
        raise NothingToClusterError(
            f"{column}: all {len(candidates)} identities with a clear vote show one state ({states.tolist()}); "
            f"{counts['tied_votes']} more have a tied vote",
            counts,
        )
    rows, fixed = _controlled_rows(table.labels, candidates, column, held, min_identities_per_state, clusterer.seed)
    return {
        "tied_votes": counts["tied_votes"],
        "uncontrolled": _extra_scores(table, candidates, column, clusterer, probe_folds, factors),
        "controlled": {**_extra_scores(table, rows, column, clusterer, probe_folds, factors), "held_fixed": fixed},
    }


# ---------------------------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class AttributeStudyParams:
    """Settings of :func:`run_attribute_study` (flat, so a params.yaml group maps onto it).

    The ``controlled_*`` thresholds choose the images of the controlled within-identity protocol (ground
    truth only): |yaw| and |pitch| at most these degrees, light strength at most this (0 flat, 1 strong
    side light), blur radius at most this many pixels, and optionally no occluder and full resolution.
    """

    method: str = "kmeans"
    pca_components: int | None = None
    n_init: int = 10
    seed: int = 0
    identity_embedding: str = "mean"
    probe_folds: int = 5
    probe_max_images: int | None = 20_000
    min_identities_per_state: int = 5
    intra: Mapping[str, str] = field(default_factory=lambda: dict(INTRA_ATTRIBUTES))
    extra: Mapping[str, str] = field(default_factory=lambda: dict(EXTRA_ATTRIBUTES))
    controlled_max_yaw_deg: float = 20.0
    controlled_max_pitch_deg: float = 15.0
    controlled_max_light_strength: float = 0.4
    controlled_max_blur: float = 1.5
    controlled_no_occlusion: bool = True
    controlled_full_resolution: bool = True

    def __post_init__(self) -> None:
        # Fail on a bad setting before any work is done.
        check_choice("attributes", "identity_embedding", self.identity_embedding, IDENTITY_EMBEDDINGS)
        check_positive_ints(self, "attributes", ("n_init", "min_identities_per_state"))
        check_range("attributes", "seed", self.seed, 0)
        check_range("attributes", "probe_folds", self.probe_folds, 2)  # cross-validation needs two folds
        check_range("attributes", "pca_components", self.pca_components, 1)
        check_range("attributes", "probe_max_images", self.probe_max_images, 1)
        check_range("attributes", "controlled_max_yaw_deg", self.controlled_max_yaw_deg, 0, 90)
        check_range("attributes", "controlled_max_pitch_deg", self.controlled_max_pitch_deg, 0, 90)
        check_range("attributes", "controlled_max_light_strength", self.controlled_max_light_strength, 0, 1)
        check_range("attributes", "controlled_max_blur", self.controlled_max_blur, 0)
        self.clusterer()

    def clusterer(self) -> Clusterer:
        """The clustering settings alone."""
        return Clusterer(self.method, self.pca_components, self.n_init, self.seed)

    def nuisance_held(self) -> dict:
        """The controlled within-identity protocol's thresholds, for the report."""
        return {
            key.removeprefix("controlled_"): getattr(self, key)
            for key in (
                "controlled_max_yaw_deg",
                "controlled_max_pitch_deg",
                "controlled_max_light_strength",
                "controlled_max_blur",
                "controlled_no_occlusion",
                "controlled_full_resolution",
            )
        }

    def nuisance_controlled(self, truth: pd.DataFrame) -> np.ndarray:
        """(N,) mask of the ``ground_truth.csv`` rows whose nuisance factors lie within the thresholds."""
        keep = (
            (np.degrees(truth["image_yaw"].abs()) <= self.controlled_max_yaw_deg)
            & (np.degrees(truth["image_pitch"].abs()) <= self.controlled_max_pitch_deg)
            & (truth["image_light_strength"] <= self.controlled_max_light_strength)
            & (truth["image_blur"] <= self.controlled_max_blur)
        )
        if self.controlled_no_occlusion:
            keep &= truth["image_occlusion"] == 0
        if self.controlled_full_resolution:
            keep &= truth["image_low_resolution"] >= 1.0
        return keep.to_numpy()


def _aligned(features: FeatureSet | np.ndarray, celeba: CelebA) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features and the (N,) rows of ``celeba`` they belong to."""
    if isinstance(features, FeatureSet):
        rows = celeba.attributes.index.get_indexer(features.names)
        if (rows < 0).any():
            unknown = features.names[rows < 0]
            raise DataFormatError(
                celeba.root / ATTRIBUTES_FILE,
                f"{len(unknown)} feature rows name images that it does not list (e.g. {unknown[0]})",
                fix=f"extract the features from this data set ('dmlfaces extract --celeba {celeba.root}')",
            )
        return np.asarray(features.features), rows
    features = np.asarray(features)
    if len(features) != len(celeba.attributes):
        raise ValueError(
            f"{len(features)} feature rows for {len(celeba.attributes)} images: pass a FeatureSet, "
            f"or one row per image in the order of {ATTRIBUTES_FILE}"
        )
    return features, np.arange(len(features))


def _by_frame(per_identity: pd.DataFrame, frames: pd.Series) -> dict:
    """Per glasses frame of the person (thin, thick): identities and mean per-identity scores of the glasses split."""
    frame_of = frames.loc[per_identity.index]
    return {
        str(frame): {
            "identities": int(len(rows)),
            "accuracy": float(rows["accuracy"].mean()),
            "chance_accuracy": float(rows["chance_accuracy"].mean()),
            "majority_rate": float(rows["majority_rate"].mean()),
        }
        for frame, rows in per_identity.groupby(frame_of.to_numpy())
    }


class _WithinIdentity:
    """One clustering of every identity's images (the split is shared by all within-identity attributes),
    and, with ground truth, its agreement with every image factor."""

    def __init__(self, features: np.ndarray, identities: np.ndarray, clusterer: Clusterer, factors: pd.DataFrame | None) -> None:
        self.features, self.identities, self.clusterer = features, identities, clusterer
        self.clusters = cluster_identities(features, identities, clusterer)
        self.agreement = self.null_agreement = None
        if factors is not None:
            several = self.clusters >= 0
            clusters, groups = self.clusters[several], identities[several]
            self.agreement = grouped_factor_agreement(factors[several], clusters, groups, seed=clusterer.seed)
            # The same splits shuffled within each identity: how often each factor tops a split by luck.
            self.null_agreement = grouped_factor_agreement(
                factors[several], shuffled_clusters(clusters, groups, clusterer.seed), groups, seed=clusterer.seed
            )

    def report(self, states: np.ndarray, column: str, params: AttributeStudyParams, frames: pd.Series | None = None) -> dict:
        """The intra-class summary of one attribute, with what its splits follow and, given ``frames``
        (each identity's glasses frame), the scores by frame."""
        try:
            result = intra_class_protocol(
                self.features,
                self.identities,
                states,
                column=column,
                clusterer=self.clusterer,
                clusters=self.clusters,
                probe_folds=params.probe_folds,
                probe_max_images=params.probe_max_images,
            )
        except NothingToClusterError as exc:
            return {"status": "skipped", "reason": str(exc), "identities": exc.counts}
        summary = {"status": "ok", **result.summary}
        if self.agreement is not None:
            summary["factors"] = agreement_summary(
                self.agreement, self.null_agreement, rows=result.per_identity.index.to_numpy(), seed=self.clusterer.seed
            )
        if frames is not None:
            summary["by_frame"] = _by_frame(result.per_identity, frames)
        return summary


def run_attribute_study(
    features: FeatureSet | np.ndarray,
    celeba: CelebA,
    params: AttributeStudyParams | None = None,
    ground_truth: pd.DataFrame | None = None,
) -> dict:
    """Both protocols on every attribute: a JSON-able dict keyed by attribute (for results/metrics/attributes.json).

    Args:
        features: a FeatureSet named by CelebA image, or (N, D) rows in the order of the attribute file;
            rows are scaled to unit length.
        ground_truth: optional ``ground_truth.csv`` rows of ``celeba``'s images
            (:func:`dmlfaces.eval.factors.celeba_ground_truth`): adds each split's factor agreement, the
            controlled within-identity protocol and glasses by frame.
    Returns:
        ``{name: {"protocol", "column", "method", "status": "ok" | "skipped", ...}}``; a skipped attribute
        carries the reason and the counts of what was dropped. With ground truth a within-identity attribute
        also holds ``factors`` and ``controlled`` (the same summary on the nuisance-controlled images, its
        thresholds in ``nuisance_held``), glasses ``by_frame``; an across-identity subset holds ``factors``.
    """
    params = params or AttributeStudyParams()
    clusterer = params.clusterer()
    attributes = attribute_columns(celeba, [*params.intra.values(), *params.extra.values()])
    features, rows = _aligned(features, celeba)
    if not len(rows):
        raise DataFormatError(
            celeba.root / ATTRIBUTES_FILE,
            "no feature rows name its images: there is nothing to study",
            fix=f"extract the features from this data set ('dmlfaces extract --celeba {celeba.root}')",
        )
    features = unit_rows(features.astype(np.float32))
    identities = celeba.identities.to_numpy()[rows]
    attributes = attributes.iloc[rows]
    if ground_truth is not None and not ground_truth.index.equals(celeba.attributes.index):
        raise ValueError(
            "ground_truth must hold one row per image of the CelebA layout, in the order of "
            f"{ATTRIBUTES_FILE} (dmlfaces.eval.factors.celeba_ground_truth gives that)"
        )
    truth = None if ground_truth is None else ground_truth.iloc[rows]
    report: dict[str, dict] = {}

    within = _WithinIdentity(features, identities, clusterer, None if truth is None else image_factors(truth))
    if truth is not None:
        steady = params.nuisance_controlled(truth)
        controlled = _WithinIdentity(features[steady], identities[steady], clusterer, image_factors(truth[steady]))
        frames = truth["person_glasses_frame"].set_axis(pd.Index(identities)).groupby(level=0).first()
    for name, column in params.intra.items():
        states = attributes[column].to_numpy()
        # Glasses by frame: the frame is the person's, so each identity's split belongs to one frame.
        frame_of = frames if truth is not None and column == INTRA_ATTRIBUTES["glasses"] else None
        report[name] = {
            "protocol": "intra",
            "column": column,
            "method": clusterer.method,
            **within.report(states, column, params, frame_of),
        }
        if truth is not None:
            report[name]["controlled"] = {
                "nuisance_held": params.nuisance_held(),
                "images_kept": int(steady.sum()),
                **controlled.report(states[steady], column, params, frame_of),
            }

    table = identity_embeddings(
        features,
        identities,
        attributes[list(dict.fromkeys(params.extra.values()))],
        mode=params.identity_embedding,
        seed=params.seed,
    )
    people = None if truth is None else identity_factors(truth, identities).loc[table.labels.index]
    for name, column in params.extra.items():
        report[name] = {
            "protocol": "extra",
            "column": column,
            "method": clusterer.method,
            "identity_embedding": params.identity_embedding,
        }
        held = [other for other in params.extra.values() if other != column]
        try:
            report[name] |= {
                "status": "ok",
                **extra_class_protocol(
                    table,
                    column,
                    held=held,
                    clusterer=clusterer,
                    probe_folds=params.probe_folds,
                    min_identities_per_state=params.min_identities_per_state,
                    factors=people,
                ),
            }
        except NothingToClusterError as exc:
            report[name] |= {"status": "skipped", "reason": str(exc), "identities": exc.counts}
    return report
