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
    assert result.summary["identities"] == {"total": IDENTITIES, "used": IDENTITIES - 2, "single_image": 1,
                                            "one_state": 1}
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
    params = AttributeStudyParams(n_init=3, probe_folds=3, min_identities_per_state=3,
                                  intra={"glasses": "Eyeglasses", "expression": "Smiling", "hat": "Wearing_Hat"})
    flat = dataclasses.replace(celeba, attributes=celeba.attributes.assign(Wearing_Hat=np.int8(-1)))
    report = json.loads(json.dumps(run_attribute_study(feature_set, flat, params)))
    assert list(report) == ["glasses", "expression", "hat", "gender", "skin_tone", "age"]
    glasses = report["glasses"]
    assert glasses["status"] == "ok" and glasses["accuracy"]["mean"] == 1.0
    assert glasses["identities"]["single_image"] == 1 and glasses["identities"]["used"] == IDENTITIES - 1
    assert report["expression"]["accuracy"]["mean"] < 0.8
    assert report["hat"]["status"] == "skipped" and report["hat"]["identities"]["one_state"] == IDENTITIES - 1
    assert report["gender"]["uncontrolled"]["accuracy"] == 1.0
    assert report["gender"]["controlled"]["held_fixed"].keys() <= {"Pale_Skin", "Young"}
    assert report["age"]["uncontrolled"]["identities"] == IDENTITIES


def test_run_attribute_study_rejects_features_of_another_data_set(planted_celeba) -> None:
    features, celeba = planted_celeba
    stranger = FeatureSet(np.array(["999999.jpg"]), features[:1], np.ones(1, np.float32))
    with pytest.raises(DataFormatError, match=r"list_attr_celeba.txt: 1 feature rows name images that it does not list "
                                              r"\(e.g. 999999.jpg\). Fix: extract the features from this data set"):
        run_attribute_study(stranger, celeba)
    with pytest.raises(ValueError, match="3 feature rows for 192 images"):
        run_attribute_study(features[:3], celeba)
    with pytest.raises(ValueError, match=r"identity_embedding = 'median'; choose one of \['mean', 'one_image'\]"):
        AttributeStudyParams(identity_embedding="median")
    with pytest.raises(ValueError, match="unknown clustering method 'dbscan'"):
        AttributeStudyParams(method="dbscan")
