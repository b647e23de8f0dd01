"""The real pipeline on tiny data: `dvc repro` runs every stage and builds the book with warnings as errors;
a second `dvc repro` does nothing; a stage SIGKILLed mid-run leaves no half-written output and the rerun gives
byte-identical metrics. With DMLFACES_KEEP_BOOK=DIR set, the built book (`_build/html`) is copied to DIR
(relative to the repository) for `make check-book BOOK=DIR` (.ci/run does this)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from dmlfaces import findings, metrics
from dmlfaces.data.faces import QUALITY_WEIGHTS
from dmlfaces.models.coreset_changes import CHANGES, change_variants
from dmlfaces.notebook import part_path

pytestmark = pytest.mark.pipeline
REPO = Path(__file__).resolve().parents[1]
# The faithful variant and one of its one-change variants: the chapter-03 table with one change measured.
TINY_FAITHFUL = ("faithful", "faithful_with_pick_logits")


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [f for f in listed if (REPO / f).is_file()]


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1", **extra)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def project(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository on tiny data with shrunken parameters, after one full `dvc repro`."""
    project = tmp_path_factory.mktemp("pipeline") / "project"
    for name in _project_files():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(tiny_data, project / "data")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["preset"] = "tiny"
    params["data_report"].update(gallery_persons=2, gallery_per_person=4, pca_dim=16, pixel_size=16)
    params["embedding"].update(embedding_dim=64, epochs=1, batch_size=8, device="cpu")
    params["embedding_report"].update(genuine_pairs=300, impostor_pairs=3000, map_identities=4)
    params["aggregator_views"]["views"] = 1
    params["aggregator"].update(heads=4, epochs=1, batch_size=4, templates_per_identity=2, max_set_size=6, device="cpu")
    faithful = {name: settings for name, settings in change_variants().items() if name in TINY_FAITHFUL}
    params["aggregator_variants"] = {
        "coreset": {},
        "coreset_seed1": {"seed": 1},
        "gamma0": {"gamma": 0.0, "learn_gamma": False},
        "attention_pooling": {"method": "attention_pooling"},
        **faithful,
    }
    params["verification_report"].update(resamples=20, burst_copies=5)
    params["attributes"].update(n_init=2, probe_folds=2, min_identities_per_state=1)
    params["attributes_report"]["map_identities"] = 10
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    # Tool caches in the tree (pytest's writes a README.md) must not leak into the book.
    (project / ".pytest_cache").mkdir(exist_ok=True)
    (project / ".pytest_cache" / "README.md").write_text("# pytest cache\n")
    _run(["git", "init", "-q"], project)

    _run(["dvc", "repro"], project)
    return project


