"""Image loading with errors that name the file: every decodable image becomes 8-bit RGB faithfully, or is refused.

What "faithfully" means per PIL mode:

* ``RGB``, ``L``, ``1``, ``P``, ``YCbCr``, ``CMYK``, ``RGBX``: PIL's conversion. ``CMYK`` becomes
  ``(255 - c) * (255 - k) / 255`` per channel, the colour-managed-free formula OpenCV's ``imread`` (and so
  the public IJB evaluators) also applies; embedded ICC profiles are ignored by both.
* 16-bit greyscale (``I;16*``, and ``I``, PIL's mode for 16-bit TIFF/PNG data): value / 257, rounded, so
  65535 is white. PIL's own conversion clips at 255, turning everything above 1/257 of full scale white.
  ``I`` values outside 0..65535 have no known range and are refused.
* Modes with alpha (``RGBA``, ``LA``, ``PA``, ``P`` or ``L``/``RGB`` with a transparent colour): accepted
  when every pixel is opaque (the alpha is then dropped exactly); a partly transparent image is refused,
  because what it shows depends on the background put under it, and the colour hidden under transparent
  pixels is arbitrary.
* Anything else (``F``, ``LAB``, ``HSV``, ...) is refused by mode.

An EXIF orientation tag other than 1 (upright) is refused too: landmarks and annotations index the stored
raster or the rotated one with nothing to say which, and PIL (which ignores the tag) and OpenCV (which
applies it) would hand an evaluator different pixels for the same file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, UnidentifiedImageError

from dmlfaces.data.errors import DataFormatError

_CONVERTED = frozenset({"RGB", "L", "1", "P", "YCbCr", "CMYK", "RGBX"})
_ALPHA = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ORIENTATION = 0x0112  # EXIF tag
_FIX_MODE = "save the image as 8-bit RGB or greyscale (e.g. a JPEG or an opaque PNG)"


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB (see the module docstring for each mode).

    Returns:
        (H, W, 3) uint8 array.
    Raises:
        DataFormatError: the file is missing, cannot be decoded, has a mode with no faithful RGB
            rendering (named), is partly transparent, or carries an EXIF rotation.
    """
    with _opened(path) as image:
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
            raise _undecodable(path, exc) from None
        return _to_rgb(path, image)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image from its header alone, after the checks ``load_rgb`` can make without
    decoding pixels (missing file, unknown format, refused mode or EXIF rotation)."""
    with _opened(path) as image:
        return image.size


@contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """``Image.open`` whose errors, mode and orientation checks name the file."""
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise DataFormatError(
            path, "image file is missing", fix="restore the file or remove its rows from the protocol"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise _undecodable(path, exc) from None
    with image:
        _check_header(path, image)
        yield image


def _undecodable(path: str | os.PathLike[str], exc: Exception) -> DataFormatError:
    return DataFormatError(path, f"image cannot be decoded ({exc})", fix="replace the file with a valid JPEG or PNG")


def _check_header(path: str | os.PathLike[str], image: Image.Image) -> None:
    """Refuse modes with no faithful RGB rendering and rotated EXIF orientations (header data only)."""
    if image.mode not in _CONVERTED | _ALPHA | _SIXTEEN_BIT:
        raise DataFormatError(
            path,
            f"image mode {image.mode!r} has no defined 8-bit RGB rendering",
            expected="an RGB, greyscale, palette, CMYK or 16-bit greyscale image",
            fix=_FIX_MODE,
        )
    try:
        orientation = image.getexif().get(_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as exc:  # a corrupt EXIF block
        raise _undecodable(path, exc) from None
    if orientation != 1:
        raise DataFormatError(
            path,
            f"EXIF orientation is {orientation}, not 1 (upright)",
            expected="pixels stored upright, so that landmarks and pixels agree whatever the reader",
            fix="rotate the pixels as the tag says and drop the tag (e.g. 'exiftran -ai FILE' or PIL's "
            "ImageOps.exif_transpose), re-checking any landmarks given for the image",
        )


def _to_rgb(path: str | os.PathLike[str], image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 of a loaded image whose mode passed ``_check_header``."""
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataFormatError(
                path,
                f"image mode {image.mode!r} holds values {values.min()}..{values.max()}, outside the 16-bit range 0..65535",
                fix=_FIX_MODE,
            )
        grey = ((values + 128) // 257).astype(np.uint8)  # round(v / 257): 257 k -> k exactly, 65535 -> 255
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in _ALPHA or image.has_transparency_data:
        rgba = np.asarray(image.convert("RGBA"))
        transparent = np.count_nonzero(rgba[..., 3] < 255)
        if transparent:
            raise DataFormatError(
                path,
                f"image mode {image.mode!r} has {transparent} of {rgba[..., 3].size} pixels not fully opaque",
                expected="an opaque image",
                fix="flatten the image onto the intended background (e.g. save it as JPEG)",
            )
        return np.ascontiguousarray(rgba[..., :3])
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
