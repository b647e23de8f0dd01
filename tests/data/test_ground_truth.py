"""The ground-truth join: rows of one split's images in the order asked, repeats kept, every fault named."""

from __future__ import annotations

import pandas as pd
import pytest

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.ground_truth import GROUND_TRUTH_FILE, split_ground_truth
from dmlfaces.data.ijb import read_ijb


def test_protocol_rows_get_their_crops_ground_truth_in_protocol_order(tiny_data) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    truth = split_ground_truth(tiny_data / GROUND_TRUTH_FILE, "ijbs", protocol.crop_names)
    assert list(truth.index) == list(protocol.crop_names)  # a crop several templates list comes once per listing
    assert len(set(protocol.crop_names)) < len(protocol.crop_names)
    assert (truth["split"] == "ijbs").all() and truth["quality"].between(0, 1).all()


def test_an_image_the_split_lacks_or_lists_twice_is_named(tiny_data, tmp_path) -> None:
    truth = pd.read_csv(tiny_data / GROUND_TRUTH_FILE)
    first = truth[truth["split"] == "ijbs"].iloc[0]
    name = first["path"].rsplit("/", 1)[-1]
    with pytest.raises(DataFormatError, match=r"lists 0 of the 1 images asked for \(split ijbs; e.g. not nope.jpg\)") as absent:
        split_ground_truth(tiny_data / GROUND_TRUTH_FILE, "ijbs", ["nope.jpg"])
    assert str(absent.value).endswith("regenerate the data set with 'dmlfaces synth', or give the features of its images")
    with pytest.raises(DataFormatError, match=r"images of elsewhere/IJBS \(split ijbs") as named:
        split_ground_truth(tiny_data / GROUND_TRUTH_FILE, "ijbs", ["nope.jpg"], images_of="elsewhere/IJBS", fix="do X")
    assert str(named.value).endswith("Fix: do X")
    pd.concat([truth, truth.loc[[first.name]]]).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(DataFormatError, match=rf"twice.csv:{len(truth) + 2}: image {name} is listed twice"):
        split_ground_truth(tmp_path / "twice.csv", "ijbs", [name])
    truth.drop(columns="quality").to_csv(tmp_path / "no_quality.csv", index=False)
    with pytest.raises(DataFormatError, match=r"no_quality.csv: no column 'quality' \(1 of the 3 columns needed missing\)"):
        split_ground_truth(tmp_path / "no_quality.csv", "ijbs", [name], columns=["path", "quality"])
