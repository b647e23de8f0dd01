"""Image tensors in the input convention of the public face models."""

from __future__ import annotations

import numpy as np
import torch


# float32 x / 127.5 - 1 for every uint8 x, by the very operations the formula names (each correctly rounded),
# so a table look-up gives the same bits as the arithmetic in one pass over the batch instead of three.
_LEVELS = (torch.arange(256, dtype=torch.float32).div_(127.5).sub_(1.0)).numpy()


def to_input_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32 in [-1, 1]: (x / 255 - 0.5) / 0.5 = x / 127.5 - 1, as in
    arcface_torch and AdaFace (a BGR model flips the channels itself).

    The result is a channels-last view of (B, H, W, 3) memory; the models take it as it is.
    """
    return torch.from_numpy(np.take(_LEVELS, images)).permute(0, 3, 1, 2)


def augment_face(image: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """One training view of a (112, 112, 3) uint8 aligned face: each of a random crop, low resolution and
    a colour change applied with probability ``p`` (the per-image augmentation of FaceCoresetNet/CAFace)."""
    from PIL import Image, ImageEnhance

    size = image.shape[0]
    view = Image.fromarray(image)
    if rng.random() < p:  # crop 80-100 % of the side at a random place, resized back
        side = int(size * rng.uniform(0.8, 1.0))
        x, y = rng.integers(0, size - side + 1, 2)
        view = view.crop((int(x), int(y), int(x) + side, int(y) + side)).resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < p:  # low resolution: down to 20-60 % and back up
        small = max(8, int(size * rng.uniform(0.2, 0.6)))
        view = view.resize((small, small), Image.Resampling.BILINEAR).resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < p:
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            view = enhance(view).enhance(float(rng.uniform(0.6, 1.4)))
    return np.asarray(view)
