"""IResNet shapes, depths and the input channel convention."""

from __future__ import annotations

import pytest
import torch

from dmlfaces.models.backbones import DEPTHS, IResNet, build_backbone


@pytest.mark.parametrize("name", ["small", "r18"])
def test_output_shape(name: str) -> None:
    model = build_backbone(name).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 112, 112)).shape == (2, 512)


@pytest.mark.parametrize("name, units", [("r18", 8), ("r34", 16), ("r50", 24), ("r100", 49)])
def test_public_depths_have_the_published_unit_counts(name: str, units: int) -> None:
    model = build_backbone(name)
    assert sum(len(getattr(model, f"layer{i}")) for i in range(1, 5)) == units == sum(DEPTHS[name])


def test_bgr_models_flip_the_channels_they_are_given() -> None:
    torch.manual_seed(0)
    rgb = IResNet((1, 1, 1, 1), (8, 8, 8, 8), 16).eval()
    bgr = IResNet((1, 1, 1, 1), (8, 8, 8, 8), 16, channels_bgr=True).eval()
    bgr.load_state_dict(rgb.state_dict())
    image = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(bgr(image), rgb(image.flip(1)), atol=1e-6)


def test_pool_shortcut_has_no_parameters_conv_shortcut_has() -> None:
    pooled = IResNet((1, 1, 1, 1), pool_shortcut=True).state_dict()
    convolved = IResNet((1, 1, 1, 1), pool_shortcut=False).state_dict()
    assert "layer1.0.downsample.0.weight" in convolved and "layer1.0.downsample.0.weight" not in pooled
    assert "layer2.0.downsample.0.weight" in pooled  # channels change: a 1x1 convolution either way


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="r100"):
        build_backbone("r200")
