"""The command line: help lists every stage; synth and data-report run for real."""

from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["extract", "--backbone", "b.pt", "--ijb", "x", "--out", "x.npz", "--device", "gpu"],
            "argument --device: 'gpu'; choose auto,",
        ),
        (
            ["extract-views", "--backbone", "b.pt", "--data", "d", "--out", "v.npz", "--views", "-2"],
            "argument --views: -2; it must be at least 0",
        ),
        (["verify", "--ijb", "x", "--out", "o", "--resamples", "-5"], "argument --resamples: -5; it must be at least 0"),
        (["verify", "--ijb", "x", "--out", "o", "--seed", "1.5"], "argument --seed: '1.5' is not an integer"),
        (["synth", "--out", "s", "--workers", "0"], "argument --workers: 0; it must be at least 1"),
    ],
)
def test_a_value_out_of_range_is_a_usage_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(arguments)
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_synth_writes_the_layouts_and_prints_its_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--preset", "tiny", "--seed", "3", "--workers", "1"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["ijb_crops"] == len(list((out / "IJBS" / "loose_crop").iterdir()))
    # data-report writes chapter 01's data.json: tests/test_pipeline.py compares the two on the tiny pipeline.


def test_synth_reuse_keeps_current_data_and_regenerates_other_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert main(arguments) == 2  # another version is regenerated, but never over a user's file
    printed = capsys.readouterr()
    assert "holds generator v3, preset tiny, seed 2" in printed.out and "train/kept.txt" in printed.err
    assert marker.read_text() == "untouched"
    marker.unlink()
    assert main(arguments) == 0
    assert json.loads((out / "synthfaces.json").read_text()) == manifest