def test_dvc_repro_runs_every_chapter_and_builds_the_book(project: Path) -> None:
    metrics = json.loads((project / "results" / "metrics" / "data.json").read_text())
    assert metrics["preset"] == "tiny" and metrics["counts"]["ijb_crops"] > 0
    assert 0.0 <= metrics["pixel_baseline"]["tar_at_far"]["0.001"] <= 1.0
    html = (project / "_build" / "html" / "book" / "01_data.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) >= 5, images
    for src in images:
        assert (project / "_build" / "html" / "book" / src).resolve().is_file(), src
    assert "pixel baseline reaches TAR" in html
    # dlib's realism check: extract_celeba_dlib ran before the chapter; every CelebA-layout image is described
    # (the tiny set's landmarks align the faces its detector misses) and every pair of them scored.
    realism = metrics["dlib_realism"]
    images = metrics["counts"]["celeba_images"]
    assert realism["images"] == images == realism["detected"] + realism["landmark_aligned"] and realism["whole_image"] == 0
    assert realism["genuine_pairs"] + realism["impostor_pairs"] == images * (images - 1) // 2
    assert set(realism["tar_at_far"]) == {"0.001", "0.01"} and all(0 <= tar <= 1 for tar in realism["tar_at_far"].values())
    assert f">{100 * realism['tar_at_far']['0.001']:.1f}%<" in html  # the glued TAR, worded in the chapter
    assert "was measured on real faces" in html
    faces = (project / "results" / "features" / "celeba_dlib.faces.csv").read_text().splitlines()
    assert faces[0] == "name,found_by" and len(faces) == images + 1
    references = (project / "_build" / "html" / "book" / "references.html").read_text().lower()
    for title in (
        "FaceCoresetNet",
        "Cluster and Aggregate",
        "AdaFace",
        "ArcFace",
        "Janus",
        "Deep Learning Face Attributes",
        "Feature Representation in Deep Metric Embeddings",
    ):
        assert title.lower() in references, title
    for figure in ("gallery", "attribute_toggles", "quality_spectrum", "quality_distribution", "clip_burst"):
        assert (project / "results" / "figures" / "01_data" / f"{figure}.png").is_file()
    embedding = json.loads((project / "results" / "metrics" / "embedding.json").read_text())
    assert embedding["epochs"] == 1 and -1.0 <= embedding["spearman_norm_quality"] <= 1.0
    assert set(embedding["single_image_tar_at_far"]) == {"embedding", "pixel baseline"}
    assert set(embedding["spearman_by_degradation"]) == set(QUALITY_WEIGHTS)
    chapter = (project / "_build" / "html" / "book" / "02_embedding.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 4 and "Spearman" in chapter

    trained = {"coreset", "coreset_seed1", "gamma0", "attention_pooling", *TINY_FAITHFUL}
    aggregator = json.loads((project / "results" / "metrics" / "aggregator.json").read_text())
    assert set(aggregator["gamma"]) == trained
    assert aggregator["gamma"]["gamma0"] == 0.0
    chapter = (project / "_build" / "html" / "book" / "03_aggregator.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 2 and "TAR at FAR = 1e-4" in chapter
    # The table of differences from the official code: one row per change, the trained one measured.
    assert all(change.point in chapter for change in CHANGES) and "not measured (faithful_with_schedule" in chapter

    verification = json.loads((project / "results" / "metrics" / "verification.json").read_text())
    methods = {"mean", "norm_weighted", "media_template", *trained}
    assert set(verification["methods"]) == methods | {"media_template_N1D1"}
    # Chapter 03's burst table, measured by this stage (no detector scores in a burst: the D1 recipe is left out).
    assert set(verification["burst_shift"]) == methods and verification["burst_shift"]["mean"]["copies"] == 5
    assert verification["methods"]["coreset"]["0.1"]["ci_low"] is not None
    assert verification["seed_variants"] == ["coreset", "coreset_seed1"]
    # Every trained variant against every baseline, at every FAR, with the paired interval.
    assert set(verification["differences"]) == {
        f"{m} - {b}" for m in trained for b in ("mean", "norm_weighted", "media_template", "media_template_N1D1")
    } | {"faithful_with_pick_logits - faithful", "coreset - faithful"}  # each change measured against the faithful variant
    row = verification["differences"]["coreset - mean"]["0.1"]
    assert row["ci_low"] <= row["ci_high"] and set(verification["differences"]["coreset - mean"]) == set(
        verification["methods"]["coreset"]
    )
    chapter = (project / "_build" / "html" / "book" / "04_verification.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 1 and "96.03" in chapter
    studied = json.loads((project / "results" / "metrics" / "attributes.json").read_text())["embeddings"]
    assert set(studied) == {"trained", "dlib"} and studied["dlib"]["dim"] == 128
    for report in studied.values():
        attributes = report["attributes"]
        assert set(attributes) == {"beard", "glasses", "expression", "gender", "skin_tone", "age"}
        assert attributes["beard"]["status"] == "skipped"  # tiny SynthFaces has no beard in its CelebA part
        assert "factors" in attributes["glasses"] and "controlled" in attributes["glasses"]
    chapter = (project / "_build" / "html" / "book" / "05_attributes.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 2 and "paper v2" in chapter

    again = _run(["dvc", "repro"], project)
    assert "didn't change, skipping" in again.stdout
    assert "Running stage" not in again.stdout
    if keep := os.environ.get("DMLFACES_KEEP_BOOK"):
        shutil.rmtree(REPO / keep, ignore_errors=True)
        shutil.copytree(project / "_build" / "html", REPO / keep)


def _start(args: list[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
    """``args`` in a process group of its own (the kill must reach the stage's children), output to a pipe."""
    return subprocess.Popen(
        args, cwd=cwd, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _kill_when(process: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 300.0) -> None:
    """SIGKILL ``process``'s whole group as soon as ``ready()`` holds, failing if the process ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"the stage ended before it could be killed:\n{process.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "the stage never reached the point to kill it at"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _outputs_are_whole(project: Path, stage: str) -> None:
    """Each output of ``stage`` (as dvc.lock lists them) is absent or complete: notebooks parse, PNGs decode,
    JSON and PyTorch files load."""
    for out in yaml.safe_load((project / "dvc.lock").read_text())["stages"][stage]["outs"]:
        path = project / out["path"]
        for file in sorted(path.rglob("*")) if path.is_dir() else [path] if path.exists() else []:
            if file.suffix == ".ipynb":
                nbformat.read(file, as_version=4)
            elif file.suffix == ".png":
                Image.open(file).load()
            elif file.suffix == ".json":
                json.loads(file.read_text())
            elif file.suffix == ".pt":
                torch.load(file, map_location="cpu", weights_only=False)


def _metrics(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project / "results" / "metrics").glob("*.json"))}


def test_a_stage_killed_mid_run_leaves_no_half_output_and_the_rerun_gives_the_same_metrics(project: Path) -> None:
    before = _metrics(project)
    # A notebook stage, killed while papermill runs its cells: papermill has saved a partial notebook by then.
    report = _start(["dvc", "repro", "--force", "--single-item", "embedding_report"], project)
    _kill_when(report, lambda: part_path(project / "book" / "02_embedding.ipynb").exists())
    assert not (project / "book" / "02_embedding.ipynb").exists()
    _outputs_are_whole(project, "embedding_report")
    # A training stage from scratch (its finished checkpoints would make the resume a no-op), SIGKILLed by its
    # own fault switch after optimizer step 2.
    shutil.rmtree(project / "results" / "aggregator" / "coreset" / "checkpoints")
    training = _start(
        ["dvc", "repro", "--force", "--single-item", "train_aggregator@coreset"], project, DMLFACES_FAULT_KILL_AT_STEP="2"
    )
    training.wait()
    assert training.returncode != 0 and not (project / "results" / "aggregator" / "coreset" / "aggregator.pt").exists()
    _outputs_are_whole(project, "train_aggregator@coreset")

    rerun = _run(["dvc", "repro"], project).stdout
    # Both stages are redone: run again, or restored from DVC's run cache (same command and inputs as before).
    for stage in ("embedding_report", "train_aggregator@coreset"):
        assert f"Running stage '{stage}'" in rerun or f"Stage '{stage}' is cached" in rerun, rerun[-3000:]
    assert _metrics(project) == before


def test_the_book_pages_state_the_findings_and_the_pipeline_from_their_files(project: Path) -> None:
    html = project / "_build" / "html"
    assert "book/00_introduction.html" in (html / "index.html").read_text()  # the introduction is the root page
    intro = (html / "book" / "00_introduction.html").read_text()
    verification = json.loads((project / "results" / "metrics" / "verification.json").read_text())
    far = findings.headline_far(verification)
    coreset = findings.tar_at(verification, "coreset", far)
    assert str(coreset) in intro
    for baseline in ("mean", "norm_weighted", "media_template", "media_template_N1D1"):
        assert findings.comparison_phrase(findings.difference_at(verification, "coreset", baseline, far)) in intro
    summary = (html / "book" / "06_results_summary.html").read_text()
    assert all(variant in summary for variant in ("coreset", "gamma0", "attention_pooling"))
    reproducibility = (html / "book" / "07_reproducibility.html").read_text()
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    for stage in ("data_report", "train_aggregator@gamma0", "attributes_report"):
        assert stage in reproducibility
        assert all(out["md5"] in reproducibility for out in lock[stage]["outs"])
    assert "recorded after this page is written" in reproducibility  # its own stage and the book's


def test_a_chapter_opened_from_notebooks_runs_on_the_pipeline_outputs_with_its_default_parameters(project: Path) -> None:
    """A chapter as `make lab` runs it (tests/test_lab.py: JupyterLab starts a notebook's kernel in the notebook's
    folder): kernel in notebooks/, no papermill, so the parameters cell keeps its defaults (the values of
    params.yaml); every cell runs on the outputs `dvc repro` left. The results summary writes no file."""
    from nbclient import NotebookClient

    notebook = nbformat.read(project / "notebooks" / "06_results_summary.ipynb", as_version=4)
    assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells)  # run as written, nothing injected
    # nbclient raises CellExecutionError, with the failing cell and its traceback, on the first cell that fails.
    NotebookClient(
        notebook,
        kernel_name=notebook.metadata.kernelspec.name,
        timeout=600,
        resources={"metadata": {"path": str(project / "notebooks")}},
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    shown = json.dumps([output.get("data", {}) for cell in code for output in cell.outputs])
    assert all(variant in shown for variant in ("coreset", "gamma0", "attention_pooling"))  # the tiny run's variants


def test_the_cli_writes_the_chapters_metrics_documents(project: Path, tmp_path: Path) -> None:
    """One builder per metrics file: `dmlfaces data-report` on the pipeline's data and params gives chapter 01's
    data.json byte for byte."""
    _run(["dmlfaces", "data-report", "--out", str(tmp_path / "data.json")], project)
    assert (tmp_path / "data.json").read_bytes() == (project / "results" / "metrics" / "data.json").read_bytes()


def test_dvc_shows_the_headline_metrics_and_plots_the_curves(project: Path) -> None:
    """`dvc metrics show` gives the small headline files (a readable table), `dvc plots show` loads the curves."""
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], project).stdout)
    files = next(iter(shown.values()))["data"]
    assert sorted(files) == sorted(f"results/headline/{name}.json" for name in metrics.METRICS_FILES)
    verification = files["results/headline/verification.json"]["data"]
    assert set(verification) == {"tar_at_0.0001", "tar_at_0.001"} and "coreset" in verification["tar_at_0.001"]
    columns = sum(len(pd.json_normalize(entry["data"]).columns) for entry in files.values())
    assert columns <= 120, columns
    shown_plots = json.loads(_run(["dvc", "plots", "show", "--json"], project).stdout)
    assert not shown_plots.get("errors"), shown_plots.get("errors")
    plots = shown_plots["data"]  # the top-level definitions alone: the stages declare the CSV files as outputs
    assert set(plots) == {"roc", "det", "embedding training loss", "aggregator training loss"}, sorted(plots)
    roc_files = {point["filename"] for point in plots["roc"][0]["content"]["data"]["values"]}
    assert roc_files == {
        f"{name}.csv" for name in ("mean", "norm_weighted", "media_template", "media_template_N1D1", "coreset", "faithful")
    }
