"""Identity-per-folder image trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.folders import read_clip_folder, read_image_folder


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")


def test_lists_identities_and_images_in_sorted_order(tmp_path: Path) -> None:
    for rel in ("m_02/2.jpg", "m_02/1.png", "m_02/10.jpeg", "m_01/9.JPG", "m_10/0.jpg"):
        _image(tmp_path / rel)
    (tmp_path / "m_01" / "notes.txt").write_text("not an image")
    (tmp_path / "m_01" / "._9.jpg").write_bytes(b"macOS fork")
    (tmp_path / "m_01" / "sub.jpg").mkdir()
    (tmp_path / ".DS_Store").write_bytes(b"x")
    folder = read_image_folder(tmp_path)
    assert folder.root == tmp_path
    assert folder.identities == ["m_01", "m_02", "m_10"]
    assert [p.relative_to(tmp_path).as_posix() for p in folder.paths] == [
        "m_01/9.JPG",
        "m_02/1.png",
        "m_02/10.jpeg",
        "m_02/2.jpg",
        "m_10/0.jpg",
    ]
    assert folder.labels.dtype == "int64" and folder.labels.tolist() == [0, 1, 1, 1, 2]


def test_extensions_choose_the_images(tmp_path: Path) -> None:
    for rel in ("a/1.jpg", "a/2.png", "b/3.png"):
        _image(tmp_path / rel)
    folder = read_image_folder(tmp_path, extensions=(".png",))
    assert [p.name for p in folder.paths] == ["2.png", "3.png"] and folder.labels.tolist() == [0, 1]
    with pytest.raises(DataFormatError, match="b: identity folder holds no images"):
        read_image_folder(tmp_path, extensions=(".jpg",))


def test_empty_identity_folder_is_named(tmp_path: Path) -> None:
    _image(tmp_path / "a" / "1.jpg")
    (tmp_path / "empty_one").mkdir()
    (tmp_path / "empty_one" / "readme.txt").write_text("x")
    with pytest.raises(DataFormatError) as error:
        read_image_folder(tmp_path)
    assert error.value.path == str(tmp_path / "empty_one") and "identity folder holds no images" in str(error.value)


def test_stray_top_level_file_missing_root_and_no_identities(tmp_path: Path) -> None:
    _image(tmp_path / "data" / "a" / "1.jpg")
    _image(tmp_path / "data" / "loose.jpg")
    with pytest.raises(DataFormatError) as error:
        read_image_folder(tmp_path / "data")
    assert error.value.path == str(tmp_path / "data" / "loose.jpg") and "file at the top level" in str(error.value)
    with pytest.raises(DataFormatError, match="nowhere: image folder root does not exist"):
        read_image_folder(tmp_path / "nowhere")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / ".hidden").mkdir()
    with pytest.raises(DataFormatError, match="nothing: no identity folders"):
        read_image_folder(tmp_path / "nothing")


def test_clip_folder_lists_frames_clip_by_clip(tmp_path: Path) -> None:
    for identity, clip, frames in (("b", "00", 3), ("a", "01", 2), ("a", "00", 1)):
        for f in range(frames):
            _image(tmp_path / "clips" / identity / clip / f"{f:03d}.jpg")
    folder = read_clip_folder(tmp_path / "clips")
    assert [p.relative_to(tmp_path / "clips").as_posix() for p in folder.paths] == [
        "a/00/000.jpg",
        "a/01/000.jpg",
        "a/01/001.jpg",
        "b/00/000.jpg",
        "b/00/001.jpg",
        "b/00/002.jpg",
    ]
    assert folder.clips.tolist() == [0, 1, 1, 2, 2, 2] and folder.clip_identities == ["a", "a", "b"]


def test_clip_folder_names_the_clip_without_frames(tmp_path: Path) -> None:
    _image(tmp_path / "clips" / "a" / "00" / "000.jpg")
    (tmp_path / "clips" / "a" / "01").mkdir()
    with pytest.raises(DataFormatError, match="01: clip folder holds no images"):
        read_clip_folder(tmp_path / "clips")


def test_digest_follows_the_images_not_where_the_folder_lives(tmp_path: Path) -> None:
    for rel in ("a/1.jpg", "a/2.jpg", "b/1.jpg"):
        _image(tmp_path / "one" / rel)
    first = read_image_folder(tmp_path / "one").digest()
    (tmp_path / "one").rename(tmp_path / "moved")
    assert read_image_folder(tmp_path / "moved").digest() == first
    Image.new("RGB", (16, 16), "red").save(tmp_path / "moved" / "b" / "1.jpg", format="JPEG")  # a changed image
    changed = read_image_folder(tmp_path / "moved").digest()
    _image(tmp_path / "moved" / "b" / "2.jpg")  # an added one
    assert len({first, changed, read_image_folder(tmp_path / "moved").digest()}) == 3
