"""`dmlfaces verify` end to end on a small protocol in the IJB layout: extraction, every aggregator, 1:1 and 1:N."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmlfaces.data.ijb import read_ijb
from dmlfaces.features import FeatureSet, read_features
from dmlfaces.verify import aggregators, describe_protocol


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dmlfaces", "verify", *args], capture_output=True, text=True, timeout=600)


def test_verify_extracts_aggregates_and_scores_every_method(tiny_data: Path, tiny_backbone: Path, tmp_path: Path) -> None:
    result = _verify("--ijb", str(tiny_data / "IJBS"), "--backbone", str(tiny_backbone), "--out", str(tmp_path), "--resamples", "20")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "verification.json").read_text())
    assert set(report["methods"]) == {"mean", "norm_weighted", "media_template"}
    row = report["methods"]["mean"]["0.1"]
    assert 0 <= row["tar_exact"] <= 1 and row["ci_low"] is not None and row["ci_low"] <= row["ci_high"]
    assert report["genuine_pairs"] + report["impostor_pairs"] == len(read_ijb(tiny_data / "IJBS").pairs)
    assert "1N_gallery_G1" in report["one_to_n"]["mean"]
    # The features written on the way are reusable, and give the same numbers.
    again = _verify("--ijb", str(tiny_data / "IJBS"), "--features", str(tmp_path / "features.npz"), "--out", str(tmp_path / "b"),
                    "--resamples", "20")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "b" / "verification.json").read_text())["methods"] == report["methods"]


def test_bad_features_are_named(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    n = protocol.num_crops
    features = np.tile(np.eye(8, dtype=np.float32)[0], (n, 1))
    norms = np.ones(n, np.float32)
    norms[3] = np.nan
    crops = FeatureSet(np.asarray(protocol.crop_names), features, norms)
    with pytest.raises(ValueError, match=str(protocol.crop_names[3])):
        describe_protocol(aggregators(8), protocol, crops)
    other = FeatureSet(np.asarray(protocol.crop_names[::-1]), features, np.ones(n, np.float32))
    with pytest.raises(ValueError, match="not those of"):
        describe_protocol(aggregators(8), protocol, other)
