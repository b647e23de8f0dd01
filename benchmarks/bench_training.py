"""Training and inference throughput of the embedding models, against plain-PyTorch references.

* ``train_images_per_s``: our training loop (``dmlfaces.train.loop.train_loop``: checkpointing, DDP-ready
  wrapper, AMP on CUDA) on the default small backbone with the AdaFace loss; reference: a bare
  forward/backward/step loop on the same model and batches. ``train_loop_overhead`` = reference / ours time.
* ``pipeline_train_images_per_s``: the ``train_embedding`` stage's own path (``train_embedding``: the image
  folder decoded by ``FaceBatches``, flips, uint8 -> float, the loop with its scheduler and checkpoints) for
  one epoch under ``--params``' ``embedding`` section, as ``history.json`` logs it; on ``--data`` or on a
  folder of ``--steps`` batches of synthetic JPEGs built in a temporary directory. Reference
  (``pipeline_bare_images_per_s``): the bare loop on the same model and optimizer settings, on batches the
  stage's loader made beforehand (its channels-last view of the images, which on CPU may train at another
  speed than the NCHW batches of ``reference_train_images_per_s``). The two alternate ``--repeats`` times
  and the fastest of each counts (a shared host's load falls on both); ``pipeline_over_bare`` is their
  ratio (1: the stage trains at the bare loop's speed).
* ``ir50_forward_images_per_s``: IResNet-50 inference at 112x112; reference: torchvision's ResNet-50 on the
  same batch (a well-known network of similar cost). On CUDA both run with bf16/fp16 autocast and
  channels_last, and ``*_gpu`` keys are added.
Last line: JSON.

The stage runs with pinned CPU numerics (``dmlfaces.numerics``); ``bench_numerics.py`` runs this file both ways.

    python benchmarks/bench_training.py [--steps 30] [--batch-size 128] [--data data/train] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from dmlfaces.devices import DistributedContext
from dmlfaces.models.backbones import build_backbone
from dmlfaces.numerics import PINNED
from dmlfaces.train.embedding import EmbeddingConfig, FaceBatches, build_model, load_config, train_embedding
from dmlfaces.train.loop import LoopConfig, epoch_order, train_loop

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


class RandomFaces:
    """In-memory random batches: measures the model and loop, not JPEG decoding."""

    def __init__(self, size: int, classes: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand(size, 3, 112, 112, generator=generator) * 2 - 1
        self.labels = torch.randint(0, classes, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: np.ndarray, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(indices)
        return self.images[index], self.labels[index]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_training(device: torch.device, steps: int, batch_size: int) -> tuple[float, float]:
    """(ours, reference) images/s over ``steps`` steps after one warm-up epoch of 2 steps."""
    classes = 300
    source = RandomFaces(batch_size * steps, classes)
    config = EmbeddingConfig(backbone="small", seed=0)
    context = DistributedContext(0, 1, 0, device)
    with tempfile.TemporaryDirectory() as tmp:
        loop = LoopConfig(epochs=1, batch_size=batch_size, checkpoint_dir=Path(tmp), checkpoint_every=10**9)
        warm = build_model(config, classes)
        train_loop(warm, torch.optim.SGD(warm.parameters(), lr=0.1), None, RandomFaces(batch_size * 2, classes), loop, context)
        model = build_model(config, classes)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        _sync(device)
        start = time.perf_counter()
        train_loop(model, optimizer, None, source, loop, context)
        _sync(device)
        ours = steps * batch_size / (time.perf_counter() - start)

    batches = [
        (source.images[b * batch_size : (b + 1) * batch_size], source.labels[b * batch_size : (b + 1) * batch_size])
        for b in range(steps)
    ]
    reference = bare_images_per_s(dataclasses.replace(config, weight_decay=0.0), batches, classes, device, steps)
    return ours, reference


def synthetic_folder(root: Path, images: int, identities: int) -> Path:
    """``root/<identity>/<n>.jpg``: ``images`` smooth random 112x112 JPEGs over ``identities`` folders.

    Smooth (upsampled 14x14 noise) rather than white noise, so that they decode at the cost of real crops.
    """
    rng = np.random.default_rng(0)
    for n in range(images):
        folder = root / f"{n % identities:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        small = Image.fromarray(rng.integers(0, 256, (14, 14, 3), dtype=np.uint8))
        small.resize((112, 112), Image.Resampling.BICUBIC).save(folder / f"{n:06d}.jpg", quality=90)
    return root


def bare_images_per_s(
    config: EmbeddingConfig, batches: list[tuple[torch.Tensor, torch.Tensor]], classes: int, device: torch.device, steps: int
) -> float:
    """The bare forward/backward/step loop on ``config``'s model and SGD settings, cycling through ``batches``
    ((B, 3, 112, 112) images, (B,) labels) already in host memory."""
    model = build_model(config, classes).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    amp = torch.bfloat16 if device.type == "cuda" and config.amp else None
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    _sync(device)
    start = time.perf_counter()
    for step in range(steps):
        images, labels = (tensor.to(device) for tensor in batches[step % len(batches)])
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = model(images, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _sync(device)
    return steps * len(batches[0][1]) / (time.perf_counter() - start)


def time_pipeline(device: torch.device, config: EmbeddingConfig, data: Path, repeats: int) -> tuple[float, float]:
    """(stage path, bare loop) images/s, each the fastest of ``repeats`` runs, the two alternating.

    The stage path is ``train_embedding`` for one epoch of ``data``, as ``history.json`` logs it (the epoch's
    batches from ``FaceBatches`` and the loop's steps and checkpoints; not the decoding before them). The bare
    loop trains on 4 batches that ``FaceBatches`` made beforehand, so that both see the same tensors (in the
    same memory layout) and the ratio is the cost of loading and of the loop alone.
    """
    config = dataclasses.replace(config, epochs=1, device=str(device))
    source = FaceBatches(data, config.seed, cache=False, threads=config.loader_threads, augment=config.augment)
    order = epoch_order(config.seed, 0, len(source))
    batches = [source.batch(order[b * config.batch_size : (b + 1) * config.batch_size], 0) for b in range(4)]
    stage, bare = 0.0, 0.0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            history = train_embedding(data, out, config)
        stage = max(stage, history["epochs"][-1]["images_per_s"])
        bare = max(bare, bare_images_per_s(config, batches, source.num_classes, device, len(history["steps"])))
    return stage, bare


@torch.no_grad()
def time_forward(model: torch.nn.Module, device: torch.device, batch_size: int, repeats: int) -> float:
    model = model.to(device).eval()
    images = torch.rand(batch_size, 3, 112, 112, device=device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    if device.type == "cuda":
        model, images = model.to(memory_format=torch.channels_last), images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        model(images)
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model(images)
        _sync(device)
    return repeats * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--forward-batch", type=int, default=32)
    parser.add_argument("--forward-repeats", type=int, default=3)
    parser.add_argument(
        "--data",
        type=Path,
        help="an identity-per-folder training set for the stage path "
        "(default: --steps batches of synthetic JPEGs over 300 identities)",
    )
    parser.add_argument("--params", type=Path, default=PARAMS, help="parameters file (section 'embedding')")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of the stage path and its bare loop")
    args = parser.parse_args()
    config = load_config(args.params) if args.params.exists() else EmbeddingConfig()
    config = dataclasses.replace(config, batch_size=args.batch_size)
    scratch = tempfile.TemporaryDirectory()
    data = args.data or synthetic_folder(Path(scratch.name), args.steps * args.batch_size, 300)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    result: dict[str, float | str] = {}
    for device in devices:
        suffix = "" if device.type == "cpu" else "_gpu"
        scale = 1 if device.type == "cpu" else 8
        ours, reference = time_training(device, args.steps, args.batch_size)
        stage, bare = time_pipeline(device, config, data, args.repeats)
        ir50 = time_forward(build_backbone("r50"), device, args.forward_batch * scale, args.forward_repeats * scale)
        resnet50 = time_forward(torchvision.models.resnet50(), device, args.forward_batch * scale, args.forward_repeats * scale)
        result.update(
            {
                f"train_images_per_s{suffix}": round(ours, 1),
                f"reference_train_images_per_s{suffix}": round(reference, 1),
                f"train_loop_overhead{suffix}": round(reference / ours, 3),
                f"pipeline_train_images_per_s{suffix}": round(stage, 1),
                f"pipeline_bare_images_per_s{suffix}": round(bare, 1),
                f"pipeline_over_bare{suffix}": round(stage / bare, 3),
                f"ir50_forward_images_per_s{suffix}": round(ir50, 1),
                f"torchvision_resnet50_forward_images_per_s{suffix}": round(resnet50, 1),
                f"ir50_over_resnet50_time_ratio{suffix}": round(resnet50 / ir50, 3),
            }
        )
        print(
            f"{device}: stage path {stage:.0f} img/s, bare loop {bare:.0f} (ratio {stage / bare:.3f}); "
            f"train {ours:.0f} img/s (bare loop {reference:.0f}); IR-50 forward {ir50:.1f} img/s "
            f"(torchvision ResNet-50 {resnet50:.1f})",
            flush=True,
        )
    scratch.cleanup()
    result["numerics"] = "pinned" if all(os.environ.get(k) == v for k, v in PINNED.items()) else "native"
    result["torch"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
