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


@pytest.fixture(scope="session")
def tiny_backbone(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``backbone.pt`` of a 64-d small embedding trained for one epoch on the tiny training split."""
    from dmlfaces.train.embedding import EmbeddingConfig, train_embedding

    out = tmp_path_factory.mktemp("embedding")
    config = EmbeddingConfig(embedding_dim=64, epochs=1, batch_size=8, lr=0.05, checkpoint_every=100, loader_threads=2, device="cpu")
    train_embedding(tiny_data / "train", out, config)
    return out / "backbone.pt"
