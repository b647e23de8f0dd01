"""Identity-per-folder image trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.folders import read_image_folder


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path)


def test_lists_identities_and_images_in_sorted_order(tmp_path: Path) -> None:
    for rel in ("b/2.jpg", "b/1.png", "a/9.JPG", "a/notes.txt"):
        _image(tmp_path / rel) if not rel.endswith(".txt") else (tmp_path / rel).write_text("x")
    folder = read_image_folder(tmp_path)
    assert folder.identities == ["a", "b"]
    assert [p.relative_to(tmp_path).as_posix() for p in folder.paths] == ["a/9.JPG", "b/1.png", "b/2.jpg"]
    assert folder.labels.tolist() == [0, 1, 1]


def test_empty_identity_folder_is_named(tmp_path: Path) -> None:
    _image(tmp_path / "a" / "1.jpg")
    (tmp_path / "empty_one").mkdir()
    with pytest.raises(DataFormatError, match="empty_one: identity folder holds no images"):
        read_image_folder(tmp_path)


def test_stray_top_level_file_and_missing_root(tmp_path: Path) -> None:
    _image(tmp_path / "a" / "1.jpg")
    _image(tmp_path / "loose.jpg")
    with pytest.raises(DataFormatError, match="loose.jpg: file at the top level"):
        read_image_folder(tmp_path)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_image_folder(tmp_path / "nowhere")
    with pytest.raises(DataFormatError, match="no identity folders"):
        (tmp_path / "nothing").mkdir()
        read_image_folder(tmp_path / "nothing")
