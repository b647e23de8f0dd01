"""The IResNet family of face backbones (112x112 RGB crops in, 512-d features out).

IResNet ("improved" ResNet, Deng et al., ArcFace, CVPR 2019) is the backbone of insightface's
arcface_torch and of AdaFace. Both public code bases build the same network with different module
names and one structural difference: the first unit of the first stage keeps 64 channels while halving
the resolution, and arcface_torch gives it a 1x1 strided convolution shortcut where AdaFace uses a
parameter-free strided max-pool. ``IResNet(pool_shortcut=...)`` builds either, so both checkpoint
layouts load into one class (see :mod:`dmlfaces.models.checkpoints`).

Names follow arcface_torch: ``conv1 bn1 prelu layer1..4 bn2 dropout fc features``.
"""

from __future__ import annotations

import torch
from torch import nn

# Units per stage of the public depths (arcface_torch iresnet.py / AdaFace net.py get_blocks).
DEPTHS: dict[str, tuple[int, ...]] = {
    "r18": (2, 2, 2, 2),
    "r34": (3, 4, 6, 3),
    "r50": (3, 4, 14, 3),
    "r100": (3, 13, 30, 3),
}
WIDTHS = (64, 128, 256, 512)


class IBasicBlock(nn.Module):
    """BN-conv-BN-PReLU-conv-BN residual unit; the second convolution carries the stride.

    (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, pool_shortcut: bool) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=1e-5)
        self.prelu = nn.PReLU(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels, eps=1e-5)
        self.downsample: nn.Module | None = None
        if in_channels != out_channels or (stride != 1 and not pool_shortcut):
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels, eps=1e-5)
            )
        elif stride != 1:
            self.downsample = nn.MaxPool2d(1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IResNet: (B, 3, 112, 112) normalised RGB -> (B, embedding_dim) features (not unit-normalised).

    Args:
        layers: units per stage; every stage halves the resolution.
        widths: channels per stage.
        pool_shortcut: AdaFace's max-pool shortcut for a strided unit that keeps its channel count.
        stem_stride: stride of the first convolution (2 in the small CPU model, which then works at 56x56).
        affine_features: whether the final BatchNorm1d has a learnable bias (arcface_torch) or none (AdaFace).
        channels_bgr: the checkpoint expects BGR input (AdaFace); inputs are always given as RGB and flipped here.
    """

    def __init__(
        self,
        layers: tuple[int, ...],
        widths: tuple[int, ...] = WIDTHS,
        embedding_dim: int = 512,
        *,
        pool_shortcut: bool = False,
        stem_stride: int = 1,
        dropout: float = 0.0,
        affine_features: bool = True,
        channels_bgr: bool = False,
        input_size: int = 112,
    ) -> None:
        super().__init__()
        self.channels_bgr = channels_bgr
        self.conv1 = nn.Conv2d(3, widths[0], 3, stem_stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        in_channels = widths[0]
        for index, (units, width) in enumerate(zip(layers, widths), start=1):
            blocks = [IBasicBlock(in_channels, width, 2, pool_shortcut)]
            blocks += [IBasicBlock(width, width, 1, pool_shortcut) for _ in range(units - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            in_channels = width
        self.num_stages = len(layers)
        spatial = input_size // stem_stride // 2 ** len(layers)
        self.bn2 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(in_channels * spatial * spatial, embedding_dim)
        self.features = nn.BatchNorm1d(embedding_dim, eps=1e-5, affine=affine_features)
        if affine_features:
            # arcface_torch fixes the scale at 1 and learns only the shift.
            nn.init.constant_(self.features.weight, 1.0)
            self.features.weight.requires_grad = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [-1, 1] -> (B, D) raw features; their norm is the quality signal."""
        if self.channels_bgr:
            images = images.flip(1)
        x = self.prelu(self.bn1(self.conv1(images)))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


def build_backbone(name: str, embedding_dim: int = 512, **kwargs: object) -> IResNet:
    """An IResNet by name: ``r18``, ``r34``, ``r50``, ``r100`` or ``small``.

    ``small`` is the default CPU model of the study: a strided stem and three narrow stages, sized so that
    the default SynthFaces training runs in minutes on two CPU cores.
    """
    if name == "small":
        return IResNet((1, 2, 1), (16, 32, 64), embedding_dim, stem_stride=2, **kwargs)
    if name not in DEPTHS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(DEPTHS) + ['small']}")
    return IResNet(DEPTHS[name], WIDTHS, embedding_dim, **kwargs)
