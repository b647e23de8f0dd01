"""The pipeline's five metrics files: one builder per file (its schema is here), used by the chapter that
writes it and by the CLI command of the same stage, and the small headline file DVC compares beside each.

``results/metrics/<name>.json`` holds everything a page reads (intervals, bootstrap bounds, state counts);
``results/headline/<name>.json`` the few figures a reader compares across runs and experiments, declared as
DVC metrics so that ``dvc metrics show``, ``dvc metrics diff`` and ``dvc exp show`` print a table a person can
read. JSON has no NaN: a value that does not exist is null. The curves DVC plots (``dvc plots show``) are CSV
tables under ``results/plots/``, one per method or run: ROC and DET points, training losses per epoch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dmlfaces.eval.roc import far_key, measurable_fars
from dmlfaces.io import atomic_write_text, write_json

if TYPE_CHECKING:  # torch-free at run time: the book's summary pages read these files without the models
    from dmlfaces.eval.attributes import AttributeStudyParams
    from dmlfaces.eval.roc import RocCurve
    from dmlfaces.eval.verification import OneToOneReport

METRICS_FILES = ("data", "embedding", "aggregator", "verification", "attributes")
HEADLINE_FARS = (1e-4, 1e-3)  # the operating points the headline tables compare (FaceCoresetNet's and AdaFace's first)


def data_metrics(counts: Mapping[str, int], pixel_baseline: Mapping, dlib_realism: Mapping, manifest: Mapping) -> dict:
    """``data.json``: the data set's counts, the pixel baseline's verification, dlib's view of SynthFaces'
    realism, and the generator's preset and seed (from ``synthfaces.json``)."""
    return {
        "counts": dict(counts),
        "pixel_baseline": dict(pixel_baseline),
        "dlib_realism": dict(dlib_realism),
        "preset": manifest["preset"],
        "seed": manifest["seed"],
    }


def embedding_metrics(
    history: Mapping,
    tars: Mapping[str, Mapping[float, float]],
    labels: np.ndarray,
    norm_quality: float,
    by_degradation: pd.DataFrame,
    crops: int,
) -> dict:
    """``embedding.json``: the backbone's training config and final loss, single-image TAR at FAR per method
    (``single_image.single_image_tars``), the pairs scored, and the Spearman rho of the feature norm with the
    quality and with each degradation (``single_image.spearman_by_degradation``)."""
    config = history["config"]
    rhos = by_degradation[["norm", "quality"]]
    return {
        "backbone": config["backbone"],
        "loss": config["loss"],
        "epochs": config["epochs"],
        "final_training_loss": history["epochs"][-1]["loss"],
        "single_image_tar_at_far": {
            name: {far_key(far): value for far, value in values.items()} for name, values in tars.items()
        },
        "genuine_pairs": int(labels.sum()),
        "impostor_pairs": int(len(labels) - labels.sum()),
        "spearman_norm_quality": norm_quality,
        "spearman_by_degradation": rhos.astype(object).where(rhos.notna(), None).to_dict("index"),
        "crops": int(crops),
    }


def aggregator_metrics(picked: np.ndarray, overall: np.ndarray, histories: Mapping[str, Mapping]) -> dict:
    """``aggregator.json``: the mean true quality of the coreset's picks and of whole templates ((T,) each), and
    each trained variant's learned gamma and final training loss."""
    return {
        "picked_quality": float(picked.mean()),
        "template_quality": float(overall.mean()),
        "gamma": {name: h["gamma"] for name, h in histories.items()},
        "final_training_loss": {name: h["epochs"][-1]["loss"] for name, h in histories.items()},
    }


def verification_metrics(
    report: OneToOneReport,
    one_to_n: Mapping,
    *,
    subjects: int | None = None,
    seed_variants: Sequence[str] | None = None,
    stress_percent: pd.DataFrame | None = None,
    burst_shifts: Mapping[str, np.ndarray] | None = None,
    burst_copies: int | None = None,
    protocol: str | None = None,
) -> dict:
    """``verification.json``: the 1:1 report (``OneToOneReport.to_dict``), the FARs its impostor pairs can
    measure, and the 1:N results; the chapter adds the subjects, the coreset's seed variants, TAR under the
    stresses (given in percent, as shown, by ``stress.stress_templates``) and the bursts' descriptor shifts;
    ``dmlfaces verify`` adds the protocol it read. A part not given is left out."""
    document = {
        **report.to_dict(),
        "measurable_fars": [far_key(far) for far in measurable_fars(report.fars, report.impostor_pairs)],
        "one_to_n": dict(one_to_n),
    }
    if subjects is not None:
        document["subjects"] = int(subjects)
    if seed_variants is not None:
        document["seed_variants"] = list(seed_variants)
    if stress_percent is not None:
        document["stress_tar_at_1e-3"] = {
            column: {name: float(value) / 100 for name, value in stress_percent[column].items()}
            for column in stress_percent.columns
        }
    if burst_shifts is not None:
        document["burst_shift"] = {
            name: {"mean": float(shift.mean()), "median": float(np.median(shift)), "copies": burst_copies}
            for name, shift in burst_shifts.items()
        }
    if protocol is not None:
        document["protocol"] = protocol
    return document


