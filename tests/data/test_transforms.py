"""Model input tensors and the training views of aligned faces."""

from __future__ import annotations

import numpy as np
import torch

from dmlfaces.data.transforms import (
    _resized_crop_box,
    augment_face,
    official_copy_augmentation,
    official_image_augmentation,
    to_input_tensor,
)


def test_input_tensor_has_the_bits_of_x_over_127_5_minus_1_for_every_level() -> None:
    # 3 x 7 x 37 x 3 values: every level many times, through vectorised runs and their odd-sized tails.
    images = np.resize(np.arange(256, dtype=np.uint8), (3, 7, 37, 3))
    arithmetic = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    tensor = to_input_tensor(images)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 3, 7, 37)
    assert torch.equal(tensor, arithmetic)
    assert tensor.stride() == arithmetic.stride()  # the same channels-last view: models compute the same bits
    assert tensor.min() == -1.0 and tensor.max() == 1.0


def test_augmentation_keeps_the_shape_and_is_a_function_of_the_generator() -> None:
    image = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    view = augment_face(image, np.random.default_rng(1), p=1.0)
    assert view.shape == image.shape and view.dtype == np.uint8 and not np.array_equal(view, image)
    assert np.array_equal(view, augment_face(image, np.random.default_rng(1), p=1.0))
    assert np.array_equal(augment_face(image, np.random.default_rng(1), p=0.0), image)


def test_official_image_augmentation_keeps_a_crop_in_place_on_black() -> None:
    """With every step forced, the crop box keeps its pixels where they were and the rest is black (before the
    low-resolution and colour steps); with none, the image comes back unchanged."""
    image = np.random.default_rng(0).integers(1, 256, (112, 112, 3), dtype=np.uint8)
    view = official_image_augmentation(image, np.random.default_rng(3), p=1.0)
    assert view.shape == image.shape and view.dtype == np.uint8
    assert np.array_equal(view, official_image_augmentation(image, np.random.default_rng(3), p=1.0))
    assert np.array_equal(official_image_augmentation(image, np.random.default_rng(3), p=0.0), image)
    cropped = np.random.default_rng(5)
    while True:  # a generator whose crop is drawn and low resolution and colour are not
        state = cropped.bit_generator.state
        coins = cropped.random(1)
        box = _resized_crop_box(cropped, 112, 112)
        if coins[0] < 0.5 and cropped.random() >= 0.5 and cropped.random() >= 0.5:
            break
    cropped.bit_generator.state = state
    only_crop = official_image_augmentation(image, cropped)
    top, left, h, w = box
    inside = np.zeros((112, 112), bool)
    inside[top : top + h, left : left + w] = True
    assert np.array_equal(only_crop[inside], image[inside]) and not only_crop[~inside].any()
    assert 0.2 * 112 * 112 <= h * w <= 112 * 112 and 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05


def test_official_copies_are_randaugment_views_drawn_from_the_generator() -> None:
    image = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    copies = [official_copy_augmentation(image, np.random.default_rng([7, v])) for v in range(8)]
    assert all(copy.shape == image.shape and copy.dtype == np.uint8 for copy in copies)
    assert np.array_equal(copies[0], official_copy_augmentation(image, np.random.default_rng([7, 0])))
    assert len({copy.tobytes() for copy in copies}) == len(copies)  # distinct copies, as the official clips
