"""Two runs' metrics files compared: which values differ, by how much, and whether a verdict of the book changes.

``make check-reproduction`` (``tools/compare_metrics.py``) checks a fresh run against the committed metrics;
the reproducibility chapter compares the committed run with a run on another host kept in
``results/reproductions/<host>/`` (its metrics files and the stage timings that name its CPU).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

TOLERANCE = 1e-6  # relative (absolute below 1): what `make check-reproduction` calls equal


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


def _numbers(value: object, key: str = "") -> Iterator[tuple[str, float]]:
    """(key path, number) of every number in a JSON value."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _numbers(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{key}[{index}]")
    elif _number(value):
        yield key, float(value)


def run_comparison(metrics_dir: str | Path, reference_dir: str | Path) -> pd.DataFrame:
    """One row per metrics file of both runs: byte-identical or not, the numbers both hold, how many differ beyond
    ``TOLERANCE``, and the largest absolute difference (keys only one run holds, e.g. a variant added since, are
    left out)."""
    rows = {}
    for path in sorted(Path(reference_dir).glob("*.json")):
        ours_path = Path(metrics_dir) / path.name
        if not ours_path.is_file():
            continue
        ours, theirs = dict(_numbers(json.loads(ours_path.read_text()))), dict(_numbers(json.loads(path.read_text())))
        common = sorted(set(ours) & set(theirs))
        gaps = [abs(ours[key] - theirs[key]) for key in common if not (math.isnan(ours[key]) and math.isnan(theirs[key]))]
        rows[path.stem] = {"byte-identical": ours_path.read_bytes() == path.read_bytes(), "numbers compared": len(common),
                           "differ": sum(not _close(ours[key], theirs[key], TOLERANCE) for key in common),
                           "largest difference": max(gaps, default=0.0)}
    return pd.DataFrame(rows).T.rename_axis("metrics file")


def _verdict(row: Mapping) -> str:
    return "beats" if row["ci_low"] > 0 else "loses to" if row["ci_high"] < 0 else "ties"


def tar_and_verdict_changes(verification: Mapping, reference: Mapping) -> dict[str, object]:
    """Between two ``verification.json``: the largest |TAR difference| (exact rule) over the methods and FARs both
    hold, and every paired comparison (method - baseline at a FAR) whose verdict differs."""
    gaps = [(abs(row["tar_exact"] - reference["methods"][method][far]["tar_exact"]), method, far)
            for method, rows in verification["methods"].items() if method in reference["methods"]
            for far, row in rows.items() if far in reference["methods"][method]]
    changed, compared = [], 0
    for pair, rows in verification.get("differences", {}).items():
        for far, row in rows.items():
            theirs = reference.get("differences", {}).get(pair, {}).get(far)
            if theirs is None:
                continue
            compared += 1
            if _verdict(row) != _verdict(theirs):
                changed.append(f"{pair} at FAR {far}: {_verdict(theirs)} there, {_verdict(row)} here")
    largest = max(gaps, default=(0.0, None, None))
    return {"largest_tar_difference": largest[0], "at": largest[1:], "verdicts_compared": compared, "verdicts_changed": changed}
