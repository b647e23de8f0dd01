"""Aggregator training for real on tiny SynthFaces: resume after SIGKILL, DDP, determinism, burst robustness."""

from __future__ import annotations

import dataclasses
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
from dmlfaces.numerics import PINNED
from dmlfaces.train.aggregator import TemplateBatches, load_aggregator, train_aggregator
from dmlfaces.train.aggregator_config import AggregatorConfig, load_config

TINY = {
    "k": 3,
    "heads": 4,
    "epochs": 2,
    "batch_size": 4,
    "templates_per_identity": 2,
    "max_set_size": 6,
    "checkpoint_every": 2,
    "lr": 1e-3,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def views(tiny_data: Path, tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("views") / "views.npz"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmlfaces",
            "extract-views",
            "--backbone",
            str(tiny_backbone),
            "--data",
            str(tiny_data / "train"),
            "--clips",
            str(tiny_data / "train_clips"),
            "--out",
            str(out),
            "--views",
            "1",
        ],
        capture_output=True,
        text=True,
        # Host numerics, as before pinning: on pinned-numerics views the DDP-vs-single
        # comparison below misses its tolerance (open: issue 14's closing note).
        env={**os.environ, "DMLFACES_NUMERICS": "native"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_views_file_holds_every_clip_frame_with_its_identity(views, tiny_data):
    stored = np.load(views)
    frames = sorted((tiny_data / "train_clips").glob("*/*/*.jpg"))
    identities = sorted(p.name for p in (tiny_data / "train").iterdir())
    assert stored["clip_features"].shape == (len(frames), stored["features"].shape[-1])
    assert np.allclose(np.linalg.norm(stored["clip_features"], axis=1), 1, atol=1e-5) and (stored["clip_norms"] > 0).all()
    clip_names = [f"{f.parent.parent.name}/{f.parent.name}" for f in frames]
    assert stored["clip_ids"].tolist() == [sorted(set(clip_names)).index(c) for c in clip_names]
    assert [identities[label] for label in stored["clip_labels"]] == [c.split("/")[0] for c in sorted(set(clip_names))]


def test_clips_of_an_unknown_identity_are_refused(tiny_data, tiny_backbone, tmp_path):
    frame = next((tiny_data / "train_clips").glob("*/*/*.jpg"))
    (tmp_path / "clips" / "stranger" / "00").mkdir(parents=True)
    (tmp_path / "clips" / "stranger" / "00" / "000.jpg").write_bytes(frame.read_bytes())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmlfaces",
            "extract-views",
            "--backbone",
            str(tiny_backbone),
            "--data",
            str(tiny_data / "train"),
            "--clips",
            str(tmp_path / "clips"),
            "--out",
            str(tmp_path / "v.npz"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "stranger" in result.stderr and "no training images" in result.stderr
    assert not (tmp_path / "v.npz").exists()


def _run(
    tmp_path: Path,
    views: Path,
    out: Path,
    *extra: str,
    launcher: list[str] | None = None,
    env: dict[str, str | None] | None = None,
    check: bool = True,
    **changes: object,
) -> subprocess.CompletedProcess[str]:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"aggregator": {**TINY, **changes}}))
    command = (launcher or [sys.executable, "-m", "dmlfaces"]) + [
        "train-aggregator",
        "--views",
        str(views),
        "--out",
        str(out),
        "--params",
        str(params),
        *extra,
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}.items() if v is not None},
    )
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
    # Host numerics, one thread each (as _run asks): the pinned mode's 2 threads and MKL branch change how the
    # half batches' sums round, beyond this tolerance (an open question: issue 14's closing note).
    same = {"k": 1, "dropout": 0.0, "batch_size": 8, "epochs": 1}
    # Nor what a pin earlier in this test session left in os.environ (None: the variable is removed).
    native = {"DMLFACES_NUMERICS": "native", **{name: None for name in PINNED if name != "OMP_NUM_THREADS"}}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dmlfaces"]
    _run(tmp_path, views, tmp_path / "ddp", launcher=torchrun, env=native, **same)
    _run(tmp_path, views, tmp_path / "single", env=native, **same)
    history = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert history["world_size"] == 2 and history["ranks_in_sync"] is True
    ddp, single = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    for key in single:
        assert torch.allclose(ddp[key], single[key], atol=1e-5, rtol=1e-4), key


def _synthetic_views(clip_lengths: list[int]) -> dict[str, np.ndarray]:
    """72 images of 12 identities with 2 views each, and clips of identity c % 12 of the given lengths."""
    rng = np.random.default_rng(0)
    frames = sum(clip_lengths)
    return {
        "features": rng.normal(size=(72, 2, 8)).astype(np.float32),
        "norms": np.ones((72, 2), np.float32),
        "labels": np.repeat(np.arange(12), 6),
        "clip_features": rng.normal(size=(frames, 8)).astype(np.float32),
        "clip_norms": np.ones(frames, np.float32),
        "clip_ids": np.repeat(np.arange(len(clip_lengths)), clip_lengths),
        "clip_labels": np.arange(len(clip_lengths)) % 12,
    }


def test_batches_have_one_set_size_and_clips_of_one_identity():
    config = AggregatorConfig(**TINY, real_clip_rate=0.0)
    source = TemplateBatches(_synthetic_views([]), config)
    assert len(source) == 24
    x, norms, mask, batch_labels = source.batch(np.array([3, 15, 4, 0]), epoch=1)
    assert x.shape[:2] == norms.shape == mask.shape and 1 <= x.shape[1] <= 6
    assert batch_labels.tolist() == [3, 3, 4, 0]
    rows = source.template(15, epoch=1, size=6)
    assert set(source.pool_labels[rows]) == {15 % 12}
    # Clips: consecutive views of one seed image, at most max_clip long.
    images = rows // source.views_per_image
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, images, -1])))
    assert (runs <= config.max_clip).all() or len(set(images)) == 1


