"""Is a fresh run's results/metrics/*.json the committed one? Byte for byte, else within a stated tolerance.

Each metrics file is compared with its reference: the version committed at a git revision (``--reference
HEAD``, the default) or the same-named file of a directory. Files equal byte for byte pass; otherwise the
JSON values are compared key by key, numbers within ``--tolerance`` relative to their size (absolute below 1),
or with ``--cross-host`` (a run on another CPU model) within the tolerance of their kind
(``dmlfaces.reproduction.CROSS_HOST``), and every differing key is named with both values. Exit status: 0 when
every file is identical or within the tolerance, 1 when any differs beyond it or is missing on one side.

    python tools/compare_metrics.py [--metrics results/metrics] [--reference HEAD | DIR] [--tolerance 1e-6 | --cross-host]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from dmlfaces.reproduction import CROSS_HOST, TOLERANCE, cross_host_close, differences, relative_close

REPO = Path(__file__).resolve().parents[1]
TREE_PATH = "results/metrics"  # where a git revision holds the committed metrics


def reference_files(reference: str) -> dict[str, bytes]:
    """File name -> bytes of every metrics file of ``reference``: a directory, or a git revision's TREE_PATH."""
    if Path(reference).is_dir():
        return {path.name: path.read_bytes() for path in sorted(Path(reference).glob("*.json"))}
    git = ["git", "-C", str(REPO)]
    listing = subprocess.run([*git, "ls-tree", "--name-only", f"{reference}:{TREE_PATH}"], capture_output=True, text=True)
    if listing.returncode != 0:
        raise SystemExit(
            f"compare_metrics: --reference {reference!r} is neither a directory nor a git revision holding "
            f"{TREE_PATH}/ ({listing.stderr.strip()}); give a commit (HEAD, a tag) or a folder of metrics files"
        )
    names = [name for name in listing.stdout.splitlines() if name.endswith(".json")]
    return {
        name: subprocess.run([*git, "show", f"{reference}:{TREE_PATH}/{name}"], capture_output=True, check=True).stdout
        for name in names
    }


def compare(metrics: Path, reference: dict[str, bytes], tolerance: float | None) -> tuple[list[str], bool]:
    """One line per file (and one per differing key) and whether every file passed; ``tolerance`` None: the
    cross-host tolerances."""
    ours = {path.name: path.read_bytes() for path in sorted(metrics.glob("*.json"))}
    lines, passed = [], True
    for name in sorted(set(ours) | set(reference)):
        if name not in reference or name not in ours:
            lines.append(f"{name}: only in {'this run' if name in ours else 'the reference'}")
            passed = False
        elif ours[name] == reference[name]:
            lines.append(f"{name}: identical")
        else:
            try:
                close = cross_host_close(Path(name).stem) if tolerance is None else relative_close(tolerance)
                found = list(differences(json.loads(ours[name]), json.loads(reference[name]), close))
            except ValueError as error:
                lines.append(f"{name}: not JSON on one side ({error})")
                passed = False
                continue
            if found:
                lines.append(f"{name}: DIFFERS beyond the tolerance in {len(found)} values")
                lines += [f"  {key}: {what}" for key, what in found]
                passed = False
            else:
                lines.append(f"{name}: equal within the tolerance, not byte for byte")
    return lines, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=REPO / TREE_PATH, help="this run's metrics files")
    parser.add_argument("--reference", default="HEAD", help="a git revision (its committed metrics) or a directory")
    tolerance = parser.add_mutually_exclusive_group()
    tolerance.add_argument(
        "--tolerance",
        type=float,
        default=TOLERANCE,
        help="largest difference of two numbers, relative to their size (absolute below 1)",
    )
    tolerance.add_argument(
        "--cross-host", action="store_true", help="a run on another CPU model: each kind of number within its stated tolerance"
    )
    args = parser.parse_args(argv)
    if not args.metrics.is_dir():
        raise SystemExit(
            f"compare_metrics: {args.metrics} is not a directory; give the folder of this run's metrics "
            "files (--metrics), after `make reproduce` results/metrics"
        )
    lines, passed = compare(args.metrics, reference_files(args.reference), None if args.cross_host else args.tolerance)
    print("\n".join(lines))
    verdict = "the same metrics" if passed else "DIFFERENT metrics"
    stated = (
        f"the cross-host tolerances of {len(CROSS_HOST)} kinds (dmlfaces.reproduction.CROSS_HOST)"
        if args.cross_host
        else f"tolerance {args.tolerance:g} relative"
    )
    print(f"{args.metrics} against {args.reference} ({stated}): {verdict}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