def test_extract_and_attributes_on_a_celeba_layout(
    tiny_data: Path, tiny_backbone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features = tmp_path / "celeba.npz"
    assert main(["extract", "--backbone", str(tiny_backbone), "--celeba", str(tiny_data / "celeba"), "--out", str(features)]) == 0
    params = tmp_path / "params.yaml"
    params.write_text("attributes:\n  n_init: 2\n  probe_folds: 2\n  min_identities_per_state: 1\n")
    out = tmp_path / "attributes.json"
    assert (
        main(
            [
                "attributes",
                "--celeba",
                str(tiny_data / "celeba"),
                "--features",
                str(features),
                "--params",
                str(params),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert set(report) == {"params", "embeddings"} and list(report["embeddings"]) == ["celeba"]  # chapter 05's schema
    studied = report["embeddings"]["celeba"]
    assert studied["features"] == str(features) and studied["dim"] == 64  # tiny_backbone's width
    assert report["params"]["n_init"] == 2 and set(studied["attributes"]) >= {"beard", "glasses", "gender"}
    assert studied["attributes"]["beard"]["status"] == "skipped"
    printed = capsys.readouterr().out
    assert "beard: skipped" in printed and "glasses (intra-class, Eyeglasses): clustering accuracy" in printed
    # With SynthFaces' ground truth: what each split follows, and the nuisance-controlled protocol.
    assert (
        main(
            [
                "attributes",
                "--celeba",
                str(tiny_data / "celeba"),
                "--features",
                str(features),
                "--params",
                str(params),
                "--ground-truth",
                str(tiny_data / "ground_truth.csv"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    glasses = json.loads(out.read_text())["embeddings"]["celeba"]["attributes"]["glasses"]
    assert glasses["factors"]["problems"] == glasses["identities"]["used"] and "controlled" in glasses
    assert glasses["by_frame"].keys() <= {"thin", "thick"}
    # A ground-truth file of another data set is refused, naming it.
    (tmp_path / "truth.csv").write_text("split,path\n")
    assert (
        main(
            [
                "attributes",
                "--celeba",
                str(tiny_data / "celeba"),
                "--features",
                str(features),
                "--ground-truth",
                str(tmp_path / "truth.csv"),
                "--out",
                str(tmp_path / "b.json"),
            ]
        )
        == 2
    )
    assert "truth.csv: no column 'person_gender'" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_attributes_rejects_unknown_parameters(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("attributes:\n  clusters: 3\n")
    assert (
        main(
            [
                "attributes",
                "--celeba",
                str(tiny_data / "celeba"),
                "--features",
                str(tmp_path / "x.npz"),
                "--params",
                str(params),
                "--out",
                str(tmp_path / "a.json"),
            ]
        )
        == 2
    )
    assert "unknown keys ['clusters']" in capsys.readouterr().err


def _entry_point(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dmlfaces", *arguments], capture_output=True, text=True)


def test_user_errors_print_one_line_without_a_traceback(tiny_data: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    cases = [
        (
            ["extract", "--backbone", str(tmp_path / "none.pt"), "--ijb", str(tiny_data / "IJBS"), "--out", str(mine)],
            "is a directory, but this output is a file",
        ),  # refused before any work, the directory kept
        (["synth", "--out", str(mine), "--preset", "tiny"], "is not a SynthFaces output"),
        (
            [
                "train-embedding",
                "--data",
                str(tiny_data / "train"),
                "--out",
                str(tmp_path / "e"),
                "--params",
                str(tmp_path / "p.yaml"),
            ],
            "no such parameters file",
        ),
        (
            ["verify", "--ijb", str(tmp_path / "nowhere"), "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "v")],
            "nowhere",
        ),
    ]
    for arguments, message in cases:
        result = _entry_point(*arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        assert "Traceback" not in result.stderr and message in result.stderr, (arguments, result.stderr)
        assert result.stderr.startswith(f"dmlfaces {arguments[0]}: ") and len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


def test_an_internal_error_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dmlfaces import cli

    def broken(args) -> None:
        raise KeyError("a bug of ours")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["check-params"].set_defaults(run=broken)
    with pytest.raises(KeyError, match="a bug of ours"):
        cli.main(["check-params", "data"])


def _faces_csv(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def test_extract_with_dlib(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dmlfaces.data.celeba import read_celeba
    from dmlfaces.features import read_features

    out = tmp_path / "dlib.npz"
    assert main(["extract", "--dlib", "--celeba", str(tiny_data / "celeba"), "--out", str(out)]) == 0
    features = read_features(out)
    assert features.features.shape == (60, 128) and np.allclose(np.linalg.norm(features.features, axis=1), 1, atol=1e-5)
    rows = _faces_csv(tmp_path / "dlib.faces.csv")
    names = list(read_celeba(tiny_data / "celeba").attributes.index)
    assert rows[0] == ["name", "found_by"] and [row[0] for row in rows[1:]] == names == features.names.tolist()
    found_by = [row[1] for row in rows[1:]]
    detected = found_by.count("detector")
    # The layout has the landmarks file: every face the detector misses is aligned from it.
    assert detected >= 1 and found_by.count("landmarks") == 60 - detected
    assert (
        f"dlib: {detected} of 60 faces found by its detector, {60 - detected} aligned from the landmarks, "
        "0 described as the whole image"
    ) in capsys.readouterr().out

    # Without the landmarks: the same detections, the rest described whole.
    assert (
        main(["extract", "--dlib", "--no-landmarks", "--celeba", str(tiny_data / "celeba"), "--out", str(tmp_path / "w.npz")])
        == 0
    )
    whole = _faces_csv(tmp_path / "w.faces.csv")
    assert [row[1] == "detector" for row in whole[1:]] == [way == "detector" for way in found_by]
    assert {row[1] for row in whole[1:]} == {"detector", "whole_image"}
    # IJB crops, aligned by the loader, have no landmarks to fall back on either.
    assert main(["extract", "--dlib", "--ijb", str(tiny_data / "IJBS"), "--out", str(tmp_path / "ijb.npz")]) == 0
    crops = _faces_csv(tmp_path / "ijb.faces.csv")
    assert [row[0] for row in crops[1:]] == read_features(tmp_path / "ijb.npz").names.tolist()
    assert {row[1] for row in crops[1:]} <= {"detector", "whole_image"}
    assert (
        main(
            [
                "extract",
                "--backbone",
                "b.pt",
                "--no-landmarks",
                "--celeba",
                str(tiny_data / "celeba"),
                "--out",
                str(tmp_path / "b.npz"),
            ]
        )
        == 2
    )
    assert "--no-landmarks applies to --dlib --celeba only" in capsys.readouterr().err


def test_extract_with_dlib_refuses_landmarks_it_cannot_calibrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from dmlfaces.data.align import ARCFACE_TEMPLATE
    from dmlfaces.data.celeba import IMAGE_DIR, write_celeba

    # Three images of noise: no face for the detector, so nothing to calibrate the landmark alignment on.
    root = tmp_path / "celeba"
    names = ["000001.jpg", "000002.jpg", "000003.jpg"]
    (root / IMAGE_DIR).mkdir(parents=True)
    for seed, name in enumerate(names):
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (112, 112, 3), dtype=np.uint8)).save(root / IMAGE_DIR / name)
    landmarks = np.repeat(ARCFACE_TEMPLATE[None], 3, axis=0)
    write_celeba(root, names, -np.ones((3, 40), dtype=np.int8), np.array([1, 1, 2]), np.zeros(3, dtype=np.int8), landmarks)
    assert main(["extract", "--dlib", "--celeba", str(root), "--out", str(tmp_path / "f.npz")]) == 2
    error = capsys.readouterr().err
    assert "dlib's detector found a face in none of the 3 images" in error and "--no-landmarks" in error
    assert not (tmp_path / "f.npz").exists() and not (tmp_path / "f.faces.csv").exists()

    landmarks[1, 4] = landmarks[1, 3]  # two mouth corners in one place: no face to align
    write_celeba(root, names, -np.ones((3, 40), dtype=np.int8), np.array([1, 1, 2]), np.zeros(3, dtype=np.int8), landmarks)
    assert main(["extract", "--dlib", "--celeba", str(root), "--out", str(tmp_path / "f.npz")]) == 2
    error = capsys.readouterr().err
    assert (
        "list_landmarks_align_celeba.txt: image 000002.jpg: landmarks 4 (left mouth corner) and 5 (right mouth corner) coincide"
        in error
    )

    assert main(["extract", "--dlib", "--no-landmarks", "--celeba", str(root), "--out", str(tmp_path / "f.npz")]) == 0
    assert _faces_csv(tmp_path / "f.faces.csv")[1:] == [[name, "whole_image"] for name in names]


def test_two_gloo_processes_extract_dlib_descriptors_as_one_does(tiny_data: Path, tmp_path: Path) -> None:
    from dmlfaces.features import read_features

    # Each process calibrates the landmark alignment on the detections of both, so the files are the same.
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dmlfaces"]
    for name, launcher in {"ranks": torchrun, "single": [sys.executable, "-m", "dmlfaces"]}.items():
        result = subprocess.run(
            [
                *launcher,
                "extract",
                "--dlib",
                "--celeba",
                str(tiny_data / "celeba"),
                "--out",
                str(tmp_path / name / "f.npz"),
                "--device",
                "cpu",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count("faces found by its detector") == 1  # rank 0 alone reports
    ranks, single = read_features(tmp_path / "ranks" / "f.npz"), read_features(tmp_path / "single" / "f.npz")
    assert np.array_equal(ranks.names, single.names) and np.array_equal(ranks.features, single.features)
    assert (tmp_path / "ranks" / "f.faces.csv").read_text() == (tmp_path / "single" / "f.faces.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "ranks").iterdir()) == ["f.csv", "f.faces.csv", "f.npz"]


def test_extract_refuses_or_skips_crops_with_bad_landmarks(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import torch

    from dmlfaces.features import read_features
    from dmlfaces.models.backbones import build_backbone
    from dmlfaces.models.checkpoints import save_backbone
    from dmlfaces.train.embedding import EmbeddingConfig

    root = shutil.copytree(tiny_data / "IJBS", tmp_path / "IJBS")
    points = root / "meta" / "ijbs_name_5pts_score.txt"
    lines = points.read_text().splitlines()
    fields = lines[4].split(" ")
    fields[3] = "5000.000"  # the right eye's x, far right of the crop
    crop = fields[0]
    # On every line naming that crop: a crop several templates list has one image and one set of landmarks.
    lines = [" ".join(fields) if line.split(" ")[0] == crop else line for line in lines]
    rows = sum(line.split(" ")[0] == crop for line in lines)
    points.write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    save_backbone(build_backbone("small", 32).eval(), EmbeddingConfig(backbone="small", embedding_dim=32), tmp_path / "b.pt")
    extract = ["extract", "--backbone", str(tmp_path / "b.pt"), "--ijb", str(root), "--device", "cpu", "--batch-size", "64"]

    assert main([*extract, "--out", str(tmp_path / "refused.npz")]) == 2
    error = capsys.readouterr().err
    assert f"ijbs_name_5pts_score.txt:5: crop '{crop}': landmark 2 (right eye) at (5000.000" in error
    assert "--skip-bad-landmarks" in error and not (tmp_path / "refused.npz").exists()

    assert main([*extract, "--out", str(tmp_path / "f.npz"), "--skip-bad-landmarks"]) == 0
    error = capsys.readouterr().err
    assert f"skipped: {points}:5: crop '{crop}'" in error and f"skipped {rows} of " in error
    features = read_features(tmp_path / "f.npz")
    assert crop not in features.names.tolist() and features.skipped.tolist() == [crop]

    # Verification says which template lost the crop, on stderr and in its report.
    with pytest.warns(
        UserWarning, match=rf"{rows} crops were skipped at extraction, so {rows} templates are described by the rest"
    ):
        assert (
            main(
                [
                    "verify",
                    "--ijb",
                    str(root),
                    "--features",
                    str(tmp_path / "f.npz"),
                    "--out",
                    str(tmp_path / "v"),
                    "--resamples",
                    "0",
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
    lost = json.loads((tmp_path / "v" / "verification.json").read_text())["lost_crops"]
    assert len(lost) == rows and all(entry["lost"] == 1 for entry in lost)


def test_the_command_line_pins_numerics_before_numpy_or_torch_loads() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, dmlfaces.cli; print([m for m in ('numpy', 'torch') if m in sys.modules])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"  # importing the entry point leaves the pin to main()
    result = subprocess.run(
        [sys.executable, "-m", "dmlfaces", "check-params", "data"],
        capture_output=True,
        text=True,
        env={**os.environ, "DMLFACES_NUMERICS": "fast"},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 2 and result.stderr.startswith("dmlfaces: DMLFACES_NUMERICS='fast' is not a numerics mode")
    assert "'pinned'" in result.stderr and "'native'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
