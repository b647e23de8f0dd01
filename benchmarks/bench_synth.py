"""Throughput of the SynthFaces generator against the floor of merely writing the same JPEG files.

Ours: ``synthesize`` for a preset (rendering, degradations, JPEG encoding, all layout files).
Reference, in the same run: encode and write one fixed 112x112 image as many times as the preset has
images, with the same number of processes: what any generator writing these files must spend.
Last line: JSON with ``images_per_s``, ``reference_images_per_s`` and ``time_ratio`` (ours / reference).

    python benchmarks/bench_synth.py [--preset default] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from dmlfaces.data.faces import encode_jpeg
from dmlfaces.data.synth import synthesize

_PIXELS = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)


def _write_one(path: Path) -> None:
    path.write_bytes(encode_jpeg(_PIXELS, 75))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        counts = synthesize(Path(tmp) / "data", preset=args.preset, seed=0, workers=args.workers)
        ours = time.perf_counter() - start
        images = counts["train_images"] + counts["ijb_crops"] + counts["celeba_images"]

        floor_dir = Path(tmp) / "floor"
        floor_dir.mkdir()
        paths = [floor_dir / f"{i}.jpg" for i in range(images)]
        start = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            pool.map(_write_one, paths, chunksize=256)
        reference = time.perf_counter() - start
    result = {
        "preset": args.preset,
        "workers": args.workers,
        "images": images,
        "seconds": round(ours, 2),
        "images_per_s": round(images / ours, 1),
        "reference_seconds": round(reference, 2),
        "reference_images_per_s": round(images / reference, 1),
        "time_ratio": round(ours / reference, 2),
    }
    print(f"SynthFaces {args.preset}: {images} images in {ours:.1f} s; writing the same JPEG files alone: {reference:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
