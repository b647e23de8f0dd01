"""Throughput of the SynthFaces generator against the floor of merely writing the same JPEG files.

Ours: ``synthesize`` for a preset (rendering, degradations, JPEG encoding, all layout files).
Reference, in the same run: for every image the generator wrote (each row of ``ground_truth.csv``), encode a
fixed image of that file's size (160x160 IJB loose crops, 112x112 aligned and CelebA crops) at that file's
JPEG quality and write it, with the same number of processes: what any generator writing these files must
spend. The fixed image is uniform noise, which encodes about as fast as the rendered faces do.
Last line: JSON with ``images_per_s``, ``reference_images_per_s`` and ``time_ratio`` (ours / reference), and
``cpu_time_ratio``, the same ratio of CPU seconds (this process and its workers): on a host shared with other
work the wall times of the two phases see different loads, their CPU times far less so.

    python benchmarks/bench_synth.py [--preset default] [--workers N]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from dmlfaces.data.faces import encode_jpeg
from dmlfaces.data.images import image_size
from dmlfaces.data.synth import synthesize


@functools.cache
def _pixels(width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 fixed noise image."""
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (the pools' workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _write_one(task: tuple[Path, tuple[int, int], int]) -> None:
    path, size, quality = task
    path.write_bytes(encode_jpeg(_pixels(*size), quality))


def _floor_tasks(data: Path, floor_dir: Path) -> list[tuple[Path, tuple[int, int], int]]:
    """(file to write, (width, height), JPEG quality) of each image in the generated data set."""
    with open(data / "ground_truth.csv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return [
        (floor_dir / f"{i}.jpg", image_size(data / row["path"]), int(row["image_jpeg_quality"])) for i, row in enumerate(rows)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        synthesize(Path(tmp) / "data", preset=args.preset, seed=0, workers=args.workers)
        ours, ours_cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start

        floor_dir = Path(tmp) / "floor"
        floor_dir.mkdir()
        tasks = _floor_tasks(Path(tmp) / "data", floor_dir)
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            pool.map(_write_one, tasks, chunksize=256)
        reference, reference_cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    images = len(tasks)
    result = {
        "preset": args.preset,
        "workers": args.workers,
        "images": images,
        "seconds": round(ours, 2),
        "images_per_s": round(images / ours, 1),
        "reference_seconds": round(reference, 2),
        "reference_images_per_s": round(images / reference, 1),
        "time_ratio": round(ours / reference, 2),
        "cpu_seconds": round(ours_cpu, 2),
        "reference_cpu_seconds": round(reference_cpu, 2),
        "cpu_time_ratio": round(ours_cpu / reference_cpu, 2),
    }
    print(f"SynthFaces {args.preset}: {images} images in {ours:.1f} s; writing the same JPEG files alone: {reference:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
