"""Counts read back through the readers agree with what the generator says it wrote."""

from __future__ import annotations

import json
from pathlib import Path

from dmlfaces.data.summary import dataset_summary
from dmlfaces.data.synth import MANIFEST


def test_summary_matches_manifest(tiny_data: Path) -> None:
    counts = json.loads((tiny_data / MANIFEST).read_text())["counts"]
    summary = dataset_summary(tiny_data)
    for key, value in summary.items():
        assert counts[key] == value, key
