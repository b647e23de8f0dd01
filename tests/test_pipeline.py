"""The real pipeline on tiny data: `dvc repro` runs the papermill stage and builds the book with
warnings as errors; a second `dvc repro` does nothing. With DMLFACES_KEEP_BOOK=DIR set, the built book
(`_build/html`) is copied to DIR (relative to the repository) for `make check-book BOOK=DIR` (.ci/run does this)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _project_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return [f for f in listed if (REPO / f).is_file()]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def test_dvc_repro_runs_the_data_chapter_and_builds_the_book(tiny_data: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
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
    params["aggregator_variants"] = {"coreset": {}, "gamma0": {"gamma": 0.0, "learn_gamma": False},
                                     "attention_pooling": {"method": "attention_pooling"}}
    params["aggregator_report"].update(resamples=20, burst_copies=5)
    params["verification_report"].update(resamples=20, burst_copies=5)
    params["attributes"].update(n_init=2, probe_folds=2, min_identities_per_state=1)
    params["attributes_report"]["map_identities"] = 10
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    # Tool caches in the tree (pytest's writes a README.md) must not leak into the book.
    (project / ".pytest_cache").mkdir(exist_ok=True)
    (project / ".pytest_cache" / "README.md").write_text("# pytest cache\n")
    _run(["git", "init", "-q"], project)

    _run(["dvc", "repro"], project)

    metrics = json.loads((project / "results" / "metrics" / "data.json").read_text())
    assert metrics["preset"] == "tiny" and metrics["counts"]["ijb_crops"] > 0
    assert 0.0 <= metrics["pixel_baseline"]["tar_at_far"]["0.001"] <= 1.0
    html = (project / "_build" / "html" / "book" / "01_data.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) >= 5, images
    for src in images:
        assert (project / "_build" / "html" / "book" / src).resolve().is_file(), src
    assert "pixel baseline reaches TAR" in html
    references = (project / "_build" / "html" / "book" / "references.html").read_text().lower()
    for title in ("FaceCoresetNet", "Cluster and Aggregate", "AdaFace", "ArcFace", "Janus", "Deep Learning Face Attributes",
                  "Feature Representation in Deep Metric Embeddings"):
        assert title.lower() in references, title
    for figure in ("gallery", "attribute_toggles", "quality_spectrum", "quality_distribution", "clip_burst"):
        assert (project / "results" / "figures" / "01_data" / f"{figure}.png").is_file()
    embedding = json.loads((project / "results" / "metrics" / "embedding.json").read_text())
    assert embedding["epochs"] == 1 and -1.0 <= embedding["spearman_norm_quality"] <= 1.0
    assert set(embedding["single_image_tar_at_far"]) == {"embedding", "pixel baseline"}
    chapter = (project / "_build" / "html" / "book" / "02_embedding.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 4 and "Spearman" in chapter

    aggregator = json.loads((project / "results" / "metrics" / "aggregator.json").read_text())
    assert set(aggregator["verification"]["methods"]) == {"mean", "norm_weighted", "media_template", "coreset", "gamma0",
                                                          "attention_pooling"}
    assert aggregator["gamma"]["gamma0"] == 0.0
    chapter = (project / "_build" / "html" / "book" / "03_aggregator.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 3 and "TAR at FAR = 1e-4" in chapter

    verification = json.loads((project / "results" / "metrics" / "verification.json").read_text())
    assert {"coreset", "gamma0", "attention_pooling", "mean"} <= set(verification["methods"])
    assert verification["methods"]["coreset"]["0.1"]["ci_low"] is not None
    chapter = (project / "_build" / "html" / "book" / "04_verification.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 1 and "96.03" in chapter
    attributes = json.loads((project / "results" / "metrics" / "attributes.json").read_text())["attributes"]
    assert set(attributes) == {"beard", "glasses", "expression", "gender", "skin_tone", "age"}
    assert attributes["beard"]["status"] == "skipped"  # tiny SynthFaces has no beard in its CelebA part
    chapter = (project / "_build" / "html" / "book" / "05_attributes.html").read_text()
    assert len(re.findall(r'<img [^>]*src="', chapter)) >= 2 and "paper v2" in chapter

    again = _run(["dvc", "repro"], project)
    assert "didn't change, skipping" in again.stdout
    assert "Running stage" not in again.stdout
    if keep := os.environ.get("DMLFACES_KEEP_BOOK"):
        shutil.rmtree(REPO / keep, ignore_errors=True)
        shutil.copytree(project / "_build" / "html", REPO / keep)
