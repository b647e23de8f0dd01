"""The command line: help lists every stage; synth and data-report run for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
