"""The speed cost of pinned CPU numerics (``dmlfaces.numerics``): bench_training.py run pinned and native.

Each mode runs in fresh processes (the pin has to precede torch's import), the two modes alternating so that
both see the same load on a shared host, ``--repeats`` times; the fastest run of each mode is kept. Native
runs get the host's defaults: the variables the pin sets are removed from their environment.
Last line: JSON with both modes' images/s and the pinned / native ratios (below 1: pinning is slower).

    python benchmarks/bench_numerics.py [--repeats 2] [-- bench_training.py arguments, e.g. --steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from dmlfaces.numerics import MODE_VARIABLE, PINNED

TRAINING = Path(__file__).with_name("bench_training.py")
# What the dmlfaces command line does first, then the benchmark as its own script.
LAUNCH = (
    "import runpy, sys; from dmlfaces.numerics import pin_numerics; mode = pin_numerics(); "
    "assert mode == sys.argv[1], mode; sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run(mode: str, arguments: list[str]) -> dict[str, float | str]:
    """bench_training.py's result in a fresh process under ``mode``."""
    environment = {key: value for key, value in os.environ.items() if key not in PINNED}
    environment[MODE_VARIABLE] = mode
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, mode, str(TRAINING), *arguments], env=environment, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"bench_training.py ({mode}) failed with status {result.returncode}:\n{result.stderr[-3000:]}")
    print(f"{mode}: {result.stdout.strip().splitlines()[-2]}", flush=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode (the fastest counts)")
    parser.add_argument("training", nargs=argparse.REMAINDER, help="arguments for bench_training.py, after --")
    args = parser.parse_args()
    arguments = [a for a in args.training if a != "--"]
    best: dict[str, dict[str, float]] = {"native": {}, "pinned": {}}
    for _ in range(args.repeats):
        for mode in best:
            figures = run(mode, arguments)
            rates = [key for key in figures if key.endswith("images_per_s")]  # every throughput it measures
            best[mode] = {key: max(figures[key], best[mode].get(key, 0.0)) for key in rates}
    result = {f"{mode}_{key}": rate for mode in best for key, rate in best[mode].items()}
    result.update({f"pinned_over_native_{key}": round(best["pinned"][key] / best["native"][key], 3) for key in best["native"]})
    result["repeats"] = args.repeats
    print(json.dumps(result))


if __name__ == "__main__":
    main()
