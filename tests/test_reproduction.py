"""Two runs' metrics compared: per file, and the TARs and verdicts of the verification report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmlfaces.reproduction import agreement_sentence, other_host_sentence, run_comparison, tar_and_verdict_changes, tolerance_list


def _row(tar: float) -> dict:
    return {"tar_exact": tar}


def _difference(low: float, high: float) -> dict:
    return {"difference": (low + high) / 2, "ci_low": low, "ci_high": high}


def _verification(coreset: float, low: float, extra: bool = False) -> dict:
    report = {
        "methods": {"coreset": {"0.001": _row(coreset), "0.1": _row(0.9)}, "mean": {"0.001": _row(0.3), "0.1": _row(0.8)}},
        "differences": {"coreset - mean": {"0.001": _difference(low, 0.2), "0.1": _difference(0.01, 0.2)}},
    }
    if extra:  # a variant only this run has: left out of the comparison
        report["methods"]["faithful"] = {"0.001": _row(0.1)}
        report["differences"]["faithful - mean"] = {"0.001": _difference(-0.3, -0.1)}
    return report


def test_tar_and_verdict_changes_cover_what_both_runs_hold() -> None:
    changes = tar_and_verdict_changes(_verification(0.405, -0.01, extra=True), _verification(0.40, 0.02))
    assert abs(changes["largest_tar_difference"] - 0.005) < 1e-12 and changes["at"] == ("coreset", "0.001")
    assert changes["verdicts_compared"] == 2
    assert changes["verdicts_changed"] == ["coreset - mean at FAR 0.001: beats there, ties here"]
    host = {"cpu": "Intel Xeon", "cpus": 4, "numerics": "pinned"}
    assert other_host_sentence(host, changes) == (
        "The other host: Intel Xeon, 4 CPUs, pinned numerics. Verdicts that change: coreset - mean at FAR 0.001: beats there,"
        " ties here."
    )
    assert other_host_sentence(host, {"verdicts_changed": []}).endswith("Verdicts that change: none.")


def test_run_comparison_counts_numbers_beyond_the_tolerance(tmp_path: Path) -> None:
    for run, value in (("a", 0.5), ("b", 0.5 + 1e-3)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "data.json").write_text(json.dumps({"n": 3, "x": [0.25, value]}))
        (tmp_path / run / "embedding.json").write_text(json.dumps({"loss": 1.0}))
    (tmp_path / "a" / "only_here.json").write_text("{}")
    table = run_comparison(tmp_path / "a", tmp_path / "b")
    assert list(table.index) == ["data", "embedding"]
    assert table.loc["embedding", "byte-identical"] and not table.loc["data", "byte-identical"]
    assert table.loc["data", "numbers compared"] == 3 and table.loc["data", "differ"] == 1
    assert table.loc["data", "beyond the cross-host tolerance"] == 0  # a rate 0.1 points off
    assert abs(table.loc["data", "largest difference"] - 1e-3) < 1e-12


def test_the_agreement_is_worded_from_the_comparison(tmp_path: Path) -> None:
    for run, tar in (("a", 0.5), ("b", 0.53)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "verification.json").write_text(json.dumps({"tar": tar, "pairs": 7}))
        (tmp_path / run / "data.json").write_text(json.dumps({"n": 3}))
    table = run_comparison(tmp_path / "a", tmp_path / "b")
    assert agreement_sentence(table) == (
        "data is byte-identical; 1 of the 3 compared numbers both runs hold is beyond its cross-host tolerance: verification (1)."
    )
    assert agreement_sentence(run_comparison(tmp_path / "a", tmp_path / "a")).endswith(
        "every one of the 3 compared numbers both runs hold is within its cross-host tolerance."
    )
    for run, gamma in (("a", 1.07), ("b", float("nan"))):  # a kind not compared across hosts, NaN on one side
        (tmp_path / run / "aggregator.json").write_text(json.dumps({"gamma": {"coreset": gamma}}))
    table = run_comparison(tmp_path / "a", tmp_path / "b")
    assert table.loc["aggregator", "not compared across hosts"] == 1
    assert table.loc["aggregator", "beyond the cross-host tolerance"] == 0
    assert agreement_sentence(table).endswith("verification (1) (1 more is of kinds not compared across hosts).")
    with pytest.raises(ValueError, match="no metrics file is in both"):
        run_comparison(tmp_path / "a", tmp_path / "empty")
    listed = tolerance_list()
    assert "- training losses: within 0.006 of their size" in listed and "(2 points)" in listed
    assert "- learned quality exponent gamma: not compared:" in listed


def test_burst_shifts_are_held_to_their_size() -> None:
    from dmlfaces.reproduction import _within, cross_host_rule

    rule = cross_host_rule("verification", "burst_shift.coreset.mean", 0.0104)
    assert rule.relative == 0.06 and _within(rule, 0.0104, 0.0108) and not _within(rule, 0.0104, 0.0312)
    assert cross_host_rule("verification", "burst_shift.coreset.copies", 50).absolute == 0
