"""The ``dmlfaces`` command line: one sub-command per pipeline stage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dmlfaces.data.synth import PRESETS


def _synth(args: argparse.Namespace) -> None:
    from dmlfaces.data.synth import synthesize

    counts = synthesize(args.out, preset=args.preset, seed=args.seed, workers=args.workers)
    print(json.dumps({"out": str(args.out), **counts}, sort_keys=True))


def _data_report(args: argparse.Namespace) -> None:
    from dmlfaces.data.summary import dataset_summary
    from dmlfaces.eval.pixel_baseline import pixel_baseline_verification
    from dmlfaces.io import write_json

    report = {
        "counts": dataset_summary(args.data),
        "pixel_baseline": pixel_baseline_verification(
            args.data / "IJBS", args.data / "train", pca_dim=args.pca_dim, pixel_size=args.pixel_size
        ),
    }
    if args.out:
        write_json(args.out, report)
    print(json.dumps(report, indent=2, sort_keys=True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmlfaces", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write the SynthFaces data set in the IJB, CelebA and image-folder layouts")
    synth.add_argument("--out", type=Path, required=True, help="output directory (created; an earlier SynthFaces output is replaced)")
    synth.add_argument("--preset", choices=sorted(PRESETS), default="default", help="data set size")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same preset and seed give identical files")
    synth.add_argument("--workers", type=int, default=None, help="render processes (default: all cores; output does not depend on it)")
    synth.set_defaults(run=_synth)

    report = commands.add_parser("data-report", help="counts of a data set read back through the readers, and the pixel baseline's TAR@FAR")
    report.add_argument("--data", type=Path, required=True, help="directory holding IJBS/, celeba/ and train/")
    report.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    report.add_argument("--pca-dim", type=int, default=128)
    report.add_argument("--pixel-size", type=int, default=32)
    report.set_defaults(run=_data_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
