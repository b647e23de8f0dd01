"""Feature extraction: unit rows, flip test, the file format, the CLI on the IJB layout, and torchrun shards."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dmlfaces.cli import main
from dmlfaces.data.errors import DataFormatError
from dmlfaces.devices import DistributedContext
from dmlfaces.features import FeatureSet, extract_features, extract_with_single_pass, read_features, shard_range, write_features
from dmlfaces.models.backbones import build_backbone
from dmlfaces.models.checkpoints import save_backbone
from dmlfaces.train.embedding import EmbeddingConfig


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone("small", 32).eval()


def test_unit_features_norms_and_flip_test() -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    model = _model()
    features, norms = extract_features(model, lambda i: images[i], 5, batch_size=2, flip=False, device="cpu", progress=False)
    assert features.shape == (5, 32) and np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)
    with torch.no_grad():
        raw = model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1)
    assert np.allclose(norms, raw.norm(dim=1).numpy(), rtol=1e-4)
    flipped, _ = extract_features(model, lambda i: images[i], 5, flip=True, device="cpu", progress=False)
    mirrored, _ = extract_features(model, lambda i: images[i][:, ::-1].copy(), 5, flip=True, device="cpu", progress=False)
    assert np.allclose(flipped, mirrored, atol=1e-5)  # the flip test is mirror invariant


def test_the_single_pass_comes_with_the_flip_test_bit_for_bit() -> None:
    images = np.random.default_rng(1).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    model = _model()
    features, norms, single, single_norms = extract_with_single_pass(
        model, lambda i: images[i], 5, batch_size=2, device="cpu", progress=False
    )
    flip_features, flip_norms = extract_features(model, lambda i: images[i], 5, batch_size=2, device="cpu", progress=False)
    one_pass, one_pass_norms = extract_features(
        model, lambda i: images[i], 5, batch_size=2, flip=False, device="cpu", progress=False
    )
    assert np.array_equal(features, flip_features) and np.array_equal(norms, flip_norms)
    assert np.array_equal(single, one_pass) and np.array_equal(single_norms, one_pass_norms)
    assert not np.allclose(single, features, atol=1e-3)  # the mirror changes the feature
    unflipped = extract_with_single_pass(model, lambda i: images[i], 5, flip=False, device="cpu", progress=False)
    assert unflipped[2] is unflipped[0] and unflipped[3] is unflipped[1]


def test_single_passes_round_trip_and_are_refused_where_absent(tmp_path: Path) -> None:
    features, single = np.eye(3, 4, dtype=np.float32), np.eye(3, 4, k=1, dtype=np.float32)
    names, norms = ["a.jpg", "b.jpg", "c.jpg"], np.array([1.0, 2.0, 3.0])
    write_features(tmp_path / "f.npz", names, features, norms, single=(single, norms * 2))
    loaded = read_features(tmp_path / "f.npz")
    assert loaded.flip_test and np.array_equal(loaded.single_pass()[0], single)
    assert np.array_equal(loaded.single_pass()[1], norms * 2)
    write_features(tmp_path / "one.npz", names, single, norms, flip_test=False)
    one_pass = read_features(tmp_path / "one.npz")
    assert not one_pass.flip_test and one_pass.single_pass()[0] is one_pass.features
    with pytest.raises(ValueError, match="single-pass arrays given for features that are single passes already"):
        write_features(tmp_path / "both.npz", names, single, norms, flip_test=False, single=(single, norms))
    write_features(tmp_path / "flip_only.npz", names, features, norms)
    with pytest.raises(DataFormatError, match="flip_only.npz.*holds flip-test features only.*extract the features again"):
        read_features(tmp_path / "flip_only.npz").single_pass()
    with pytest.raises(DataFormatError, match="in memory"):
        FeatureSet(np.array(names), features, norms.astype(np.float32)).single_pass()
    arrays = dict(np.load(tmp_path / "f.npz"))
    cases = {
        "half": (
            {k: v for k, v in arrays.items() if k != "single_norms"},
            "key 'single_norms' is missing beside 'single_features'",
        ),
        "shape": ({**arrays, "single_features": np.eye(3, dtype=np.float32)}, r"key 'single_features': shape \(3, 3\)"),
        "unit": ({**arrays, "single_features": single * 2}, "key 'single_features': row 0 .* has length 2"),
        "both": ({**arrays, "flip_test": np.asarray(False)}, "single-pass arrays beside features that are single passes"),
        "flag": ({**arrays, "flip_test": np.array([1, 0])}, r"key 'flip_test': int64 array of shape \(2,\)"),
    }
    for name, (content, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **content)
        with pytest.raises(DataFormatError, match=message):
            read_features(tmp_path / f"{name}.npz")


def test_file_round_trip(tmp_path: Path) -> None:
    features = np.eye(3, 4, dtype=np.float32)
    write_features(tmp_path / "f.npz", ["a.jpg", "b.jpg", "c.jpg"], features, np.array([1.0, 2.0, 3.0]))
    loaded = read_features(tmp_path / "f.npz")
    assert loaded.names.tolist() == ["a.jpg", "b.jpg", "c.jpg"] and np.array_equal(loaded.features, features)
    rows = list(csv.reader((tmp_path / "f.csv").open()))
    assert rows[0] == ["name", "row", "norm"] and rows[2] == ["b.jpg", "1", "2.000000"]


def test_extract_cli_on_ijb_layout(tiny_data: Path, tmp_path: Path) -> None:
    save_backbone(_model(), EmbeddingConfig(backbone="small", embedding_dim=32), tmp_path / "backbone.pt")
    out = tmp_path / "ijbs.npz"
    assert (
        main(
            [
                "extract",
                "--backbone",
                str(tmp_path / "backbone.pt"),
                "--ijb",
                str(tiny_data / "IJBS"),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--batch-size",
                "64",
            ]
        )
        == 0
    )
    loaded = read_features(out)
    assert loaded.names[0] == "1.jpg" and loaded.features.shape[1] == 32 and np.all(loaded.norms > 0)
    assert loaded.flip_test and loaded.single_features.shape == loaded.features.shape  # kept for the faithful variants
    assert (
        main(
            [
                "extract",
                "--backbone",
                str(tmp_path / "backbone.pt"),
                "--ijb",
                str(tiny_data / "IJBS"),
                "--out",
                str(tmp_path / "single.npz"),
                "--device",
                "cpu",
                "--batch-size",
                "64",
                "--no-flip",
            ]
        )
        == 0
    )
    single = read_features(tmp_path / "single.npz")
    assert not single.flip_test and single.single_features is None
    np.testing.assert_allclose(single.features, loaded.single_features, atol=1e-5)


def test_shards_are_contiguous_whole_batches_covering_every_crop() -> None:
    shares = [shard_range(10, 3, DistributedContext(rank, 3, rank, torch.device("cpu"))) for rank in range(3)]
    assert shares == [range(0, 6), range(6, 9), range(9, 10)]  # 4 batches of 3 over 3 ranks: 2, 1, 1
    with pytest.raises(ValueError, match="2 batches of 3, fewer than the 3 processes"):
        shard_range(5, 3, DistributedContext(0, 3, 0, torch.device("cpu")))


def test_two_gloo_processes_write_the_single_process_file(tiny_data: Path, tmp_path: Path) -> None:
    save_backbone(_model(), EmbeddingConfig(backbone="small", embedding_dim=32), tmp_path / "backbone.pt")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dmlfaces"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's default; the single run must match it
    for name, launcher in {"ranks": torchrun, "single": [sys.executable, "-m", "dmlfaces"]}.items():
        result = subprocess.run(
            [
                *launcher,
                "extract",
                "--backbone",
                str(tmp_path / "backbone.pt"),
                "--ijb",
                str(tiny_data / "IJBS"),
                "--out",
                str(tmp_path / name / "f.npz"),
                "--device",
                "cpu",
                "--batch-size",
                "16",
            ],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count('"crops"') == 1  # rank 0 alone reports
    ranks, single = read_features(tmp_path / "ranks" / "f.npz"), read_features(tmp_path / "single" / "f.npz")
    # Shares are whole batches, so each rank runs exactly the batches the single process runs: equal bit for bit.
    assert np.array_equal(ranks.names, single.names) and np.array_equal(ranks.features, single.features)
    assert np.array_equal(ranks.norms, single.norms)
    assert np.array_equal(ranks.single_features, single.single_features) and np.array_equal(
        ranks.single_norms, single.single_norms
    )
    assert (tmp_path / "ranks" / "f.csv").read_text() == (tmp_path / "single" / "f.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "ranks").iterdir()) == ["f.csv", "f.npz"]  # shards removed


def _good() -> dict[str, np.ndarray]:
    features = np.eye(3, 4, dtype=np.float32)
    return {"names": np.array(["a.jpg", "b.jpg", "c.jpg"]), "features": features, "norms": np.array([1.0, 2.0, 3.0], np.float32)}


def _nan_row(data: dict) -> dict:
    data["features"][1, 2] = np.nan
    return data


def _inf_norm(data: dict) -> dict:
    data["norms"][2] = np.inf
    return data


BAD_FILES = {
    # case: (change to a good file's arrays, words in the message)
    "names missing": (lambda d: {k: v for k, v in d.items() if k != "names"}, "key 'names' is missing"),
    "norms missing": (lambda d: {k: v for k, v in d.items() if k != "norms"}, "key 'norms' is missing"),
    "names not strings": (lambda d: {**d, "names": np.arange(3)}, "key 'names': int64 array of shape (3,)"),
    "features one row short": (lambda d: {**d, "features": d["features"][:2]}, "key 'features': float32 array of shape (2, 4)"),
    "features 1-d": (lambda d: {**d, "features": d["features"][:, 0]}, "key 'features': float32 array of shape (3,)"),
    "norms (N, 1)": (lambda d: {**d, "norms": d["norms"][:, None]}, "key 'norms': float32 array of shape (3, 1)"),
    "no crops": (
        lambda d: {"names": d["names"][:0], "features": d["features"][:0], "norms": d["norms"][:0]},
        "key 'names': <U5 array of shape (0,)",
    ),
    "duplicate name": (
        lambda d: {**d, "names": np.array(["a.jpg", "b.jpg", "a.jpg"])},
        "key 'names': crop 'a.jpg' is listed in rows 0 and 2",
    ),
    "nan feature": (_nan_row, "key 'features': 1 rows have NaN or infinite values, first row 1 (crop 'b.jpg')"),
    "infinite norm": (_inf_norm, "key 'norms': 1 rows have NaN or infinite values, first row 2 (crop 'c.jpg')"),
    "negative norm": (
        lambda d: {**d, "norms": np.array([1.0, -2.0, 3.0], np.float32)},
        "key 'norms': row 1 (crop 'b.jpg') is negative",
    ),
    "raw rows, not unit": (lambda d: {**d, "features": d["features"] * 2}, "key 'features': row 0 (crop 'a.jpg') has length 2"),
    "zero row with a norm": (lambda d: {**d, "features": d["features"] * [[1], [0], [1]]}, "row 1 (crop 'b.jpg') has length 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_feature_files_name_file_key_and_fix(tmp_path: Path, case: str) -> None:
    change, words = BAD_FILES[case]
    np.savez(tmp_path / "f.npz", **change(_good()))
    with pytest.raises(DataFormatError) as caught:
        read_features(tmp_path / "f.npz")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'f.npz'}: ") and words in message and "Fix: extract the features again" in message


def test_unreadable_feature_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"none\.npz: features file is missing"):
        read_features(tmp_path / "none.npz")
    (tmp_path / "text.npz").write_text("names,features\n")
    with pytest.raises(DataFormatError, match=r"text\.npz: not a readable \.npz features file"):
        read_features(tmp_path / "text.npz")
    np.savez(tmp_path / "objects.npz", **{**_good(), "names": np.array(["a.jpg", "b.jpg", None], dtype=object)})
    with pytest.raises(DataFormatError, match=r"objects\.npz: an array cannot be read"):
        read_features(tmp_path / "objects.npz")


def test_a_zero_feature_with_norm_zero_and_the_skipped_crops_read_back(tmp_path: Path) -> None:
    data = _good()
    data["features"][1], data["norms"][1] = 0, 0
    write_features(tmp_path / "f.npz", data["names"], data["features"], data["norms"], skipped=["d.jpg"])
    loaded = read_features(tmp_path / "f.npz")
    assert loaded.skipped.tolist() == ["d.jpg"] and loaded.path == tmp_path / "f.npz"
    np.savez(tmp_path / "old.npz", **_good())  # written before 'skipped' existed: nothing skipped
    assert read_features(tmp_path / "old.npz").skipped.tolist() == []
