"""CelebA reader and writer on fixtures in the release's exact format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlfaces.data.celeba import CELEBA_ATTRIBUTES, read_celeba, write_celeba
from dmlfaces.data.errors import DataFormatError

# The first lines of the real release, with its runs of spaces.
REAL_ATTR = """3
5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young 
000001.jpg -1  1  1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1  1  1 -1  1 -1 -1  1 -1 -1  1 -1 -1 -1  1  1 -1  1 -1  1 -1 -1  1
000002.jpg -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1 -1  1 -1 -1  1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1
000003.jpg -1 -1 -1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1  1  1 -1 -1  1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1  1
"""


def _write_real(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "list_attr_celeba.txt").write_text(REAL_ATTR)
    (root / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n000003.jpg 8692\n")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n")
    (root / "img_align_celeba").mkdir(exist_ok=True)
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        Image.new("RGB", (178, 218), (120, 90, 80)).save(root / "img_align_celeba" / name)
    return root


def test_reads_the_release_format(tmp_path: Path) -> None:
    celeba = read_celeba(_write_real(tmp_path / "celeba"), check_images=True)
    assert list(celeba.attributes.columns) == list(CELEBA_ATTRIBUTES)
    assert celeba.attributes.loc["000001.jpg", "Arched_Eyebrows"] == 1
    assert celeba.attributes.loc["000003.jpg", "Male"] == 1 and celeba.attributes.loc["000001.jpg", "Male"] == -1
    assert celeba.identities.tolist() == [2880, 2937, 8692]
    assert celeba.partitions.tolist() == [0, 0, 2]
    assert celeba.landmarks is None
    assert celeba.load_image("000002.jpg").shape == (218, 178, 3)


def test_write_then_read_round_trip_and_bytes_are_stable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, 6)]
    attrs = rng.choice([-1, 1], size=(5, 40))
    landmarks = rng.uniform(30, 90, size=(5, 5, 2))
    write_celeba(tmp_path / "a", names, attrs, np.arange(5) + 10, np.array([0, 0, 1, 2, 2]), landmarks)
    write_celeba(tmp_path / "b", names, attrs, np.arange(5) + 10, np.array([0, 0, 1, 2, 2]), landmarks)
    for f in ("list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt", "list_landmarks_align_celeba.txt"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    line = (tmp_path / "a" / "list_attr_celeba.txt").read_text().splitlines()[2]
    assert line.startswith("000001.jpg ") and len(line) == len("000001.jpg") + 40 * 3
    celeba = read_celeba(tmp_path / "a")
    assert np.array_equal(celeba.attributes.to_numpy(), attrs)
    assert celeba.identities.tolist() == [10, 11, 12, 13, 14]
    assert np.array_equal(celeba.landmarks.to_numpy(), np.rint(landmarks.reshape(5, 10)))


def _corrupt(root: Path, file: str, line: int, text: str | None) -> None:
    lines = (root / file).read_text().splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    (root / file).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "file, line, text, expected_line, message",
    [
        ("list_attr_celeba.txt", 1, "three", 1, "not an image count"),
        ("list_attr_celeba.txt", 1, "4", 1, "count line says 4 images but the file lists 3"),
        ("list_attr_celeba.txt", 2, REAL_ATTR.splitlines()[1].replace("Bald", "Bold"), 2, "attribute name 5 is 'Bold'"),
        ("list_attr_celeba.txt", 4, "000002.jpg -1 1", 4, "3 fields"),
        ("list_attr_celeba.txt", 5, REAL_ATTR.splitlines()[4].replace("-1", " 0", 1), 5, "value '0'"),
        ("list_attr_celeba.txt", 5, REAL_ATTR.splitlines()[2], 5, "listed twice (also on line 3)"),
        ("identity_CelebA.txt", 2, "000002.jpg x29", 2, "value 'x29'"),
        ("identity_CelebA.txt", 3, "000004.jpg 1", 3, "not in list_attr_celeba.txt"),
        ("list_eval_partition.txt", 3, "000003.jpg 3", 3, "value '3'"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, file: str, line: int, text: str, expected_line: int, message: str) -> None:
    root = _write_real(tmp_path / "celeba")
    _corrupt(root, file, line, text)
    with pytest.raises(DataFormatError) as error:
        read_celeba(root)
    assert error.value.path.endswith(file) and error.value.line == expected_line
    assert message in str(error.value) and f"{file}:{expected_line}:" in str(error.value)


def test_missing_row_in_another_file_is_named(tmp_path: Path) -> None:
    root = _write_real(tmp_path / "celeba")
    _corrupt(root, "list_eval_partition.txt", 2, None)
    with pytest.raises(DataFormatError, match="image 000002.jpg of list_attr_celeba.txt is not listed"):
        read_celeba(root)


def test_missing_file_and_missing_image(tmp_path: Path) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / "img_align_celeba" / "000003.jpg").unlink()
    read_celeba(root)  # images are only opened when asked to check them
    with pytest.raises(DataFormatError, match="000003.jpg: image file is missing"):
        read_celeba(root, check_images=True)
    (root / "identity_CelebA.txt").unlink()
    with pytest.raises(DataFormatError, match="identity_CelebA.txt: file is missing"):
        read_celeba(root)


def test_files_may_list_the_images_in_another_order(tmp_path: Path) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / "identity_CelebA.txt").write_text("000003.jpg 8692\n000001.jpg 2880\n000002.jpg 2937\n")
    assert read_celeba(root).identities.tolist() == [2880, 2937, 8692]
