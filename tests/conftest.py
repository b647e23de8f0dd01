"""Shared fixtures: one tiny SynthFaces data set per test session (the real generator, shrunk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmlfaces.data.synth import synthesize

# The suite's tiers (make test-fast leaves both out). Registered here rather than in pyproject.toml, which the
# pipeline's reproducibility page depends on: a test setting is no reason to rerun it.
MARKERS = {
    "pipeline": "runs the real DVC pipeline on tiny data (minutes); left out by make test-fast",
    "browser": "drives headless Chromium; skipped where none is installed unless DMLFACES_REQUIRE_BROWSER=1 (CI)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {meaning}")


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
    config = EmbeddingConfig(
        embedding_dim=64, epochs=1, batch_size=8, lr=0.05, checkpoint_every=100, loader_threads=2, device="cpu"
    )
    train_embedding(tiny_data / "train", out, config)
    return out / "backbone.pt"


def _official_coreset_state(dim: int, seed: int = 0) -> dict:
    """Random weights under the official FaceCoresetNet key names and shapes (net_template.TemplateAggregateModel
    at 6e13498, as its Lightning module saves it), unused modules included, plus a few backbone and head keys
    the aggregator must not take."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.2

    state = {
        "model.input_layer.0.weight": rand(64, 3, 3, 3),
        "head.kernel": rand(dim, 10),
        "template_model.module.input_layer.0.weight": rand(64, 3, 3, 3),
    }
    layer = "aggregate_model.decoder_layer1."
    for attention in ("self_attn1", "self_attn2", "multihead_attn1", "multihead_attn2", "multihead_attn3"):
        state.update(
            {
                f"{layer}{attention}.in_proj_weight": rand(3 * dim, dim),
                f"{layer}{attention}.in_proj_bias": rand(3 * dim),
                f"{layer}{attention}.out_proj.weight": rand(dim, dim),
                f"{layer}{attention}.out_proj.bias": rand(dim),
            }
        )
    for norm in ("norm1", "norm2", "norm3", "norm4"):
        state.update({f"{layer}{norm}.weight": 1 + rand(dim), f"{layer}{norm}.bias": rand(dim)})
    state.update(
        {
            "aggregate_model.gamma": torch.tensor(0.8),
            "aggregate_model.tau": torch.tensor(0.0),
            "aggregate_model.feature_norm_normalizer": torch.tensor(-2.94),
            "aggregate_model.ur_center": rand(dim),
            "aggregate_model.dist_from_ur_center_norm_size_balance": torch.tensor(-1.39),
            "aggregate_model.quality_measure.weight": rand(1, dim),
            "aggregate_model.quality_measure.bias": rand(1),
            "aggregate_model.pos_trans_norm.weight": 1 + rand(dim),
            "aggregate_model.pos_trans_norm.bias": rand(dim),
        }
    )
    return state


@pytest.fixture
def official_coreset_state():
    """``state(dim, seed=0)``: an official-layout FaceCoresetNet state dict with random weights."""
    return _official_coreset_state
