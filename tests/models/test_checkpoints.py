"""An IResNet-50 with random weights, saved in each public key layout, loads back with identical outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dmlfaces.models.checkpoints import (
    CheckpointKeyError,
    adaface_backbone,
    arcface_torch_backbone,
    load_adaface,
    load_arcface_torch,
    load_backbone,
    save_adaface,
    save_arcface_torch,
)


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name else torch.randn_like(tensor) * 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_arcface_torch_r50_round_trip(tmp_path: Path, image: torch.Tensor) -> None:
    model = _randomise(arcface_torch_backbone("r50"))
    save_arcface_torch(model, tmp_path / "backbone.pth")
    keys = torch.load(tmp_path / "backbone.pth", weights_only=True).keys()
    assert {
        "conv1.weight",
        "bn1.running_mean",
        "prelu.weight",
        "layer1.0.downsample.0.weight",
        "layer3.13.conv2.weight",
        "bn2.weight",
        "fc.weight",
        "features.weight",
        "features.bias",
    } <= set(keys)
    for loaded in (load_arcface_torch(tmp_path / "backbone.pth"), load_backbone(tmp_path / "backbone.pth")):
        with torch.no_grad():
            assert torch.equal(loaded(image), model(image))
        assert loaded.channels_bgr is False


def test_adaface_r50_round_trip(tmp_path: Path, image: torch.Tensor) -> None:
    model = _randomise(adaface_backbone("r50"))
    save_adaface(model, "r50", tmp_path / "adaface_ir50.ckpt")
    checkpoint = torch.load(tmp_path / "adaface_ir50.ckpt", weights_only=False)
    keys = set(checkpoint["state_dict"])
    # AdaFace's net.py names: input_layer, body.<i>.res_layer.<j> / shortcut_layer.<j>, output_layer.
    assert {
        "model.input_layer.0.weight",
        "model.input_layer.1.running_var",
        "model.input_layer.2.weight",
        "model.body.0.res_layer.0.weight",
        "model.body.3.shortcut_layer.0.weight",
        "model.body.23.res_layer.5.bias",
        "model.output_layer.0.weight",
        "model.output_layer.3.weight",
        "model.output_layer.4.running_mean",
    } <= keys
    assert not any(k.startswith("model.body.0.shortcut_layer") for k in keys)  # max-pool shortcut: no weights
    # A Lightning checkpoint also carries the classifier head; it is not part of the backbone.
    checkpoint["state_dict"]["head.kernel"] = torch.zeros(512, 10)
    torch.save(checkpoint, tmp_path / "adaface_ir50.ckpt")
    for loaded in (load_adaface(tmp_path / "adaface_ir50.ckpt"), load_backbone(tmp_path / "adaface_ir50.ckpt")):
        with torch.no_grad():
            assert torch.equal(loaded(image), model(image))
        assert loaded.channels_bgr is True


def test_wrong_depth_names_missing_and_unexpected_keys(tmp_path: Path) -> None:
    save_arcface_torch(_randomise(arcface_torch_backbone("r18")), tmp_path / "r18.pth")
    with pytest.raises(CheckpointKeyError) as error:
        load_arcface_torch(tmp_path / "r18.pth", name="r34")
    assert "layer1.2.conv1.weight" in error.value.missing and "r18.pth" in str(error.value)
    state = torch.load(tmp_path / "r18.pth", weights_only=True)
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointKeyError, match="Missing keys: fc.bias. Unexpected keys: extra.weight"):
        load_arcface_torch(tmp_path / "broken.pth", name="r18")


def test_the_same_state_written_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    """Every checkpoint goes through write_checkpoint: torch.save given a path names its archive after the
    (random) temporary file; through a file object two identical runs write identical files."""
    from dmlfaces.models.backbones import build_backbone
    from dmlfaces.models.checkpoints import load_backbone, save_backbone, write_checkpoint

    class Settings:
        backbone, embedding_dim = "small", 16

    model = build_backbone("small", 16).eval()
    save_backbone(model, Settings(), tmp_path / "a" / "backbone.pt")
    save_backbone(model, Settings(), tmp_path / "b" / "backbone.pt")
    assert (tmp_path / "a" / "backbone.pt").read_bytes() == (tmp_path / "b" / "backbone.pt").read_bytes()
    reloaded = load_backbone(tmp_path / "a" / "backbone.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
    write_checkpoint({"x": torch.ones(3)}, tmp_path / "c.pt")
    write_checkpoint({"x": torch.ones(3)}, tmp_path / "d.pt")
    assert (tmp_path / "c.pt").read_bytes() == (tmp_path / "d.pt").read_bytes()