def test_templates_mix_runs_of_real_clip_frames():
    views = _synthetic_views([5, 7, 3] * 8)  # 24 clips: two per identity
    source = TemplateBatches(views, AggregatorConfig(**{**TINY, "real_clip_rate": 1.0, "max_set_size": 20}))
    rows = source.template(13, epoch=0, size=20)
    frames = rows - 72 * 2
    assert (frames >= 0).all() and set(source.pool_labels[rows]) == {13 % 12}
    # Each run is consecutive frames of one clip of this identity.
    clips = views["clip_ids"][frames]
    assert set(views["clip_labels"][clips]) == {1}
    breaks = np.flatnonzero((np.diff(frames) != 1) | (np.diff(clips) != 0))
    assert len(breaks) < len(frames) - 1  # runs longer than one frame occur
    mixed = TemplateBatches(views, AggregatorConfig(**TINY, real_clip_rate=0.5))
    both = np.concatenate([mixed.template(i, epoch=0, size=20) for i in range(24)])
    assert (both < 144).any() and (both >= 144).any()
    x, norms, _, _ = mixed.batch(np.arange(4), epoch=0)
    assert torch.equal(x, torch.from_numpy(mixed.pool_features[np.stack([mixed.template(i, 0, x.shape[1]) for i in range(4)])]))


def test_training_is_deterministic_and_loads_back(views, tmp_path):
    config = AggregatorConfig(**{**TINY, "epochs": 1})
    train_aggregator(views, tmp_path / "a", config)
    train_aggregator(views, tmp_path / "b", config)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = load_aggregator(tmp_path / "a" / "aggregator.pt")
    out, norm = model(
        torch.nn.functional.normalize(torch.randn(2, 5, 64), dim=-1), torch.ones(2, 5), torch.ones(2, 5, dtype=torch.bool)
    )
    assert out.shape == (2, 64) and not model.training and model.flip_test
    # flip_test is an evaluation setting: the same training, a model that says which IJB features it reads.
    train_aggregator(views, tmp_path / "c", dataclasses.replace(config, flip_test=False))
    c = _weights(tmp_path / "c")
    assert all(torch.equal(a[k], c[k]) for k in a) and not load_aggregator(tmp_path / "c" / "aggregator.pt").flip_test


def test_the_foreach_optimizer_gives_the_bits_of_the_per_tensor_loop(views, tmp_path, monkeypatch):
    config = AggregatorConfig(**{**TINY, "epochs": 1})
    train_aggregator(views, tmp_path / "foreach", config)
    adamw = torch.optim.AdamW
    monkeypatch.setattr(
        torch.optim, "AdamW", lambda *args, **kwargs: adamw(*args, **{**kwargs, "foreach": False, "fused": False})
    )
    train_aggregator(views, tmp_path / "loop", config)
    a, b = _weights(tmp_path / "foreach"), _weights(tmp_path / "loop")
    assert all(torch.equal(a[k], b[k]) for k in a)


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
    for name, model in {
        "coreset": load_aggregator(tmp_path / "agg" / "aggregator.pt"),
        "mean": build_aggregator("mean", 64),
    }.items():
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


def test_official_clip_views_never_repeat_a_copy_and_skip_the_plain_image():
    views = _synthetic_views([])
    views = {
        **views,
        "features": np.repeat(views["features"], 2, axis=1)[:, :4],
        "norms": np.repeat(views["norms"], 2, axis=1)[:, :4],
    }
    source = TemplateBatches(
        views, AggregatorConfig(**{**TINY, "max_set_size": 20, "real_clip_rate": 0.0}, clip_views="official")
    )
    for index in range(24):
        rows = source.template(index, epoch=0, size=20)
        image, view = np.divmod(rows, source.views_per_image)
        assert (view >= 1).all()  # every copy is an augmented view
        starts = np.flatnonzero(np.r_[True, image[1:] != image[:-1]])
        for run in np.split(view, starts[1:]):  # a clip: copies of one seed image (or two clips of one image)
            assert len(run) > 3 or len(set(run.tolist())) == len(run)
    with pytest.raises(ValueError, match="holds 1 per image; extract at least 3"):
        TemplateBatches(_synthetic_views([]), AggregatorConfig(**TINY, clip_views="official"))


def test_official_training_settings(views, tmp_path):
    """Random unit-column head, the learning rate x 0.1 after 2/15 of the steps, official views required."""
    with pytest.raises(ValueError, match="--official-views"):
        train_aggregator(views, tmp_path / "x", AggregatorConfig(**TINY, clip_views="official"))
    with pytest.raises(ValueError, match="holds views of the 'ours' augmentation, but aggregator clip_views is 'official'"):
        train_aggregator(views, tmp_path / "x", AggregatorConfig(**TINY, clip_views="official"), official_views_path=views)
    config = AggregatorConfig(**{**TINY, "epochs": 4, "templates_per_identity": 4}, head_init="random", lr_schedule="multistep")
    train_aggregator(views, tmp_path / "official", config)
    state = torch.load(tmp_path / "official" / "checkpoints" / "last.pt", weights_only=False)
    steps = 4 * (12 * 4 // 4)
    assert state["scheduler"]["milestones"] == {round(steps * 2 / 15): 1}
    assert state["scheduler"]["_last_lr"] == pytest.approx([0.1 * config.lr, 0.1 * config.gamma_lr])  # both groups dropped
