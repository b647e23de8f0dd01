"""Shared fixtures: one tiny SynthFaces data set per test session (the real generator, shrunk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmlfaces.data.synth import synthesize

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SynthFaces ``tiny`` data set (seed 0), generated once; tests must not modify it."""
    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(out, preset="tiny", seed=0, workers=2)
    return out
