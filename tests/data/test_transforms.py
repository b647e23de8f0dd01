"""Model input tensors and the training views of aligned faces."""

from __future__ import annotations

import numpy as np
import torch

from dmlfaces.data.transforms import augment_face, to_input_tensor


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
