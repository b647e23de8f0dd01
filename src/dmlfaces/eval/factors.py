"""What a clustering follows: the agreement of a 2-way split with every ground-truth factor of SynthFaces.

A real data set labels a few attributes; SynthFaces knows every latent factor of every image
(``ground_truth.csv``). So where Study A's clusters miss the attribute asked for, the ground truth can say
what they follow instead: pose, light, an occluder, the background.

* :func:`celeba_ground_truth` joins ``ground_truth.csv`` to the CelebA-layout images;
* :func:`image_factors` / :func:`identity_factors` turn the latent factors into categorical states
  (continuous ones binned at the edges of ``FACTOR_BINS``; the reason for each edge is beside it);
* :func:`grouped_factor_agreement` scores one clustering per group (an identity's images) against every
  factor, :func:`factor_agreement` one clustering of identities; :func:`most_followed` names the factor.

Agreement is Hungarian accuracy and NMI. NMI is compared across factors after subtracting its chance level
(the mean NMI with the factor's states shuffled inside the group): on 16 images a factor with five states
reaches a higher NMI by luck than a binary one. That removes the mean advantage, not the larger spread of
such factors, so a factor is said to be *followed* only beyond what splits that follow nothing give it:
within identities, when the share of identities whose split it tops exceeds its share for random splits of
the same sizes (95 % interval from resampling identities, above 0); across identities, when the split's NMI
exceeds the 95th percentile of its NMI with the factor's states shuffled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dmlfaces.data.celeba import CelebA
from dmlfaces.data.ground_truth import REGENERATE, split_ground_truth
from dmlfaces.eval.clustering import group_tables, grouped_partition_scores, table_scores

CELEBA_SPLIT = "celeba"
NONE_FOLLOWED = "none"  # no factor agrees beyond its chance level

# Bin edges of the continuous factors. Pose: 15 degrees of yaw and 10 of pitch bound the near-frontal band
# of face benchmarks (CFP's frontal set, IJB's pose bins); light: below 0.15 the renderer's side ramp changes
# brightness by under 25 % across the face; exposure: 15 % from normal is what auto-exposure leaves;
# blur and noise: the renderer's mild and strong regimes.
FACTOR_BINS: dict[str, tuple[float, ...]] = {
    "yaw_deg": (-15.0, 15.0),
    "pitch_deg": (-10.0, 10.0),
    "light_strength": (0.15,),
    "brightness": (0.85, 1.15),
    "blur": (0.0, 2.0),
    "noise": (5.0, 15.0),
}

REQUIRED_COLUMNS = (
    "split",
    "path",
    "person_gender",
    "person_skin_label",
    "person_age_group",
    "person_hair_colour",
    "person_hair_style",
    "person_glasses_frame",
    "image_beard",
    "image_glasses",
    "image_expression",
    "image_yaw",
    "image_pitch",
    "image_light_angle",
    "image_light_strength",
    "image_brightness",
    "image_background",
    "image_occlusion",
    "image_blur",
    "image_noise",
    "image_low_resolution",
)


def celeba_ground_truth(path: str | Path, celeba: CelebA, fix: str | None = None) -> pd.DataFrame:
    """The rows of ``ground_truth.csv`` of ``celeba``'s images, indexed by image name in the order of its attributes.
    ``fix`` is what the errors advise besides regenerating the data set (the caller's way out, e.g. a command's flag).

    Raises:
        DataFormatError: the file is missing, lacks a column of ``REQUIRED_COLUMNS``, or lists none or not all of
            the images (a real CelebA has no ground truth: the factor analysis is SynthFaces' alone).
    """
    return split_ground_truth(
        path,
        CELEBA_SPLIT,
        celeba.attributes.index,
        columns=REQUIRED_COLUMNS,
        images_of=celeba.root,
        fix=f"{REGENERATE}, or {fix}" if fix else None,
    )


def _binned(values: pd.Series, edges: tuple[float, ...], names: tuple[str, ...]) -> pd.Series:
    """Categorical states of ``values``: ``names[i]`` for values in (edges[i - 1], edges[i]] (the ends open)."""
    codes = np.searchsorted(np.asarray(edges), values.to_numpy(), side="left")
    return pd.Series(np.asarray(names, dtype=object)[codes], index=values.index)


def _illumination(truth: pd.DataFrame) -> pd.Series:
    """flat, or the side of the strongest light (the renderer's ramp: cos > 0 brightens the right, sin > 0 the bottom)."""
    angle = truth["image_light_angle"].to_numpy()
    horizontal = np.abs(np.cos(angle)) >= np.abs(np.sin(angle))
    side = np.where(horizontal, np.where(np.cos(angle) > 0, "right", "left"), np.where(np.sin(angle) > 0, "below", "above"))
    flat = truth["image_light_strength"].to_numpy() <= FACTOR_BINS["light_strength"][0]
    return pd.Series(np.where(flat, "flat", side).astype(object), index=truth.index)


IMAGE_FACTORS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "yaw": lambda t: _binned(np.degrees(t["image_yaw"]), FACTOR_BINS["yaw_deg"], ("left", "frontal", "right")),
    "pitch": lambda t: _binned(np.degrees(t["image_pitch"]), FACTOR_BINS["pitch_deg"], ("down", "level", "up")),
    "illumination": _illumination,
    "exposure": lambda t: _binned(t["image_brightness"], FACTOR_BINS["brightness"], ("dark", "normal", "bright")),
    "expression": lambda t: t["image_expression"].astype(object),
    "smiling": lambda t: t["image_expression"] == "smiling",  # the binary attribute CelebA labels (Smiling)
    "beard": lambda t: t["image_beard"].astype(bool),
    "glasses": lambda t: t["image_glasses"].astype(bool),
    "occlusion": lambda t: t["image_occlusion"] > 0,
    "blur": lambda t: _binned(t["image_blur"], FACTOR_BINS["blur"], ("none", "mild", "strong")),
    "noise": lambda t: _binned(t["image_noise"], FACTOR_BINS["noise"], ("low", "medium", "high")),
    "resolution": lambda t: t["image_low_resolution"] < 1.0,
    "background": lambda t: t["image_background"].astype(object),
}
"""Image-level factors: they vary among one person's images, so they can explain a within-identity split."""

PERSON_FACTORS: dict[str, str] = {
    "gender": "person_gender",
    "skin_tone": "person_skin_label",
    "age": "person_age_group",
    "hair_colour": "person_hair_colour",
    "hair_style": "person_hair_style",
}
"""Person-level factors, with the majority of the image-level beard and glasses: what can explain a split of identities."""


def image_factors(truth: pd.DataFrame) -> pd.DataFrame:
    """(N, F) categorical states of the image-level factors of ``truth``'s rows (columns: ``IMAGE_FACTORS``)."""
    return pd.DataFrame({name: state(truth) for name, state in IMAGE_FACTORS.items()}, index=truth.index)


def identity_factors(truth: pd.DataFrame, identities: np.ndarray) -> pd.DataFrame:
    """(I, F) states per identity (sorted ids): ``PERSON_FACTORS``, and beard / glasses on most of its images."""
    frame = truth[list(PERSON_FACTORS.values())].set_axis(list(PERSON_FACTORS), axis=1).astype(object)
    frame["beard"] = truth["image_beard"].astype(bool)
    frame["glasses"] = truth["image_glasses"].astype(bool)
    grouped = frame.set_axis(pd.Index(np.asarray(identities), name="identity")).groupby(level=0)
    people = grouped[list(PERSON_FACTORS)].first()
    for name in ("beard", "glasses"):
        people[name] = grouped[name].mean() > 0.5
    return people


def _codes(states: pd.Series) -> np.ndarray:
    """(N,) integer codes of categorical states (their sorted order).

    Raises:
        ValueError: a state is missing (NaN), naming the factor and the first row: it would be a state of its own.
    """
    if states.isna().any():
        raise ValueError(
            f"factor {states.name!r}: no state for row {states.index[int(np.argmax(states.isna()))]!r}; "
            "every image needs every factor (regenerate ground_truth.csv with 'dmlfaces synth')"
        )
    return np.unique(states.astype(str).to_numpy(), return_inverse=True)[1].reshape(-1)


def grouped_factor_agreement(
    factors: pd.DataFrame, clusters: np.ndarray, groups: np.ndarray, *, chance_repeats: int = 10, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Per group, how far the clustering inside it agrees with each factor.

    Args:
        factors: (N, F) states; clusters: (N,) labels of a clustering done inside each group; groups: (N,) ids.
    Returns:
        ``{"accuracy", "nmi", "chance_nmi", "excess_nmi"}``: (G, F) frames indexed by sorted group id;
        excess_nmi = nmi - chance_nmi.
    """
    scores: dict[str, dict[str, pd.Series]] = {"accuracy": {}, "nmi": {}, "chance_nmi": {}}
    for name in factors.columns:
        per_group = grouped_partition_scores(
            _codes(factors[name]), clusters, groups, chance_repeats=chance_repeats, seed=seed, chance_nmi=True
        )
        for key in scores:
            scores[key][name] = per_group[key]
    frames = {key: pd.DataFrame(columns) for key, columns in scores.items()}
    frames["excess_nmi"] = frames["nmi"] - frames["chance_nmi"]
    return frames


NULL_SHUFFLES = 200  # shuffles of a factor's states for the null distribution of one split's NMI
BOOTSTRAP = 1000  # resamples of identities for the interval of a factor's excess share


def factor_agreement(factors: pd.DataFrame, clusters: np.ndarray, *, seed: int = 0) -> dict[str, dict]:
    """How far one clustering of all rows (identities) agrees with each factor.

    Returns:
        ``{factor: {accuracy, nmi, chance_nmi, excess_nmi, null_nmi_q95, beyond_chance}}``: chance_nmi and the
        95th percentile are over ``NULL_SHUFFLES`` shuffles of the factor's states; ``beyond_chance`` says
        whether the NMI exceeds that percentile.
    """
    rng = np.random.default_rng([seed, 23])
    clusters_code = np.unique(clusters, return_inverse=True)[1].reshape(-1)
    clusters_count = int(clusters_code.max()) + 1
    report = {}
    for name in factors.columns:
        codes = _codes(factors[name])
        shape = (int(codes.max()) + 1, clusters_count)
        observed = table_scores(group_tables(np.zeros(len(codes), dtype=np.int64), codes, clusters_code, (1, *shape)))
        shuffled = np.stack([rng.permutation(codes) for _ in range(NULL_SHUFFLES)])
        replicate = np.repeat(np.arange(NULL_SHUFFLES), len(codes))
        null = table_scores(
            group_tables(replicate, shuffled.ravel(), np.tile(clusters_code, NULL_SHUFFLES), (NULL_SHUFFLES, *shape))
        )["nmi"]
        nmi, q95 = float(observed["nmi"][0]), float(np.quantile(null, 0.95))
        report[name] = {
            "accuracy": float(observed["accuracy"][0]),
            "nmi": nmi,
            "chance_nmi": float(null.mean()),
            "excess_nmi": nmi - float(null.mean()),
            "null_nmi_q95": q95,
            "beyond_chance": bool(nmi > q95),
        }
    return report


def split_followed(scores: Mapping[str, Mapping]) -> str:
    """The factor of highest excess NMI among those beyond chance in :func:`factor_agreement`'s report, else ``none``."""
    beyond = [name for name, score in scores.items() if score["beyond_chance"]]
    return max(beyond, key=lambda name: scores[name]["excess_nmi"]) if beyond else NONE_FOLLOWED


def most_followed(excess_nmi: pd.DataFrame) -> pd.Series:
    """(G,) the factor of highest excess NMI per row, or ``NONE_FOLLOWED`` where no factor beats its chance level.

    Ties go to the first factor in column order; a factor constant in a group has excess 0 there and never wins.
    """
    filled = excess_nmi.astype(float).fillna(-math.inf)
    best = filled.to_numpy().argmax(1)
    top = np.asarray(excess_nmi.columns, dtype=object)[best]
    return pd.Series(np.where(filled.to_numpy().max(1) > 0, top, NONE_FOLLOWED), index=excess_nmi.index)


def shuffled_clusters(clusters: np.ndarray, groups: np.ndarray, seed: int) -> np.ndarray:
    """(N,) cluster labels permuted at random inside each group: a split of the same sizes that follows nothing."""
    rng = np.random.default_rng([seed, 13])
    in_order = np.argsort(groups, kind="stable")
    shuffled = np.lexsort((rng.random(len(groups)), groups))
    out = np.empty_like(clusters)
    out[in_order] = clusters[shuffled]
    return out


def agreement_summary(
    frames: Mapping[str, pd.DataFrame], null: Mapping[str, pd.DataFrame], rows: np.ndarray | None = None, seed: int = 0
) -> dict:
    """JSON-able summary over the groups ``rows`` (ids; all when None) of :func:`grouped_factor_agreement`'s frames.

    Args:
        null: the frames of the same groups for splits that follow nothing (:func:`shuffled_clusters`): how
            often each factor comes out on top by luck.
    Returns:
        ``problems``; ``mean`` per score and factor; ``top_share`` and ``null_top_share``: per factor (and
        ``none``), the share of problems whose top factor it is, for the splits and for the random ones;
        ``excess_share``: per factor the difference with its 95 % interval (identities resampled, paired);
        ``most_followed``: the factor of largest excess share among those whose interval lies above 0, else
        ``none``.
    """
    order = [*frames["nmi"].columns, NONE_FOLLOWED]
    chosen = {key: frame if rows is None else frame.loc[rows] for key, frame in frames.items()}
    luck = {key: frame if rows is None else frame.loc[rows] for key, frame in null.items()}
    top, top_null = most_followed(chosen["excess_nmi"]).to_numpy(), most_followed(luck["excess_nmi"]).to_numpy()
    hits = np.stack([(top == name).astype(float) - (top_null == name) for name in order], 1)  # (G, F + 1)
    draws = np.random.default_rng([seed, 29]).integers(0, max(len(top), 1), (BOOTSTRAP, len(top)))
    resampled = hits[draws].mean(1) if len(top) else np.zeros((BOOTSTRAP, len(order)))
    low, high = np.quantile(resampled, [0.025, 0.975], axis=0)
    excess = {
        name: {"difference": float(hits[:, i].mean()) if len(top) else 0.0, "low": float(low[i]), "high": float(high[i])}
        for i, name in enumerate(order)
    }
    clear = [name for name in order[:-1] if excess[name]["low"] > 0]
    return {
        "problems": int(len(top)),
        "mean": {key: {name: float(frame[name].mean()) for name in frame.columns} for key, frame in chosen.items()},
        "top_share": {name: float((top == name).mean()) if len(top) else 0.0 for name in order},
        "null_top_share": {name: float((top_null == name).mean()) if len(top) else 0.0 for name in order},
        "excess_share": excess,
        "most_followed": max(clear, key=lambda name: excess[name]["difference"]) if clear else NONE_FOLLOWED,
    }
