"""The data chapter's realism check: dlib's detection counts and all-pairs TAR, read from the files extract writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dmlfaces.data.celeba import read_celeba
from dmlfaces.data.errors import DataFormatError
from dmlfaces.data_findings import detection_share
from dmlfaces.eval.realism import dlib_realism
from dmlfaces.eval.verification import all_pairs_tar_at_far
from dmlfaces.features import write_features
from dmlfaces.models.dlib_embedder import faces_path, read_found_by, write_found_by


def _extracted(tmp_path: Path, names: list[str]) -> tuple[Path, np.ndarray, np.ndarray]:
    """Features and a .faces.csv as ``extract --dlib`` writes them: 3 detected, 50 aligned from landmarks, the rest whole."""
    features = np.random.default_rng(0).normal(size=(len(names), 128))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    path = tmp_path / "celeba_dlib.npz"
    write_features(path, names, features, np.ones(len(names)), flip_test=False)
    found_by = np.array(["detector"] * 3 + ["landmarks"] * 50 + ["whole_image"] * (len(names) - 53))
    write_found_by(faces_path(path), names, found_by)
    return path, features, found_by


def test_realism_counts_how_faces_were_found_and_scores_every_pair(tiny_data: Path, tmp_path: Path) -> None:
    celeba = read_celeba(tiny_data / "celeba")
    names = list(celeba.attributes.index)
    path, features, _ = _extracted(tmp_path, names)
    assert faces_path(path) == tmp_path / "celeba_dlib.faces.csv"
    report = dlib_realism(path, faces_path(path), tiny_data / "celeba")
    pairs = all_pairs_tar_at_far(features, celeba.identities.to_numpy(), (1e-3, 1e-2))
    detected = report.pop("detector_only")
    assert report == {
        "images": 60,
        "detected": 3,
        "landmark_aligned": 50,
        "whole_image": 7,
        "detection_rate": 0.05,
        "tar_at_far": {"0.001": pairs.tar[1e-3], "0.01": pairs.tar[1e-2]},
        "rule": "exact",
        "genuine_pairs": 150,
        "impostor_pairs": 1620,
        "published_lfw_accuracy": 0.9938,
    }
    # The detector's own faces alone: 3 images of 3 identities make no genuine pair, so nothing is scored.
    assert detected == {}
    assert detection_share(report["detection_rate"]) == "only a few"  # the words: tests/test_data_findings.py


def test_realism_refuses_files_that_do_not_match(tiny_data: Path, tmp_path: Path) -> None:
    names = list(read_celeba(tiny_data / "celeba").attributes.index)
    path, _, found_by = _extracted(tmp_path, names)
    write_found_by(faces_path(path), names[::-1], found_by)  # another order: not the features' images
    with pytest.raises(DataFormatError, match=r"celeba_dlib.faces.csv: lists 60 images, not the 60 of .* in their order"):
        dlib_realism(path, faces_path(path), tiny_data / "celeba")
    other = tmp_path / "other"
    other_path, _, _ = _extracted(other, ["x.jpg", *names[1:]])
    with pytest.raises(DataFormatError, match=r"1 images have no identity in .*, e.g. x.jpg"):
        dlib_realism(other_path, faces_path(other_path), tiny_data / "celeba")


def test_found_by_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "f.faces.csv"
    write_found_by(path, ["a.jpg", "b.jpg"], np.array(["detector", "whole_image"]))
    assert path.read_text() == "name,found_by\na.jpg,detector\nb.jpg,whole_image\n"
    assert read_found_by(path).to_dict() == {"a.jpg": "detector", "b.jpg": "whole_image"}
    with pytest.raises(ValueError, match=r"found_by must be \(2,\) values of .*\['guessed'\]"):
        write_found_by(path, ["a.jpg", "b.jpg"], np.array(["detector", "guessed"]))
    path.write_text("name,found_by\na.jpg,detector\nb.jpg,guessed\n")
    with pytest.raises(DataFormatError, match=r"f.faces.csv:3: image b.jpg: found_by 'guessed'. Expected: detector or landmarks"):
        read_found_by(path)
    path.write_text("name,found_by\na.jpg,detector\na.jpg,landmarks\n")
    with pytest.raises(DataFormatError, match=r"f.faces.csv:3: image a.jpg is listed twice"):
        read_found_by(path)
    path.write_text("name,row\na.jpg,0\n")
    with pytest.raises(DataFormatError, match=r"f.faces.csv:1: columns \['name', 'row'\]"):
        read_found_by(path)
    with pytest.raises(DataFormatError, match="absent.faces.csv: file is missing.*dmlfaces extract --dlib"):
        read_found_by(tmp_path / "absent.faces.csv")
