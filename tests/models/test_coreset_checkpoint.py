"""The official FaceCoresetNet checkpoint: key map, ignored modules, errors, and the official forward reproduced."""

import math

import pytest
import torch
import torch.nn.functional as F

from dmlfaces.models.checkpoints import CheckpointKeyError
from dmlfaces.models.coreset_checkpoint import load_official_coreset

D, HEADS, K = 64, 8, 3


def _write(path, state, coreset_size=K):
    torch.save({"state_dict": state, "hyper_parameters": {"coreset_size": coreset_size}}, path)
    return path


def _official_forward(state: dict[str, torch.Tensor], unit: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """The official evaluation forward of ONE template from the raw tensors, written from net_template.py:
    argmax picks (first the highest norm, then the largest n_j^gamma (1 - cos) / 2), the interleaved 2 pi norm
    encoding, nn.MultiheadAttention self- then cross-attention, mean of C + LN2(C + CA), unit length."""
    prefix, layer = "aggregate_model.", "aggregate_model.decoder_layer1."
    x = unit * norms[:, None]
    picked = [int(norms.argmax())]
    while len(picked) < min(K, len(norms)):
        distance = torch.stack(
            [norms ** state[prefix + "gamma"] * (1 - F.cosine_similarity(x, x[c][None], dim=1)) / 2 for c in picked]
        ).amin(0)
        picked.append(int(distance.argmax()))
    core = x[picked]

    def encode(values: torch.Tensor) -> torch.Tensor:
        dim_t = 10000 ** (2 * (torch.arange(D) // 2) / D)
        position = values[:, None] * 2 * math.pi / dim_t
        encoded = torch.stack([position[:, 0::2].sin(), position[:, 1::2].cos()], dim=2).flatten(1)
        return F.layer_norm(encoded, (D,), state[prefix + "pos_trans_norm.weight"], state[prefix + "pos_trans_norm.bias"])

    def attention(name: str) -> torch.nn.MultiheadAttention:
        module = torch.nn.MultiheadAttention(D, HEADS, batch_first=True)
        module.load_state_dict({key: state[f"{layer}{name}.{key}"] for key in module.state_dict()})
        return module.eval()

    def norm(name: str, value: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(value, (D,), state[f"{layer}{name}.weight"], state[f"{layer}{name}.bias"])

    q0 = (core + encode(core.norm(dim=1)))[None]
    q1 = norm("norm1", q0 + attention("self_attn1")(q0, q0, q0)[0])
    keys = (x + encode(norms))[None]
    out = norm("norm2", core[None] + attention("multihead_attn1")(q1, keys, x[None])[0])
    aggregate = (core[None] + out).mean(1)[0]
    return aggregate / aggregate.norm()


def test_official_checkpoint_gives_the_official_forward(tmp_path, official_coreset_state):
    state = official_coreset_state(D)
    model, ignored = load_official_coreset(_write(tmp_path / "FaceCoresetNet.ckpt", state))
    assert model.k == K and not model.training and not model.flip_test  # evaluated on single passes, as published
    assert "aggregate_model.ur_center" in ignored and "aggregate_model.decoder_layer1.multihead_attn3.in_proj_weight" in ignored
    assert not any(key.startswith(("model.", "head.")) for key in ignored)
    g = torch.Generator().manual_seed(1)
    for size in (1, 2, 9, 40):
        unit = F.normalize(torch.randn(size, D, generator=g), dim=1)
        norms = torch.rand(size, generator=g) * 40 + 10
        with torch.no_grad():
            descriptor, _ = model(unit[None], norms[None], torch.ones(1, size, dtype=torch.bool))
            expected = _official_forward(state, unit, norms)
        torch.testing.assert_close(descriptor[0], expected, atol=2e-5, rtol=0)


def test_missing_and_unexpected_keys_are_named(tmp_path, official_coreset_state):
    state = official_coreset_state(D)
    del state["aggregate_model.decoder_layer1.norm2.bias"]
    state["aggregate_model.decoder_layer1.linear1.weight"] = torch.zeros(4, D)
    with pytest.raises(
        CheckpointKeyError,
        match=r"Missing keys: aggregate_model\.decoder_layer1\.norm2\.bias\. "
        r"Unexpected keys: aggregate_model\.decoder_layer1\.linear1\.weight",
    ):
        load_official_coreset(_write(tmp_path / "bad.ckpt", state))
    state = official_coreset_state(D)
    state["aggregate_model.decoder_layer1.self_attn1.in_proj_weight"] = torch.zeros(3 * D, D + 1)
    with pytest.raises(ValueError, match=r"in_proj_weight \(query rows\) \(64, 65\), expected \(64, 64\)"):
        load_official_coreset(_write(tmp_path / "shape.ckpt", state))
    (tmp_path / "text.ckpt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="text.ckpt: not a readable PyTorch checkpoint"):
        load_official_coreset(tmp_path / "text.ckpt")


def test_not_a_facecoresetnet_checkpoint_or_no_k_is_refused(tmp_path, official_coreset_state):
    torch.save({"state_dict": {"model.input_layer.0.weight": torch.zeros(1)}}, tmp_path / "adaface.ckpt")
    with pytest.raises(ValueError, match="not a FaceCoresetNet checkpoint"):
        load_official_coreset(tmp_path / "adaface.ckpt")
    torch.save({"state_dict": official_coreset_state(D)}, tmp_path / "no_k.ckpt")
    with pytest.raises(ValueError, match="coreset_size"):
        load_official_coreset(tmp_path / "no_k.ckpt")
    model, _ = load_official_coreset(tmp_path / "no_k.ckpt", k=2)
    assert model.k == 2
