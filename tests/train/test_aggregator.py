"""Aggregator training for real on tiny SynthFaces: resume after SIGKILL, DDP, determinism, burst robustness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dmlfaces.data.ijb import read_ijb
from dmlfaces.features import extract_features
from dmlfaces.models.aggregators import build_aggregator
from dmlfaces.models.checkpoints import load_backbone
from dmlfaces.models.templates import describe_templates, group_crops
from dmlfaces.train.aggregator import AggregatorConfig, TemplateBatches, load_aggregator, load_config, train_aggregator

TINY = {"k": 3, "heads": 4, "epochs": 2, "batch_size": 4, "templates_per_identity": 2, "max_set_size": 6,
        "checkpoint_every": 2, "lr": 1e-3, "device": "cpu"}


@pytest.fixture(scope="module")
def views(tiny_data: Path, tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("views") / "views.npz"
    result = subprocess.run([sys.executable, "-m", "dmlfaces", "extract-views", "--backbone", str(tiny_backbone),
                             "--data", str(tiny_data / "train"), "--out", str(out), "--views", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _run(tmp_path: Path, views: Path, out: Path, *extra: str, launcher: list[str] | None = None,
         env: dict[str, str] | None = None, check: bool = True, **changes: object) -> subprocess.CompletedProcess[str]:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"aggregator": {**TINY, **changes}}))
    command = (launcher or [sys.executable, "-m", "dmlfaces"]) + [
        "train-aggregator", "--views", str(views), "--out", str(out), "--params", str(params), *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "aggregator.pt", weights_only=False)["state_dict"]


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(views, tmp_path):
    killed = _run(tmp_path, views, tmp_path / "run", env={"DMLFACES_FAULT_KILL_AT_STEP": "3"}, check=False)
    assert killed.returncode == -9 and not (tmp_path / "run" / "aggregator.pt").exists()
    _run(tmp_path, views, tmp_path / "run", "--resume")
    _run(tmp_path, views, tmp_path / "straight")
    resumed, straight = _weights(tmp_path / "run"), _weights(tmp_path / "straight")
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["gamma"] != TINY.get("gamma", 0.01)  # gamma learned


def test_two_gloo_processes_match_one_process(views, tmp_path):
    # Dropout masks and Gumbel noise come from each process's generator, so the comparison uses the
    # deterministic parts: K = 1 (the first pick is an argmax) and no dropout; the data split is what is tested.
    same = {"k": 1, "dropout": 0.0, "batch_size": 8, "epochs": 1}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dmlfaces"]
    _run(tmp_path, views, tmp_path / "ddp", launcher=torchrun, **same)
    _run(tmp_path, views, tmp_path / "single", **same)
    history = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert history["world_size"] == 2 and history["ranks_in_sync"] is True
    ddp, single = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    for key in single:
        assert torch.allclose(ddp[key], single[key], atol=1e-5, rtol=1e-4), key


def test_batches_have_one_set_size_and_clips_of_one_identity():
    config = AggregatorConfig(**TINY)
    features = np.random.default_rng(0).normal(size=(72, 2, 8)).astype(np.float32)
    labels = np.repeat(np.arange(12), 6)
    source = TemplateBatches(features, np.ones((72, 2), np.float32), labels, config)
    assert len(source) == 24
    x, norms, mask, batch_labels = source.batch(np.array([3, 15, 4, 0]), epoch=1)
    assert x.shape[:2] == norms.shape == mask.shape and 1 <= x.shape[1] <= 6
    images, views = source.template(15, epoch=1, size=6)
    assert set(labels[images]) == {15 % 12}
    # Clips: consecutive copies of one seed image, at most max_clip long.
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, images, -1])))
    assert (runs <= config.max_clip).all() or len(set(images)) == 1


def test_training_is_deterministic_and_loads_back(views, tmp_path):
    config = AggregatorConfig(**{**TINY, "epochs": 1})
    train_aggregator(views, tmp_path / "a", config)
    train_aggregator(views, tmp_path / "b", config)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = load_aggregator(tmp_path / "a" / "aggregator.pt")
    out, norm = model(torch.nn.functional.normalize(torch.randn(2, 5, 64), dim=-1), torch.ones(2, 5), torch.ones(2, 5, dtype=torch.bool))
    assert out.shape == (2, 64) and not model.training


def test_bursts_move_the_coreset_descriptor_less_than_the_mean(tiny_data, tiny_backbone, views, tmp_path):
    train_aggregator(views, tmp_path / "agg", AggregatorConfig(**TINY))
    protocol = read_ijb(tiny_data / "IJBS")
    features, norms = extract_features(load_backbone(tiny_backbone), protocol.aligned_crop, protocol.num_crops, progress=False)
    templates, order, starts = group_crops(protocol.template_ids)
    # Burst: append 50 copies of one crop (the template's first) to every template.
    burst_crops = order[starts[:-1]]
    burst_ids = np.repeat(templates, 50)
    all_features = np.concatenate([features, np.repeat(features[burst_crops], 50, axis=0)])
    all_norms = np.concatenate([norms, np.repeat(norms[burst_crops], 50)])
    all_ids = np.concatenate([protocol.template_ids, burst_ids])
    moved = {}
    for name, model in {"coreset": load_aggregator(tmp_path / "agg" / "aggregator.pt"), "mean": build_aggregator("mean", 64)}.items():
        _, before, _ = describe_templates(model, features, norms, protocol.template_ids, device="cpu")
        _, after, _ = describe_templates(model, all_features, all_norms, all_ids, device="cpu")
        moved[name] = float(np.mean(1 - np.sum(before * after, axis=1)))
    assert moved["coreset"] < moved["mean"], moved


def test_config_is_validated(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"aggregator": {"method": "max"}}))
    with pytest.raises(ValueError, match="aggregator.method = 'max'; choose one of"):
        load_config(path)
    path.write_text(yaml.safe_dump({"aggregator": {"k": 0}}))
    with pytest.raises(ValueError, match="aggregator.k = 0"):
        load_config(path)
    path.write_text(yaml.safe_dump({"aggregator": {"gamma_lr": -1.0}}))
    with pytest.raises(ValueError, match="gamma_lr = -1.0"):
        load_config(path)
    path.write_text(yaml.safe_dump({"aggregator": {"K": 3}}))
    with pytest.raises(ValueError, match="unknown keys \\['K'\\]"):
        load_config(path)
    path.write_text(yaml.safe_dump({"aggregator": {"k": 3}, "aggregator_variants": {"k5": {"k": 5}, "bad": {"kk": 1}}}))
    assert load_config(path, "k5").k == 5 and load_config(path).k == 3
    with pytest.raises(ValueError, match="no variant 'k8'"):
        load_config(path, "k8")
    with pytest.raises(ValueError, match="unknown keys \\['kk'\\] in aggregator_variants.bad"):
        load_config(path, "bad")
