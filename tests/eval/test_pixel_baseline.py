"""The eigenfaces baseline runs on the IJB layout and gives TAR values in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmlfaces.eval.pixel_baseline import grey_pixels, pixel_baseline_verification


def test_grey_pixels_shape_and_range() -> None:
    image = np.full((112, 112, 3), 255, dtype=np.uint8)
    pixels = grey_pixels(image, 16)
    assert pixels.shape == (256,) and np.allclose(pixels, 1.0)


def test_pixel_baseline_on_tiny_synthfaces(tiny_data: Path) -> None:
    result = pixel_baseline_verification(tiny_data / "IJBS", tiny_data / "train", pca_dim=16, pixel_size=16)
    tars = result["tar_at_far"]
    assert set(tars) == {"0.0001", "0.001", "0.01", "0.1"}
    assert all(0.0 <= v <= 1.0 for v in tars.values())
    # TAR cannot fall as the allowed FAR grows.
    values = [tars[k] for k in ("0.0001", "0.001", "0.01", "0.1")]
    assert values == sorted(values)
    assert result["pca_dim"] == 16 and result["genuine_pairs"] > 0