def attribute_embedding(features_path: str | Path, dim: int, attributes: Mapping) -> dict:
    """One embedding's entry of ``attributes.json``'s ``embeddings``: its features file, width and study."""
    return {"features": str(features_path), "dim": int(dim), "attributes": dict(attributes)}


def attributes_metrics(params: AttributeStudyParams, embeddings: Mapping[str, Mapping]) -> dict:
    """``attributes.json``: the study's clustering parameters (``AttributeStudyParams``) and each embedding's
    results (``attribute_embedding``), by name."""
    return {
        "params": {
            "method": params.method,
            "n_init": params.n_init,
            "pca_components": params.pca_components,
            "identity_embedding": params.identity_embedding,
            "seed": params.seed,
            "nuisance_held": params.nuisance_held(),
        },
        "embeddings": dict(embeddings),
    }


def _data_headline(document: Mapping) -> dict:
    realism = document["dlib_realism"]
    return {
        "pixel_baseline_tar_at_1e-3": document["pixel_baseline"]["tar_at_far"]["0.001"],
        "dlib_detection_rate": realism["detection_rate"],
        "dlib_tar_at_1e-3": realism["tar_at_far"]["0.001"],
    }


def _embedding_headline(document: Mapping) -> dict:
    return {
        "final_training_loss": document["final_training_loss"],
        "spearman_norm_quality": document["spearman_norm_quality"],
        "single_image_tar_at_1e-3": {name: tars["0.001"] for name, tars in document["single_image_tar_at_far"].items()},
    }


def _aggregator_headline(document: Mapping) -> dict:
    return {
        "picked_quality": document["picked_quality"],
        "template_quality": document["template_quality"],
        "coreset_gamma": document["gamma"].get("coreset"),
    }


def _verification_headline(document: Mapping) -> dict:
    return {
        f"tar_at_{far:g}": {name: rows[far_key(far)]["tar_exact"] for name, rows in document["methods"].items()}
        for far in HEADLINE_FARS
    }


def _attributes_headline(document: Mapping) -> dict:
    """Each embedding's clustering accuracy per attribute: the mean over identities within them, the accuracy
    over all identities across them."""

    def accuracy(result: Mapping) -> float | None:
        if result["status"] != "ok":
            return None
        return result["accuracy"]["mean"] if result["protocol"] == "intra" else result["uncontrolled"]["accuracy"]

    return {
        name: {attribute: accuracy(result) for attribute, result in entry["attributes"].items()}
        for name, entry in document["embeddings"].items()
    }


HEADLINES = {
    "data": _data_headline,
    "embedding": _embedding_headline,
    "aggregator": _aggregator_headline,
    "verification": _verification_headline,
    "attributes": _attributes_headline,
}


def read_metrics(results_dir: str | Path) -> dict[str, dict]:
    """The five metrics files of ``results_dir/metrics``, by name (``data``, ``embedding``, ...)."""
    return {name: json.loads((Path(results_dir) / "metrics" / f"{name}.json").read_text()) for name in METRICS_FILES}


def write_metrics(results_dir: str | Path, name: str, document: Mapping) -> Path:
    """Write ``results_dir/metrics/<name>.json`` and its headline ``results_dir/headline/<name>.json``; return
    the first. ``name`` is one of ``METRICS_FILES``."""
    if name not in METRICS_FILES:
        raise ValueError(f"no metrics file {name!r}; the pipeline writes {list(METRICS_FILES)}")
    path = Path(results_dir) / "metrics" / f"{name}.json"
    write_json(path, document)
    write_json(Path(results_dir) / "headline" / f"{name}.json", HEADLINES[name](document))
    return path


def write_roc_points(results_dir: str | Path, curves: Mapping[str, RocCurve]) -> list[Path]:
    """``results_dir/plots/roc/<method>.csv`` per method: its ROC operating points (``far``, ``tar``) and the
    false reject rate ``frr`` (1 - TAR, the DET curve's y)."""
    return [
        _write_csv(
            Path(results_dir) / "plots" / "roc" / f"{name}.csv",
            pd.DataFrame({"far": curve.far, "tar": curve.tar, "frr": 1 - curve.tar}),
        )
        for name, curve in curves.items()
    ]


def write_loss_curves(results_dir: str | Path, name: str, histories: Mapping[str, Mapping]) -> list[Path]:
    """``results_dir/plots/<name>/<run>.csv`` per training run: its mean loss per epoch (``epoch``, ``loss``)."""
    return [
        _write_csv(
            Path(results_dir) / "plots" / name / f"{run}.csv",
            pd.DataFrame([{"epoch": e["epoch"], "loss": e["loss"]} for e in history["epochs"]]),
        )
        for run, history in histories.items()
    ]


def _write_csv(path: Path, table: pd.DataFrame) -> Path:
    atomic_write_text(path, table.to_csv(index=False))
    return path
