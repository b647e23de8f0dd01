"""Study A's protocols on planted embeddings in a CelebA-layout directory: recovery, chance, skips, errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from dmlfaces.data.celeba import CELEBA_ATTRIBUTES, CelebA, read_celeba, write_celeba
from dmlfaces.data.errors import DataFormatError
from dmlfaces.eval.attributes import (
    AttributeStudyParams,
    IdentityEmbeddings,
    NothingToClusterError,
    attribute_columns,
    extra_class_protocol,
    identity_embeddings,
    intra_class_protocol,
    run_attribute_study,
)
from dmlfaces.features import FeatureSet

IDENTITIES, IMAGES, DIM = 24, 8, 32


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Problems this small gain nothing from threads, and on a busy machine threads cost a lot."""
    with threadpool_limits(1):
        yield


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(N, DIM) features of IDENTITIES x IMAGES images; Eyeglasses (per image) and Male (per identity) are
    planted along two directions, Smiling and Young are drawn independently of the features."""
    rng = np.random.default_rng(seed)
    identities = np.repeat(np.arange(IDENTITIES) + 100, IMAGES)
    n = len(identities)
    values = rng.choice(np.array([-1, 1], dtype=np.int8), (n, len(CELEBA_ATTRIBUTES)))
    attributes = pd.DataFrame(values, columns=list(CELEBA_ATTRIBUTES))
    attributes["Male"] = np.repeat(rng.permutation(np.arange(IDENTITIES) % 2 * 2 - 1), IMAGES)
    attributes["Young"] = np.repeat(rng.choice([-1, 1], IDENTITIES), IMAGES)
    attributes["Eyeglasses"] = np.tile(rng.permutation(np.arange(IMAGES) % 2 * 2 - 1), IDENTITIES)
    glasses, male = np.linalg.qr(rng.normal(size=(DIM, 2)))[0].T
    features = (rng.normal(size=(IDENTITIES, DIM)) / np.sqrt(DIM))[identities - 100]
    features += 0.3 * rng.normal(size=(n, DIM)) / np.sqrt(DIM)
    features += attributes["Eyeglasses"].to_numpy()[:, None] * glasses
    features += 2 * attributes["Male"].to_numpy()[:, None] * male
    return features.astype(np.float32), identities, attributes


@pytest.fixture()
def planted_celeba(tmp_path: Path) -> tuple[np.ndarray, CelebA]:
    features, identities, attributes = _planted()
    names = [f"{i:06d}.jpg" for i in range(1, len(identities) + 1)]
    write_celeba(tmp_path, names, attributes.to_numpy(), identities, np.zeros(len(names), dtype=np.int64))
    return features, read_celeba(tmp_path)


def test_intra_class_recovers_a_planted_attribute_and_not_a_random_one() -> None:
    features, identities, attributes = _planted()
    planted = intra_class_protocol(features, identities, attributes["Eyeglasses"].to_numpy())
    assert planted.summary["accuracy"]["mean"] == 1.0 and planted.summary["probe_accuracy"] > 0.95
    assert planted.summary["identities"] == {"total": IDENTITIES, "used": IDENTITIES, "single_image": 0, "one_state": 0}
    random = intra_class_protocol(features, identities, attributes["Smiling"].to_numpy()).summary
    assert random["accuracy"]["mean"] < 0.8
    assert random["accuracy"]["mean"] == pytest.approx(random["chance_accuracy"], abs=0.1)
    assert sum(random["accuracy"]["histogram"]["counts"]) == random["identities"]["used"]


def test_intra_class_skips_single_images_and_one_state_identities() -> None:
    features, identities, attributes = _planted()
    states = attributes["Eyeglasses"].to_numpy().copy()
    states[identities == 101] = 1  # one state only
    keep = ~((identities == 102) & (np.arange(len(identities)) % IMAGES > 0))  # a single image left
    result = intra_class_protocol(features[keep], identities[keep], states[keep])
    assert result.summary["identities"] == {"total": IDENTITIES, "used": IDENTITIES - 2, "single_image": 1, "one_state": 1}
    assert result.summary["images"] == (IDENTITIES - 2) * IMAGES
    assert 101 not in result.per_identity.index and 102 not in result.per_identity.index
    with pytest.raises(NothingToClusterError, match=r"No_Beard: no identity .* 24 show one state only"):
        intra_class_protocol(features, identities, np.ones(len(identities)), column="No_Beard")


def test_extra_class_recovers_gender_and_controls_the_held_attribute() -> None:
    features, identities, attributes = _planted()
    table = identity_embeddings(features, identities, attributes[["Male", "Young", "Smiling"]])
    gender = extra_class_protocol(table, "Male", held=["Young"], min_identities_per_state=2)
    assert gender["uncontrolled"]["accuracy"] == 1.0 and gender["uncontrolled"]["images"] == IDENTITIES * IMAGES
    controlled = gender["controlled"]
    young_majority = 1 if (table.labels["Young"] == 1).sum() >= IDENTITIES / 2 else -1
    assert controlled["held_fixed"] == {"Young": young_majority}
    assert controlled["state_counts"]["-1"] == controlled["state_counts"]["1"] and controlled["majority_rate"] == 0.5
    # Asking for more identities per state than holding Young leaves relaxes the control to none.
    relaxed = extra_class_protocol(table, "Male", held=["Young"], min_identities_per_state=IDENTITIES)
    assert relaxed["controlled"]["held_fixed"] == {} and relaxed["controlled"]["identities"] == IDENTITIES
    assert extra_class_protocol(table, "Young")["uncontrolled"]["accuracy"] < 0.8


def test_identity_embeddings_vote_with_ties_and_one_image_mode() -> None:
    features = np.eye(4, dtype=np.float32)
    frame = pd.DataFrame({"Male": [1, -1, 1, 1]}, dtype=np.int8)
    table = identity_embeddings(features, np.array([7, 7, 3, 3]), frame)
    assert table.labels["Male"].to_dict() == {3: 1, 7: 0} and table.images.tolist() == [2, 2]
    assert np.allclose(table.embeddings[0], [0, 0, np.sqrt(0.5), np.sqrt(0.5)])
    single = identity_embeddings(features, np.array([7, 7, 3, 3]), frame, mode="one_image", seed=1)
    assert single.images.tolist() == [1, 1] and single.labels.index.tolist() == [3, 7]
    ties = IdentityEmbeddings(np.eye(3), pd.DataFrame({"Male": [0, 1, 1]}), np.ones(3, dtype=np.int64))
    with pytest.raises(NothingToClusterError, match=r"Male: all 2 identities .* one state \(\[1\]\); 1 more"):
        extra_class_protocol(ties, "Male")


def test_missing_column_names_the_column_the_file_and_the_available_ones(planted_celeba) -> None:
    _, celeba = planted_celeba
    without = dataclasses.replace(celeba, attributes=celeba.attributes.drop(columns="Eyeglasses"))
    with pytest.raises(DataFormatError) as error:
        attribute_columns(without, ["Male", "Eyeglasses"])
    message = str(error.value)
    assert "'Eyeglasses'" in message and str(celeba.root / "list_attr_celeba.txt") in message
    assert "Double_Chin, Goatee" in message and "39 columns" in message
    with pytest.raises(DataFormatError, match="Eyeglasses"):
        run_attribute_study(planted_celeba[0], without)


def test_run_attribute_study_reports_every_attribute_as_json(planted_celeba) -> None:
    features, celeba = planted_celeba
    names = celeba.attributes.index.to_numpy()
    # Features for all images but seven of identity 100's: it keeps a single image.
    keep = np.ones(len(names), dtype=bool)
    keep[1:IMAGES] = False
    feature_set = FeatureSet(names=names[keep], features=features[keep], norms=np.ones(keep.sum(), np.float32))
    params = AttributeStudyParams(
        n_init=3,
        probe_folds=3,
        min_identities_per_state=3,
        intra={"glasses": "Eyeglasses", "expression": "Smiling", "hat": "Wearing_Hat"},
    )
    flat = dataclasses.replace(celeba, attributes=celeba.attributes.assign(Wearing_Hat=np.int8(-1)))
    report = json.loads(json.dumps(run_attribute_study(feature_set, flat, params)))
    assert list(report) == ["glasses", "expression", "hat", "gender", "skin_tone", "age"]
    glasses = report["glasses"]
    assert glasses["status"] == "ok" and glasses["accuracy"]["mean"] == 1.0
    assert glasses["identities"]["single_image"] == 1 and glasses["identities"]["used"] == IDENTITIES - 1
    assert report["expression"]["accuracy"]["mean"] < 0.8
    # Above the floor only where the interval of the gap says so: the planted attribute, not the random one.
    assert glasses["floor_gap"]["low"] > 0.2
    expression = report["expression"]["floor_gap"]
    assert expression["low"] < 0 < expression["high"]
    assert report["gender"]["uncontrolled"]["floor_gap"]["low"] > 0.2
    assert report["hat"]["status"] == "skipped" and report["hat"]["identities"]["one_state"] == IDENTITIES - 1
    assert report["gender"]["uncontrolled"]["accuracy"] == 1.0
    assert report["gender"]["controlled"]["held_fixed"].keys() <= {"Pale_Skin", "Young"}
    assert report["age"]["uncontrolled"]["identities"] == IDENTITIES


def test_run_attribute_study_rejects_features_of_another_data_set(planted_celeba) -> None:
    features, celeba = planted_celeba
    stranger = FeatureSet(np.array(["999999.jpg"]), features[:1], np.ones(1, np.float32))
    with pytest.raises(
        DataFormatError,
        match=r"list_attr_celeba.txt: 1 feature rows name images that it does not list "
        r"\(e.g. 999999.jpg\). Fix: extract the features from this data set",
    ):
        run_attribute_study(stranger, celeba)
    with pytest.raises(ValueError, match="3 feature rows for 192 images"):
        run_attribute_study(features[:3], celeba)
    with pytest.raises(ValueError, match=r"identity_embedding = 'median'; choose one of \['mean', 'one_image'\]"):
        AttributeStudyParams(identity_embedding="median")
    with pytest.raises(ValueError, match="unknown clustering method 'dbscan'"):
        AttributeStudyParams(method="dbscan")


def _posed_study(tmp_path: Path) -> tuple[np.ndarray, CelebA, pd.DataFrame]:
    """30 identities x 12 images: a strong yaw (6 frontal, 3 left, 3 right images) and a weaker glasses
    direction in the features; its ground truth, every other factor constant."""
    rng = np.random.default_rng(4)
    people, per = 30, 12
    identities = np.repeat(np.arange(people) + 1, per)
    yaw = np.tile(np.radians(np.r_[np.zeros(6), -np.full(3, 40.0), np.full(3, 40.0)]), people)
    glasses = np.tile(np.r_[1, -1, 1, -1, 1, -1, 1, 1, -1, -1, 1, -1], people)
    pose_axis, glasses_axis = np.linalg.qr(rng.normal(size=(DIM, 2)))[0].T
    features = (rng.normal(size=(people, DIM)) / np.sqrt(DIM))[identities - 1] + 0.1 * rng.normal(size=(len(yaw), DIM)) / np.sqrt(
        DIM
    )
    features += 3 * np.sign(yaw)[:, None] * pose_axis + 0.5 * glasses[:, None] * glasses_axis
    values = rng.choice(np.array([-1, 1], dtype=np.int8), (len(yaw), len(CELEBA_ATTRIBUTES)))
    attributes = pd.DataFrame(values, columns=list(CELEBA_ATTRIBUTES)).assign(Eyeglasses=glasses.astype(np.int8))
    names = [f"{i:06d}.jpg" for i in range(1, len(yaw) + 1)]
    write_celeba(tmp_path, names, attributes.to_numpy(), identities, np.zeros(len(names), dtype=np.int64))
    frame = np.where(identities % 2, "thin", "thick")
    truth = pd.DataFrame(
        {
            "split": "celeba",
            "path": [f"celeba/img_align_celeba/{n}" for n in names],
            "person_gender": "male",
            "person_skin_label": "pale",
            "person_age_group": "young",
            "person_hair_colour": "black",
            "person_hair_style": "short",
            "person_glasses_frame": frame,
            "image_beard": False,
            "image_glasses": glasses > 0,
            "image_expression": "neutral",
            "image_yaw": yaw,
            "image_pitch": 0.0,
            "image_light_angle": 0.0,
            "image_light_strength": 0.0,
            "image_brightness": 1.0,
            "image_background": "plain",
            "image_occlusion": 0.0,
            "image_blur": 0.0,
            "image_noise": 0.0,
            "image_low_resolution": 1.0,
        }
    )
    truth.to_csv(tmp_path / "ground_truth.csv", index=False)
    return features.astype(np.float32), read_celeba(tmp_path), truth


def test_ground_truth_says_what_the_splits_follow_and_controls_the_nuisance(tmp_path: Path) -> None:
    from dmlfaces.eval.factors import celeba_ground_truth

    features, celeba, _ = _posed_study(tmp_path)
    truth = celeba_ground_truth(tmp_path / "ground_truth.csv", celeba)
    params = AttributeStudyParams(
        n_init=3, probe_folds=3, min_identities_per_state=3, intra={"glasses": "Eyeglasses"}, extra={"gender": "Male"}
    )
    report = json.loads(json.dumps(run_attribute_study(features, celeba, params, truth)))
    glasses = report["glasses"]
    # All images: pose dominates, so each identity's split follows yaw and glasses stays near its floor.
    assert glasses["factors"]["most_followed"] == "yaw" and glasses["factors"]["top_share"]["yaw"] > 0.9
    assert glasses["accuracy"]["mean"] < 0.8
    # Near-frontal images only: glasses is the main difference left, and the splits follow it.
    controlled = glasses["controlled"]
    assert controlled["images_kept"] == 30 * 6 and controlled["nuisance_held"]["max_yaw_deg"] == 20.0
    assert controlled["accuracy"]["mean"] == 1.0 and controlled["factors"]["most_followed"] == "glasses"
    assert glasses["by_frame"].keys() == {"thin", "thick"} and glasses["by_frame"]["thin"]["identities"] == 15
    assert controlled["by_frame"]["thick"]["accuracy"] == 1.0
    # Across identities the split is scored against the person factors; constant ones agree with nothing.
    scores = report["gender"]["uncontrolled"]["factors"]["scores"]
    assert set(scores) == {"gender", "skin_tone", "age", "hair_colour", "hair_style", "beard", "glasses"}
    assert scores["hair_colour"]["nmi"] == 0 and scores["hair_colour"]["excess_nmi"] == 0
    # Ground truth in another order than the attribute file is refused.
    with pytest.raises(ValueError, match="one row per image of the CelebA layout, in the order of list_attr_celeba.txt"):
        run_attribute_study(features, celeba, params, truth.iloc[::-1])
    # Without ground truth the report holds neither the factors nor the controlled protocol.
    plain = run_attribute_study(features, celeba, params)
    assert "factors" not in plain["glasses"] and "controlled" not in plain["glasses"]
