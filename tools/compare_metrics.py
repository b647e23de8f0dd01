"""Is a fresh run's results/metrics/*.json the committed one? Byte for byte, else within a stated tolerance.

Each metrics file is compared with its reference: the version committed at a git revision (``--reference
HEAD``, the default) or the same-named file of a directory. Files equal byte for byte pass; otherwise the
JSON values are compared key by key, numbers within ``--tolerance`` relative to their size (absolute below 1),
and every differing key is named with both values. Exit status: 0 when every file is identical or within the
tolerance, 1 when any differs beyond it or is missing on one side.

    python tools/compare_metrics.py [--metrics results/metrics] [--reference HEAD | DIR] [--tolerance 1e-6]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE_PATH = "results/metrics"  # where a git revision holds the committed metrics


def reference_files(reference: str) -> dict[str, bytes]:
    """File name -> bytes of every metrics file of ``reference``: a directory, or a git revision's TREE_PATH."""
    if Path(reference).is_dir():
        return {path.name: path.read_bytes() for path in sorted(Path(reference).glob("*.json"))}
    git = ["git", "-C", str(REPO)]
    listing = subprocess.run([*git, "ls-tree", "--name-only", f"{reference}:{TREE_PATH}"], capture_output=True, text=True)
    if listing.returncode != 0:
        raise SystemExit(f"compare_metrics: --reference {reference!r} is neither a directory nor a git revision holding "
                         f"{TREE_PATH}/ ({listing.stderr.strip()}); give a commit (HEAD, a tag) or a folder of metrics files")
    names = [name for name in listing.stdout.splitlines() if name.endswith(".json")]
    return {name: subprocess.run([*git, "show", f"{reference}:{TREE_PATH}/{name}"], capture_output=True, check=True).stdout
            for name in names}


def _close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def differences(ours: object, theirs: object, tolerance: float, key: str = "") -> Iterator[tuple[str, str]]:
    """(key path, what differs) of every value of ``ours`` that is not ``theirs`` (numbers: within ``tolerance``)."""
    where = key or "(the whole file)"
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for name in sorted(set(ours) | set(theirs), key=str):
            path = f"{key}.{name}" if key else str(name)
            if name not in theirs:
                yield path, "only in this run"
            elif name not in ours:
                yield path, "only in the reference"
            else:
                yield from differences(ours[name], theirs[name], tolerance, path)
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            yield where, f"{len(ours)} items, the reference {len(theirs)}"
        for index, (a, b) in enumerate(zip(ours, theirs)):
            yield from differences(a, b, tolerance, f"{key}[{index}]")
    elif _number(ours) and _number(theirs):
        if not _close(float(ours), float(theirs), tolerance):
            yield where, f"{ours!r}, the reference {theirs!r}"
    elif ours != theirs:
        yield where, f"{ours!r}, the reference {theirs!r}"


def compare(metrics: Path, reference: dict[str, bytes], tolerance: float) -> tuple[list[str], bool]:
    """One line per file (and one per differing key) and whether every file passed."""
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
                found = list(differences(json.loads(ours[name]), json.loads(reference[name]), tolerance))
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
    parser.add_argument("--tolerance", type=float, default=1e-6,
                        help="largest difference of two numbers, relative to their size (absolute below 1)")
    args = parser.parse_args(argv)
    if not args.metrics.is_dir():
        raise SystemExit(f"compare_metrics: {args.metrics} is not a directory; give the folder of this run's metrics "
                         "files (--metrics), after `make reproduce` results/metrics")
    lines, passed = compare(args.metrics, reference_files(args.reference), args.tolerance)
    print("\n".join(lines))
    verdict = "the same metrics" if passed else "DIFFERENT metrics"
    print(f"{args.metrics} against {args.reference} (tolerance {args.tolerance:g} relative): {verdict}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
