"""What a clustering follows: ground-truth factor states, per-group agreement, the most-followed factor, and
the join of ground_truth.csv to a CelebA layout (on the real generator's tiny data set)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dmlfaces.data.celeba import read_celeba
from dmlfaces.data.errors import DataFormatError
from dmlfaces.eval.factors import (
    IMAGE_FACTORS,
    NONE_FOLLOWED,
    PERSON_FACTORS,
    agreement_summary,
    celeba_ground_truth,
    factor_agreement,
    grouped_factor_agreement,
    identity_factors,
    image_factors,
    most_followed,
    shuffled_clusters,
    split_followed,
)


def test_ground_truth_joins_every_celeba_image_in_attribute_order(tiny_data) -> None:
    celeba = read_celeba(tiny_data / "celeba")
    truth = celeba_ground_truth(tiny_data / "ground_truth.csv", celeba)
    assert list(truth.index) == list(celeba.attributes.index)
    # The generator's labels and its ground truth agree image by image.
    assert ((celeba.attributes["Eyeglasses"] == 1) == truth["image_glasses"].astype(bool)).all()
    assert ((celeba.attributes["Male"] == 1).to_numpy() == (truth["person_gender"] == "male").to_numpy()).all()
    states = image_factors(truth)
    assert list(states.columns) == list(IMAGE_FACTORS) and not states.isna().any().any()
    people = identity_factors(truth, celeba.identities.to_numpy())
    assert list(people.columns) == [*PERSON_FACTORS, "beard", "glasses"]
    assert len(people) == celeba.identities.nunique()


def test_ground_truth_errors_name_the_file_and_what_is_missing(tiny_data, tmp_path) -> None:
    celeba = read_celeba(tiny_data / "celeba")
    with pytest.raises(DataFormatError, match=r"nothing.csv: no SynthFaces ground-truth file"):
        celeba_ground_truth(tmp_path / "nothing.csv", celeba)
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    truth.drop(columns="image_yaw").to_csv(tmp_path / "no_yaw.csv", index=False)
    with pytest.raises(DataFormatError, match=r"no_yaw.csv: no column 'image_yaw'"):
        celeba_ground_truth(tmp_path / "no_yaw.csv", celeba)
    truth[truth["path"] != "celeba/img_align_celeba/000002.jpg"].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(
        DataFormatError, match=r"short.csv: lists 59 of the 60 images of .*celeba \(split celeba; e.g. not 000002.jpg\)"
    ) as short:
        celeba_ground_truth(tmp_path / "short.csv", celeba)
    assert str(short.value).endswith("Fix: regenerate the data set with 'dmlfaces synth'")  # a folder's names: no features advice
    with pytest.raises(DataFormatError, match=r"short.csv: lists 59 of the 60") as advised:
        celeba_ground_truth(tmp_path / "short.csv", celeba, fix="run without --ground-truth")
    assert str(advised.value).endswith("Fix: regenerate the data set with 'dmlfaces synth', or run without --ground-truth")
    pd.concat([truth, truth[truth["path"] == "celeba/img_align_celeba/000003.jpg"]]).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(DataFormatError, match=r"twice.csv:317: image 000003.jpg is listed twice"):
        celeba_ground_truth(tmp_path / "twice.csv", celeba)


def test_continuous_factors_are_binned_at_their_edges() -> None:
    degrees = np.array([-30.0, -15.0, 0.0, 15.0, 16.0])
    truth = pd.DataFrame(
        {
            "image_yaw": np.radians(degrees),
            "image_pitch": np.radians([-11.0, 0, 0, 0, 11.0]),
            "image_light_angle": [0.0, np.pi, np.pi / 2, -np.pi / 2, 0.0],
            "image_light_strength": [0.5, 0.5, 0.5, 0.5, 0.1],
            "image_brightness": [0.5, 1.0, 1.0, 1.0, 1.3],
            "image_expression": ["neutral"] * 5,
            "image_beard": [False] * 5,
            "image_glasses": [True, False, False, False, False],
            "image_occlusion": [0, 0.2, 0, 0, 0],
            "image_blur": [0.0, 0.5, 2.0, 2.5, 0.0],
            "image_noise": [1.0, 5.0, 6.0, 20.0, 0.0],
            "image_low_resolution": [1.0, 0.25, 1.0, 1.0, 1.0],
            "image_background": ["plain"] * 5,
        }
    )
    states = image_factors(truth)
    assert states["yaw"].tolist() == ["left", "frontal", "frontal", "frontal", "right"]
    assert states["pitch"].tolist() == ["down", "level", "level", "level", "up"]
    assert states["illumination"].tolist() == ["right", "left", "below", "above", "flat"]
    assert states["exposure"].tolist() == ["dark", "normal", "normal", "normal", "bright"]
    assert states["blur"].tolist() == ["none", "mild", "mild", "strong", "none"]
    assert states["noise"].tolist() == ["low", "low", "medium", "high", "low"]
    assert states["occlusion"].tolist() == [False, True, False, False, False]
    assert states["resolution"].tolist() == [False, True, False, False, False]


def test_agreement_names_the_factor_a_split_follows() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 12)
    pose = np.tile(np.repeat(["left", "right"], 6), 40)
    light = rng.choice(["flat", "left", "right"], len(groups))
    clusters = (pose == "right").astype(int)
    clusters[rng.random(len(groups)) < 0.1] ^= 1  # a few images on the wrong side
    factors = pd.DataFrame({"light": light, "pose": pose, "constant": "x"})
    frames = grouped_factor_agreement(factors, clusters, groups, chance_repeats=10)
    assert set(frames) == {"accuracy", "nmi", "chance_nmi", "excess_nmi"}
    assert (frames["accuracy"]["pose"] >= 0.75).all() and (frames["excess_nmi"]["constant"] == 0).all()
    top = most_followed(frames["excess_nmi"])
    assert (top == "pose").mean() > 0.9
    null = grouped_factor_agreement(factors, shuffled_clusters(clusters, groups, seed=0), groups)
    summary = agreement_summary(frames, null, rows=np.arange(20))
    assert summary["problems"] == 20 and summary["most_followed"] == "pose"
    assert sum(summary["top_share"].values()) == pytest.approx(1.0) and summary["top_share"]["constant"] == 0
    assert summary["excess_share"]["pose"]["low"] > 0.5  # far more often on top than for random splits
    # Random splits follow nothing: no factor tops them more often than other random splits.
    nothing = agreement_summary(null, grouped_factor_agreement(factors, shuffled_clusters(clusters, groups, seed=1), groups))
    assert nothing["most_followed"] == NONE_FOLLOWED
    # One split of everything, as across identities: beyond chance for the factor it follows, not for noise.
    single = factor_agreement(factors, clusters)
    assert single["pose"]["beyond_chance"] and not single["light"]["beyond_chance"]
    assert single["pose"]["nmi"] > single["pose"]["null_nmi_q95"] and split_followed(single) == "pose"
    assert split_followed({"a": {"beyond_chance": False, "excess_nmi": 0.3}}) == NONE_FOLLOWED
    # A split that follows nothing has no most-followed factor.
    assert most_followed(pd.DataFrame({"a": [-0.1, 0.0], "b": [0.0, -0.2]})).tolist() == [NONE_FOLLOWED] * 2
