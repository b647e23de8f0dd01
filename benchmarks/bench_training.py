"""Training and inference throughput of the embedding models, against plain-PyTorch references.

* ``train_images_per_s``: our training loop (``dmlfaces.train.loop.train_loop``: checkpointing, DDP-ready
  wrapper, AMP on CUDA) on the default small backbone with the AdaFace loss; reference: a bare
  forward/backward/step loop on the same model and batches. ``train_loop_overhead`` = reference / ours time.
* ``ir50_forward_images_per_s``: IResNet-50 inference at 112x112; reference: torchvision's ResNet-50 on the
  same batch (a well-known network of similar cost). On CUDA both run with bf16/fp16 autocast and
  channels_last, and ``*_gpu`` keys are added.
Last line: JSON.

    python benchmarks/bench_training.py [--steps 30] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from dmlfaces.models.backbones import build_backbone
from dmlfaces.train.distributed import DistributedContext
from dmlfaces.train.embedding import EmbeddingConfig, build_model
from dmlfaces.train.loop import LoopConfig, train_loop


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

    model = build_model(config, classes).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    amp = torch.bfloat16 if device.type == "cuda" else None
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    _sync(device)
    start = time.perf_counter()
    for b in range(steps):
        images = source.images[b * batch_size:(b + 1) * batch_size].to(device)
        labels = source.labels[b * batch_size:(b + 1) * batch_size].to(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = model(images, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _sync(device)
    reference = steps * batch_size / (time.perf_counter() - start)
    return ours, reference


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
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    result: dict[str, float | str] = {}
    for device in devices:
        suffix = "" if device.type == "cpu" else "_gpu"
        scale = 1 if device.type == "cpu" else 8
        ours, reference = time_training(device, args.steps, args.batch_size)
        ir50 = time_forward(build_backbone("r50"), device, args.forward_batch * scale, args.forward_repeats * scale)
        resnet50 = time_forward(torchvision.models.resnet50(), device, args.forward_batch * scale, args.forward_repeats * scale)
        result.update({
            f"train_images_per_s{suffix}": round(ours, 1),
            f"reference_train_images_per_s{suffix}": round(reference, 1),
            f"train_loop_overhead{suffix}": round(reference / ours, 3),
            f"ir50_forward_images_per_s{suffix}": round(ir50, 1),
            f"torchvision_resnet50_forward_images_per_s{suffix}": round(resnet50, 1),
            f"ir50_over_resnet50_time_ratio{suffix}": round(resnet50 / ir50, 3),
        })
        print(f"{device}: train {ours:.0f} img/s (bare loop {reference:.0f}); IR-50 forward {ir50:.1f} img/s "
              f"(torchvision ResNet-50 {resnet50:.1f})", flush=True)
    result["torch"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
