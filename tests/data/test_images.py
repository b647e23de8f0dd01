"""Image loading: every PIL mode becomes 8-bit RGB faithfully, or is refused naming the file and the mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.images import image_size, load_rgb


def _saved(tmp_path: Path, image: Image.Image, name: str, **options: object) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def test_rgb_is_read_as_stored(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    path = _saved(tmp_path, Image.fromarray(pixels), "rgb.png")
    loaded = load_rgb(path)
    assert loaded.dtype == np.uint8 and np.array_equal(loaded, pixels)
    assert image_size(path) == (6, 4)


@pytest.mark.parametrize(
    "mode, values, expected",
    [
        ("L", [[0, 77, 255]], [0, 77, 255]),
        ("1", [[0, 1, 1]], [0, 255, 255]),
    ],
)
def test_greyscale_and_bilevel_become_grey_rgb(tmp_path: Path, mode: str, values: list, expected: list) -> None:
    image = Image.new(mode, (3, 1))
    image.putdata(values[0])
    loaded = load_rgb(_saved(tmp_path, image, f"{mode}.png"))
    assert loaded[0].tolist() == [[v] * 3 for v in expected]


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path: Path, mode: str) -> None:
    values = np.array([[0, 128, 129, 257, 32896, 65535]])
    image = Image.fromarray(values.astype(np.uint16 if mode == "I;16" else np.int32))
    path = _saved(tmp_path, image, "grey16.png" if mode == "I;16" else "grey32.tif")
    assert Image.open(path).mode == mode
    # round(v / 257): PIL's own conversion would clip every value above 255 to white.
    assert load_rgb(path)[0, :, 0].tolist() == [0, 0, 1, 1, 128, 255]


def test_integer_values_outside_sixteen_bits_are_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path, Image.fromarray(np.array([[0, 70000]], dtype=np.int32)), "wide.tif")
    with pytest.raises(DataFormatError, match=r"wide\.tif: image mode 'I' holds values 0\.\.70000"):
        load_rgb(path)


def test_cmyk_uses_the_multiplicative_formula(tmp_path: Path) -> None:
    image = Image.new("CMYK", (2, 1))
    image.putdata([(100, 0, 0, 50), (0, 0, 0, 255)])
    loaded = load_rgb(_saved(tmp_path, image, "cmyk.tif"))
    # (255 - c) * (255 - k) / 255 per channel, as OpenCV's imread converts CMYK.
    assert loaded[0].tolist() == [[125, 205, 205], [0, 0, 0]]


def _palette(transparent_used: bool) -> Image.Image:
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50, 1, 2, 3])
    image.putdata([1, 0 if transparent_used else 2])
    image.info["transparency"] = 0
    return image


def test_palette_images_use_their_colours(tmp_path: Path) -> None:
    plain = Image.new("P", (2, 1))
    plain.putpalette([10, 20, 30, 200, 100, 50])
    plain.putdata([1, 0])
    assert load_rgb(_saved(tmp_path, plain, "p.png"))[0].tolist() == [[200, 100, 50], [10, 20, 30]]
    # A transparent palette entry nobody uses leaves the image opaque.
    assert load_rgb(_saved(tmp_path, _palette(False), "p_opaque.png"))[0].tolist() == [[200, 100, 50], [1, 2, 3]]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_opaque_alpha_is_dropped_exactly(tmp_path: Path, mode: str) -> None:
    image = Image.new(mode, (2, 1), (90, 255) if mode == "LA" else (90, 60, 30, 255))
    expected = [90, 90, 90] if mode == "LA" else [90, 60, 30]
    assert load_rgb(_saved(tmp_path, image, f"{mode}.png"))[0].tolist() == [expected, expected]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_partly_transparent_images_are_refused(tmp_path: Path, mode: str) -> None:
    if mode == "P":
        image = _palette(True)
    else:
        image = Image.new(mode, (2, 1), (90, 255) if mode == "LA" else (90, 60, 30, 255))
        image.putpixel((1, 0), (90, 0) if mode == "LA" else (90, 60, 30, 0))
    path = _saved(tmp_path, image, f"{mode}_cut.png")
    with pytest.raises(DataFormatError, match=rf"{mode}_cut\.png: image mode '{mode}' has 1 of 2 pixels not fully opaque"):
        load_rgb(path)


def test_modes_without_an_rgb_rendering_are_refused_from_the_header(tmp_path: Path) -> None:
    path = _saved(tmp_path, Image.fromarray(np.array([[0.5, 2.0]], dtype=np.float32)), "float.tif")
    for read in (load_rgb, image_size):
        with pytest.raises(DataFormatError, match=r"float\.tif: image mode 'F' has no defined 8-bit RGB rendering"):
            read(path)


def test_a_rotating_exif_orientation_is_refused(tmp_path: Path) -> None:
    image = Image.new("RGB", (4, 2), (10, 20, 30))
    upright, rotated = Image.Exif(), Image.Exif()
    upright[0x0112], rotated[0x0112] = 1, 6
    assert load_rgb(_saved(tmp_path, image, "upright.jpg", exif=upright.tobytes())).shape == (2, 4, 3)
    path = _saved(tmp_path, image, "rotated.jpg", exif=rotated.tobytes())
    for read in (load_rgb, image_size):
        with pytest.raises(DataFormatError, match=r"rotated\.jpg: EXIF orientation is 6, not 1"):
            read(path)


def test_missing_undecodable_and_truncated_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"none\.jpg: image file is missing"):
        load_rgb(tmp_path / "none.jpg")
    (tmp_path / "text.jpg").write_bytes(b"not an image")
    with pytest.raises(DataFormatError, match=r"text\.jpg: image cannot be decoded"):
        load_rgb(tmp_path / "text.jpg")
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = _saved(tmp_path, Image.fromarray(pixels), "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFormatError, match=r"cut\.png: image cannot be decoded"):
        load_rgb(tmp_path / "cut.png")
