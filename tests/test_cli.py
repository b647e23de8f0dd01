"""The command line: help lists every stage; synth and data-report run for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmlfaces.cli import main


def test_help_lists_the_stage_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "dmlfaces", "--help"], capture_output=True, text=True, check=True)
    assert "synth" in result.stdout and "data-report" in result.stdout


def test_synth_rejects_an_unknown_preset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["synth", "--out", "x", "--preset", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_synth_and_data_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--preset", "tiny", "--seed", "3", "--workers", "1"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["ijb_crops"] == len(list((out / "IJBS" / "loose_crop").iterdir()))
    report_path = tmp_path / "metrics" / "data.json"
    assert main(["data-report", "--data", str(out), "--out", str(report_path), "--pca-dim", "8", "--pixel-size", "16"]) == 0
    report = json.loads(report_path.read_text())
    assert report["counts"]["ijb_crops"] == printed["ijb_crops"]
    assert set(report["pixel_baseline"]["tar_at_far"]) == {"0.0001", "0.001", "0.01", "0.1"}


def test_synth_reuse_keeps_current_data_and_regenerates_other_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    arguments = ["synth", "--out", str(out), "--preset", "tiny", "--seed", "2", "--workers", "1", "--reuse"]
    main(arguments)
    assert "synthfaces.json is missing: generating" in capsys.readouterr().out
    marker = out / "train" / "kept.txt"
    marker.write_text("untouched")
    main(arguments)
    assert "kept" in capsys.readouterr().out and marker.exists()
    manifest = json.loads((out / "synthfaces.json").read_text())
    (out / "synthfaces.json").write_text(json.dumps({**manifest, "generator_version": 3}))
    main(arguments)
    assert "holds generator v3, preset tiny, seed 2" in capsys.readouterr().out and not marker.exists()
    assert json.loads((out / "synthfaces.json").read_text()) == manifest


def test_extract_and_attributes_on_a_celeba_layout(tiny_data: Path, tiny_backbone: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    features = tmp_path / "celeba.npz"
    assert main(["extract", "--backbone", str(tiny_backbone), "--celeba", str(tiny_data / "celeba"), "--out", str(features)]) == 0
    params = tmp_path / "params.yaml"
    params.write_text("attributes:\n  n_init: 2\n  probe_folds: 2\n  min_identities_per_state: 1\n")
    out = tmp_path / "attributes.json"
    assert main(["attributes", "--celeba", str(tiny_data / "celeba"), "--features", str(features), "--params", str(params),
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["params"]["n_init"] == 2 and set(report["attributes"]) >= {"beard", "glasses", "gender"}
    assert report["attributes"]["beard"]["status"] == "skipped"
    printed = capsys.readouterr().out
    assert "beard: skipped" in printed and "glasses (intra-class, Eyeglasses): clustering accuracy" in printed


def test_attributes_rejects_unknown_parameters(tiny_data: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("attributes:\n  clusters: 3\n")
    with pytest.raises(ValueError, match="unknown keys \\['clusters'\\]"):
        main(["attributes", "--celeba", str(tiny_data / "celeba"), "--features", str(tmp_path / "x.npz"),
              "--params", str(params), "--out", str(tmp_path / "a.json")])


def test_extract_with_dlib(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dmlfaces.features import read_features

    out = tmp_path / "dlib.npz"
    assert main(["extract", "--dlib", "--celeba", str(tiny_data / "celeba"), "--out", str(out)]) == 0
    features = read_features(out)
    assert features.features.shape == (60, 128) and np.allclose(np.linalg.norm(features.features, axis=1), 1, atol=1e-5)
    assert "dlib found a face in" in capsys.readouterr().out
