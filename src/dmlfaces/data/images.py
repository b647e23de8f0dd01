"""Image loading with errors that name the file."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from dmlfaces.data.errors import DataFormatError


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB.

    Returns:
        (H, W, 3) uint8 array.
    Raises:
        DataFormatError: the file is missing or cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DataFormatError(
            path, "image file is missing", fix="restore the file or remove its rows from the protocol"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(
            path, f"image cannot be decoded ({exc})", fix="replace the file with a valid JPEG or PNG"
        ) from None
