"""Image tensors in the input convention of the public face models, and the training augmentations: ours and
FaceCoresetNet's official ones (its per-image augmentation and the RandAugment of each copy of a clip)."""

from __future__ import annotations

import math

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
    """One training view of a (112, 112, 3) uint8 aligned face: each of a random crop (80-100 % of the side,
    resized back), low resolution (20-60 %, bilinear) and a colour change (0.6-1.4) applied with probability
    ``p``. Ours: milder than FaceCoresetNet's :func:`official_image_augmentation`, and with no per-copy
    augmentation (the differences are listed in ``dmlfaces.models.coreset_changes``)."""
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


# cv2's INTER_NEAREST, LINEAR, AREA, CUBIC and LANCZOS4, the official low-resolution choices, as PIL filters.
_LOW_RESOLUTION_FILTERS = ("NEAREST", "BILINEAR", "BOX", "BICUBIC", "LANCZOS")


def _resized_crop_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(top, left, height, width) drawn as ``RandomResizedCrop.get_params`` does, from ``rng``."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return 0, 0, height, width  # the fallback of get_params for a square image: the whole image


def official_image_augmentation(image: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """FaceCoresetNet's per-image augmentation (``data_template.CustomImageFolderDataset.augment`` with train.sh's
    probabilities), on a (H, W, 3) uint8 face: each step with probability ``p``, in this order:

    * a ``RandomResizedCrop`` box (area 20-100 %, aspect 3/4-4/3) kept in place on a black image;
    * low resolution: the side scaled by U(0.2, 1) and back, each resize with a filter drawn from five
      (cv2's nearest, linear, area, cubic, Lanczos there; the PIL equivalents here);
    * ``ColorJitter(0.5, 0.5, 0.5, 0)``: brightness, contrast and saturation factors U(0.5, 1.5), in random order.
    """
    from PIL import Image
    from torchvision.transforms import functional as TF

    height, width = image.shape[:2]
    view = image
    if rng.random() < p:
        top, left, h, w = _resized_crop_box(rng, height, width)
        view = np.zeros_like(image)
        view[top : top + h, left : left + w] = image[top : top + h, left : left + w]
    picture = Image.fromarray(view)
    if rng.random() < p:
        side = int(rng.uniform(0.2, 1.0) * height)
        down, up = (getattr(Image.Resampling, _LOW_RESOLUTION_FILTERS[i]) for i in rng.integers(0, 5, 2))
        picture = picture.resize((side, side), down).resize((width, height), up)
    if rng.random() < p:
        factors = rng.uniform(0.5, 1.5, 3)
        adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, None)
        for op in rng.permutation(4):  # ColorJitter orders all four; hue (3) is off
            if adjust[op] is not None:
                picture = adjust[op](picture, float(factors[op]))
    return np.asarray(picture)


def official_copy_augmentation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FaceCoresetNet's augmentation of each copy of a clip (``data_template.create_clip``): torchvision's
    ``RandAugment()`` (2 ops, magnitude 9 of 31, nearest interpolation, black fill), then a horizontal flip with
    probability 0.5. The ops and magnitudes are torchvision's own (its op table and op function); only the draws
    come from ``rng``, so views are reproducible and independent of torch's global generator and of threads."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode, RandAugment, autoaugment

    picture = Image.fromarray(image)
    policy = RandAugment()
    space = policy._augmentation_space(policy.num_magnitude_bins, (image.shape[0], image.shape[1]))
    names = list(space)
    for _ in range(policy.num_ops):
        name = names[int(rng.integers(len(names)))]
        magnitudes, signed = space[name]
        magnitude = float(magnitudes[policy.magnitude]) if magnitudes.ndim > 0 else 0.0
        if signed and rng.integers(2):
            magnitude = -magnitude
        picture = autoaugment._apply_op(picture, name, magnitude, interpolation=InterpolationMode.NEAREST, fill=None)
    if rng.random() < 0.5:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(picture)
