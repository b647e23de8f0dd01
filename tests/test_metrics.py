"""The metrics files' builders: each file's schema, the headline DVC compares, and the chapter's and CLI's
documents from one builder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dmlfaces import metrics
from dmlfaces.eval.verification import evaluate_one_to_one

ROOT = Path(__file__).resolve().parents[1]


def _report():
    rng = np.random.default_rng(0)
    templates = np.arange(40)
    descriptors = rng.normal(size=(40, 8))
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    pairs = np.stack(np.triu_indices(40, 1), axis=1)
    labels = (pairs[:, 0] // 4 == pairs[:, 1] // 4).astype(np.int8)
    return evaluate_one_to_one(
        {"mean": (templates, descriptors), "coreset": (templates, descriptors[::-1].copy())}, pairs, labels
    )


def test_read_metrics_reads_the_five_files(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    for name in metrics.METRICS_FILES:
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps({"name": name}))
    assert metrics.read_metrics(tmp_path) == {name: {"name": name} for name in metrics.METRICS_FILES}


def test_verification_document_measures_only_the_fars_its_impostors_allow_and_gives_stresses_as_rates() -> None:
    report = _report()
    stress = pd.DataFrame({"as is": {"mean": 25.0, "coreset": 50.0}, "with bursts": {"mean": 12.5, "coreset": 50.0}})
    document = metrics.verification_metrics(
        report,
        {},
        subjects=10,
        seed_variants=["coreset"],
        stress_percent=stress,
        burst_shifts={"mean": np.array([0.1, 0.3])},
        burst_copies=5,
    )
    assert report.impostor_pairs == 720 and document["measurable_fars"] == ["0.01", "0.1"]
    assert document["stress_tar_at_1e-3"] == {
        "as is": {"mean": 0.25, "coreset": 0.5},
        "with bursts": {"mean": 0.125, "coreset": 0.5},
    }
    assert document["burst_shift"] == {"mean": {"mean": pytest.approx(0.2), "median": pytest.approx(0.2), "copies": 5}}
    assert document["methods"] == report.to_dict()["methods"] and document["subjects"] == 10
    cli = metrics.verification_metrics(report, {}, protocol="IJBC")  # dmlfaces verify: no stresses, its protocol named
    assert set(document) - set(cli) == {"subjects", "seed_variants", "stress_tar_at_1e-3", "burst_shift"}
    assert cli["protocol"] == "IJBC"
    headline = metrics.HEADLINES["verification"](document)
    assert headline == {
        f"tar_at_{far}": {name: report.methods[name].tar_exact[far] for name in ("mean", "coreset")} for far in (1e-4, 1e-3)
    }


def test_write_metrics_writes_the_file_and_its_headline_and_refuses_an_unknown_name(tmp_path: Path) -> None:
    document = {
        "picked_quality": 0.6,
        "template_quality": 0.5,
        "gamma": {"coreset": 0.02, "k1": None},
        "final_training_loss": {"coreset": 3.0},
    }
    path = metrics.write_metrics(tmp_path, "aggregator", document)
    assert json.loads(path.read_text()) == document
    assert json.loads((tmp_path / "headline" / "aggregator.json").read_text()) == {
        "picked_quality": 0.6,
        "template_quality": 0.5,
        "coreset_gamma": 0.02,
    }
    with pytest.raises(ValueError, match=r"no metrics file 'verify'; the pipeline writes \['data'"):
        metrics.write_metrics(tmp_path, "verify", document)


def test_attribute_headline_takes_the_accuracy_each_protocol_reports() -> None:
    document = {
        "embeddings": {
            "trained": metrics.attribute_embedding(
                "f.npz",
                8,
                {
                    "beard": {"status": "ok", "protocol": "intra", "accuracy": {"mean": 0.7}},
                    "gender": {
                        "status": "ok",
                        "protocol": "extra",
                        "uncontrolled": {"accuracy": 0.9},
                        "controlled": {"accuracy": 0.8},
                    },
                    "glasses": {"status": "skipped", "protocol": "intra", "reason": "no identity with both states"},
                },
            )
        }
    }
    assert metrics.HEADLINES["attributes"](document) == {"trained": {"beard": 0.7, "gender": 0.9, "glasses": None}}


def test_the_committed_metrics_files_give_small_headlines() -> None:
    for name, document in metrics.read_metrics(ROOT / "results").items():
        headline = metrics.HEADLINES[name](document)
        flat = pd.json_normalize(headline).columns
        assert 0 < len(flat) <= 60, (name, len(flat))  # a table a person can read, not every field


def test_the_plotted_curves_are_csv_tables_dvc_can_read(tmp_path: Path) -> None:
    from dmlfaces.eval.roc import roc_curve_points

    rng = np.random.default_rng(0)
    labels = (rng.random(4000) < 0.1).astype(np.int8)
    curves = {"mean": roc_curve_points(rng.normal(size=4000) + labels, labels)}
    [path] = metrics.write_roc_points(tmp_path, curves)
    table = pd.read_csv(path)
    assert path == tmp_path / "plots" / "roc" / "mean.csv" and list(table.columns) == ["far", "tar", "frr"]
    np.testing.assert_allclose(table["tar"] + table["frr"], 1.0)
    assert table["far"].is_monotonic_increasing and len(table) == len(curves["mean"].far)
    history = {"epochs": [{"epoch": 1, "loss": 3.0}, {"epoch": 2, "loss": 2.5}]}
    [loss] = metrics.write_loss_curves(tmp_path, "aggregator_loss", {"coreset": history})
    assert pd.read_csv(loss).to_dict("list") == {"epoch": [1, 2], "loss": [3.0, 2.5]}
