"""Image tensors in the input convention of the public face models."""

from __future__ import annotations

import numpy as np
import torch


def to_input_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32 in [-1, 1]: (x / 255 - 0.5) / 0.5, as in
    arcface_torch and AdaFace (a BGR model flips the channels itself)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
