"""Stage timings: each dmlfaces command under DVC_STAGE adds its seconds to its stage's record, check-params starts
a new one, extraction adds images/s; the records are neither DVC outputs nor metrics, and git keeps them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dmlfaces import timing
from dmlfaces.cli import main
from dmlfaces.errors import UserError
from dmlfaces.numerics import MODE_VARIABLE

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DVC-like environment for stage ``train_aggregator@k5`` rooted at ``tmp_path``; the record's path."""
    monkeypatch.setenv(timing.STAGE_VARIABLE, "train_aggregator@k5")
    monkeypatch.setenv(timing.ROOT_VARIABLE, str(tmp_path))
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv(MODE_VARIABLE, raising=False)
    return tmp_path / "results" / "timings" / "train_aggregator@k5.json"


def _params(tmp_path: Path) -> str:
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  dir: data\n")
    return str(path)


def test_a_stage_run_records_each_command_and_the_next_run_replaces_it(stage: Path, tmp_path: Path) -> None:
    check = ["check-params", "data", "--params", _params(tmp_path)]
    failing = ["verify", "--ijb", str(tmp_path / "nowhere"), "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "v")]
    assert main(check) == 0 and main(failing) == 2
    record = json.loads(stage.read_text())
    assert record["stage"] == "train_aggregator@k5" and [c["argv"] for c in record["commands"]] == [check, failing]
    assert [c["exit"] for c in record["commands"]] == [0, 2]
    assert record["seconds"] == pytest.approx(sum(c["seconds"] for c in record["commands"]), abs=1e-3)
    assert record["host"]["cpus"] >= 1 and record["host"]["numerics"] == "preloaded"  # this process loaded torch first
    started = record["started"]

    with pytest.raises(SystemExit):
        main(["check-params"])  # a usage error: recorded too, and it starts the new run
    assert [c["exit"] for c in json.loads(stage.read_text())["commands"]] == [2]
    assert main(check) == 0
    rerun = json.loads(stage.read_text())
    assert [c["argv"] for c in rerun["commands"]] == [check] and rerun["started"] >= started


def test_nothing_is_recorded_outside_dvc_or_by_later_torchrun_ranks(tmp_path: Path) -> None:
    clock = timing.Clock()
    assert timing.record(clock, ["check-params", "data"], 0, {timing.ROOT_VARIABLE: str(tmp_path)}) is None
    dvc = {timing.STAGE_VARIABLE: "extract_ijbs", timing.ROOT_VARIABLE: str(tmp_path)}
    assert timing.record(clock, ["extract"], 0, {**dvc, "RANK": "1"}) is None
    assert not (tmp_path / "results").exists()
    assert timing.record(clock, ["extract"], 0, {**dvc, "RANK": "0"}) == tmp_path / "results" / "timings" / "extract_ijbs.json"


def test_extract_records_its_images_and_their_rate(tiny_data: Path, tiny_backbone: Path, tmp_path: Path) -> None:
    environment = {**os.environ, timing.STAGE_VARIABLE: "extract_celeba", timing.ROOT_VARIABLE: str(tmp_path)}
    command = [
        sys.executable,
        "-m",
        "dmlfaces",
        "extract",
        "--backbone",
        str(tiny_backbone),
        "--celeba",
        str(tiny_data / "celeba"),
        "--out",
        str(tmp_path / "celeba.npz"),
    ]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["crops"] == printed["images"] == 60 and printed["images_per_s"] > 0
    record = json.loads((tmp_path / "results" / "timings" / "extract_celeba.json").read_text())
    (command_record,) = record["commands"]
    assert command_record["images"] == 60 and command_record["images_per_s"] == printed["images_per_s"]
    assert record["host"]["numerics"] == "pinned"  # a fresh process: the pin came before torch


@pytest.mark.parametrize("text", ['{"commands": 3}', '{"stage": "train_'])
def test_a_malformed_record_is_started_afresh_with_a_warning_and_refused_by_the_reader(
    text: str, stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage.parent.mkdir(parents=True)
    stage.write_text(text)
    with pytest.raises(UserError, match=r"train_aggregator@k5.json is not a stage timing record.*dvc repro -f"):
        timing.read_records(tmp_path / "results")
    main(["verify", "--ijb", str(tmp_path / "nowhere"), "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "v")])
    assert "starting the stage's record afresh" in capsys.readouterr().err
    assert list(timing.read_records(tmp_path / "results")) == ["train_aggregator@k5"]


def test_the_stage_table_follows_the_pipeline_order_and_marks_the_running_stage() -> None:
    host = {"cpu": "AMD EPYC", "cpus": 2, "numerics": "pinned"}
    records = {
        "book_pages": {
            "stage": "book_pages",
            "started": "t",
            "host": host,
            "seconds": 3.0,
            "commands": [{"argv": ["check-params"], "seconds": 3.0, "exit": 0}],
        },
        "extract_ijbs": {
            "stage": "extract_ijbs",
            "started": "t",
            "host": host,
            "seconds": 9.0,
            "commands": [
                {"argv": ["check-params"], "seconds": 1.0, "exit": 0},
                {"argv": ["extract"], "seconds": 8.0, "exit": 0, "images": 80, "images_per_s": 10.0},
            ],
        },
    }
    table = timing.stage_table(records, ["data_report", "extract_ijbs", "book_pages"], running="book_pages")
    assert list(table["stage"]) == ["extract_ijbs", "book_pages (so far)"] and list(table["commands"]) == [2, 1]
    assert table["images_per_s"].iloc[0] == 10.0 and math.isnan(table["images_per_s"].iloc[1])
    assert table["host"].iloc[0] == "AMD EPYC, 2 CPUs, pinned numerics"
    assert timing.untimed_stages(records, ["data_report", "extract_ijbs", "train"]) == "data_report, train"
    assert timing.untimed_stages(records, ["extract_ijbs"]) == "none"


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_every_dmlfaces_stage_starts_with_check_params() -> None:
    """The rule that tells a new stage run from the next command of the same run."""
    for name, stage in _stages().items():
        cmd = " ".join(str(stage.get("do", stage)["cmd"]).split())
        if cmd.startswith("dmlfaces") or " dmlfaces " in cmd:
            assert cmd.startswith(f"dmlfaces {timing.FIRST_COMMAND} "), name


def test_timings_are_neither_dvc_outputs_nor_metrics_and_git_keeps_them() -> None:
    declared = yaml.safe_dump(_stages())
    assert "timings" not in declared
    ignored = subprocess.run(["git", "check-ignore", "-q", str(timing.DIRECTORY / "extract_ijbs.json")], cwd=REPO)
    assert ignored.returncode == 1  # not ignored: the committed run's times reach the book
