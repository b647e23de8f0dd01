"""Embedding training for real on tiny SynthFaces: DDP equals one process, a SIGKILLed run resumes exactly,
CPU runs are deterministic."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dmlfaces.data.images import load_rgb
from dmlfaces.data.transforms import to_input_tensor
from dmlfaces.models.checkpoints import load_backbone
from dmlfaces.train.embedding import EmbeddingConfig, FaceBatches, build_model, load_config

TINY = {
    "backbone": "small",
    "embedding_dim": 64,
    "loss": "adaface",
    "epochs": 2,
    "batch_size": 8,
    "lr": 0.05,
    "checkpoint_every": 3,
    "seed": 0,
    "cache_images": True,
    "loader_threads": 2,
    "device": "cpu",
}


def _params(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"embedding": {**TINY, **changes}}))
    return path


def _train(
    tmp_path: Path,
    data: Path,
    out: Path,
    *extra: str,
    launcher: list[str] | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    params: dict | None = None,
) -> subprocess.CompletedProcess[str]:
    command = (launcher or [sys.executable, "-m", "dmlfaces"]) + [
        "train-embedding",
        "--data",
        str(data / "train"),
        "--out",
        str(out),
        "--params",
        str(_params(tmp_path, **(params or {}))),
        *extra,
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def _serialised(state: dict) -> bytes:
    stream = io.BytesIO()
    torch.save(state, stream)
    return stream.getvalue()


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "backbone.pt", weights_only=False)["state_dict"]


def test_two_gloo_processes_match_one_process_of_the_same_global_batch(tiny_data: Path, tmp_path: Path) -> None:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dmlfaces"]
    same_batches = {"batch_size": 32, "lr": 0.01, "epochs": 1}  # 2 global batches of 32: 16 per rank
    _train(tmp_path, tiny_data, tmp_path / "ddp", launcher=torchrun, params=same_batches)
    _train(tmp_path, tiny_data, tmp_path / "single", params=same_batches)
    history = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert history["world_size"] == 2 and history["ranks_in_sync"] is True
    ddp, single = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    initial = build_model(EmbeddingConfig(**{**TINY, **same_batches}), 12).backbone.state_dict()
    assert ddp.keys() == single.keys()
    # Float32 reductions in another order flip a few PReLU inputs near zero, so the runs agree to
    # rounding, not bit for bit: far closer to each other than either is to the initial weights.
    for key in ddp:
        if key.endswith("num_batches_tracked"):
            assert torch.equal(ddp[key], single[key])
            continue
        moved = (single[key] - initial[key]).norm()
        if moved > 1e-4:  # parameters that did move: differences small next to how far training moved them
            assert (ddp[key] - single[key]).norm() < 0.05 * moved, key
        else:  # parameters that barely moved (some biases get ~zero gradient): equal to rounding
            assert torch.allclose(ddp[key], single[key], atol=1e-3, rtol=1e-3), key


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tiny_data: Path, tmp_path: Path) -> None:
    killed = _train(tmp_path, tiny_data, tmp_path / "run", env={"DMLFACES_FAULT_KILL_AT_STEP": "5"}, check=False)
    assert killed.returncode == -9
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert (checkpoint["epoch"], checkpoint["batch"], checkpoint["step"]) == (0, 3, 3)  # mid-epoch (9 batches per epoch)
    assert not (tmp_path / "run" / "backbone.pt").exists()
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["last.pt"]  # no half-written file
    _train(tmp_path, tiny_data, tmp_path / "run", "--resume")
    _train(tmp_path, tiny_data, tmp_path / "straight")
    resumed, straight = _weights(tmp_path / "run"), _weights(tmp_path / "straight")
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key
    a = json.loads((tmp_path / "run" / "history.json").read_text())
    b = json.loads((tmp_path / "straight" / "history.json").read_text())
    assert a["steps"] == b["steps"] and [e["loss"] for e in a["epochs"]] == [e["loss"] for e in b["epochs"]]


def test_resume_after_the_training_images_changed_starts_afresh(tiny_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "train", data / "train")
    _train(tmp_path, data, tmp_path / "run", params={"epochs": 1})
    finished = _weights(tmp_path / "run")
    again = _train(tmp_path, data, tmp_path / "run", "--resume", params={"epochs": 1})
    assert "starting afresh" not in again.stdout and all(
        torch.equal(finished[k], w) for k, w in _weights(tmp_path / "run").items()
    )
    image = next((data / "train").rglob("*.jpg"))
    Image.fromarray(np.asarray(Image.open(image))[::-1].copy()).save(image, quality=50)  # regenerated data
    changed = _train(tmp_path, data, tmp_path / "run", "--resume", params={"epochs": 1})
    assert "starting afresh" in changed.stdout
    assert not all(torch.equal(finished[k], w) for k, w in _weights(tmp_path / "run").items())


def test_cpu_training_is_deterministic_and_loads_back(tiny_data: Path, tmp_path: Path) -> None:
    from dmlfaces.train.embedding import train_embedding

    config = EmbeddingConfig(**{**TINY, "epochs": 1, "loss": "arcface"})
    train_embedding(tiny_data / "train", tmp_path / "a", config)
    train_embedding(tiny_data / "train", tmp_path / "b", config)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "backbone.pt").read_bytes() == (tmp_path / "b" / "backbone.pt").read_bytes()  # DVC: unchanged
    # The checkpoint differs only in the epochs' timings its history carries.
    last_a, last_b = (torch.load(tmp_path / run / "checkpoints" / "last.pt", weights_only=False) for run in "ab")
    for state in (last_a, last_b):
        state["history"]["epochs"] = [{**e, "images_per_s": 0, "seconds": 0} for e in state["history"]["epochs"]]
    assert _serialised(last_a) == _serialised(last_b)
    backbone = load_backbone(tmp_path / "a" / "backbone.pt")
    assert backbone(torch.zeros(2, 3, 112, 112)).shape == (2, 64)


def test_the_foreach_optimizer_gives_the_bits_of_the_per_tensor_loop(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dmlfaces.train.embedding import train_embedding

    config = EmbeddingConfig(**{**TINY, "epochs": 1})
    train_embedding(tiny_data / "train", tmp_path / "foreach", config)
    sgd = torch.optim.SGD
    monkeypatch.setattr(torch.optim, "SGD", lambda *args, **kwargs: sgd(*args, **{**kwargs, "foreach": False, "fused": False}))
    train_embedding(tiny_data / "train", tmp_path / "loop", config)
    a, b = _weights(tmp_path / "foreach"), _weights(tmp_path / "loop")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_batches_are_flipped_by_seed_epoch_and_index(tiny_data: Path) -> None:
    source = FaceBatches(tiny_data / "train", seed=0, cache=True)
    streamed = FaceBatches(tiny_data / "train", seed=0, cache=False, threads=2)
    indices = np.array([5, 0, 17])
    images, labels = source.batch(indices, epoch=1)
    again, _ = streamed.batch(indices, epoch=1)
    assert torch.equal(images, again) and labels.tolist() == source.labels[indices].tolist()
    assert images.shape == (3, 3, 112, 112) and -1.0 <= images.min() and images.max() <= 1.0
    # Image i of epoch e is mirrored left-right exactly when draw i of the (seed, e) generator is below 0.5.
    flips = np.random.default_rng([0, 104729, 1]).random(len(source)) < 0.5
    for row, i in enumerate(indices):
        pixels = load_rgb(source.paths[i])
        expected = to_input_tensor((pixels[:, ::-1] if flips[i] else pixels)[None].copy())[0]
        assert torch.equal(images[row], expected), i
    assert flips[indices].any() and not flips[indices].all()  # both cases met


def test_low_quality_augmentation_is_a_function_of_seed_epoch_and_index(tiny_data: Path) -> None:
    plain = FaceBatches(tiny_data / "train", seed=0, augment=0.0)
    augmented = FaceBatches(tiny_data / "train", seed=0, augment=1.0)
    indices = np.arange(8)
    first, _ = augmented.batch(indices, epoch=2)
    assert torch.equal(first, augmented.batch(indices, epoch=2)[0])  # resume and DDP see the same batch
    # The same image in another batch of the same epoch gets the same view; another epoch, another one.
    assert torch.equal(first[3], augmented.batch(np.array([3, 9]), epoch=2)[0][0])
    assert not torch.equal(first, augmented.batch(indices, epoch=3)[0])
    assert not torch.equal(first, plain.batch(indices, epoch=2)[0])
    with pytest.raises(ValueError, match=r"embedding.augment = 1.5; it must lie in \[0, 1\]"):
        EmbeddingConfig(augment=1.5)


def test_params_are_validated(tmp_path: Path) -> None:
    path = _params(tmp_path, loss="softmax")
    with pytest.raises(ValueError, match="embedding.loss = 'softmax'"):
        load_config(path)
    path.write_text(yaml.safe_dump({"embedding": {**TINY, "epoch": 3}}))
    with pytest.raises(ValueError, match="unknown keys \\['epoch'\\]"):
        load_config(path)


def test_backbone_and_sizes_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="embedding.backbone = 'r200'"):
        load_config(_params(tmp_path, backbone="r200"))
    with pytest.raises(ValueError, match="embedding.epochs = 0"):
        load_config(_params(tmp_path, epochs=0))
