"""CelebA reader and writer on fixtures in the release's exact format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlfaces.data.celeba import CELEBA_ATTRIBUTES, LANDMARK_COLUMNS, read_celeba, write_celeba
from dmlfaces.data.errors import DataFormatError

# The first lines of the real release files, with their runs of spaces and the trailing space of line 2.
REAL_ATTR = """3
5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young 
000001.jpg -1  1  1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1  1  1 -1  1 -1 -1  1 -1 -1  1 -1 -1 -1  1  1 -1  1 -1  1 -1 -1  1
000002.jpg -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1 -1  1 -1 -1  1 -1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1  1
000003.jpg -1 -1 -1 -1 -1 -1  1 -1 -1 -1  1 -1 -1 -1 -1 -1 -1 -1 -1 -1  1 -1 -1  1  1 -1 -1  1 -1 -1 -1 -1 -1  1 -1 -1 -1 -1 -1  1
"""  # noqa: E501
REAL_IDENTITY = "000001.jpg 2880\n000002.jpg 2937\n000003.jpg 8692\n"
REAL_PARTITION = "000001.jpg 0\n000002.jpg 0\n000003.jpg 2\n"
REAL_LANDMARKS = """3
lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y
000001.jpg 69  109  106  113   77  142   73  152  108  154
000002.jpg 69  110  107  112   81  135   70  151  108  153
000003.jpg 76  112  104  106  108  128   74  156   98  158
"""
NAMES = ["000001.jpg", "000002.jpg", "000003.jpg"]
FILES = {
    "list_attr_celeba.txt": REAL_ATTR,
    "identity_CelebA.txt": REAL_IDENTITY,
    "list_eval_partition.txt": REAL_PARTITION,
    "list_landmarks_align_celeba.txt": REAL_LANDMARKS,
}


def _write_real(root: Path, landmarks: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for file, text in FILES.items():
        if landmarks or file != "list_landmarks_align_celeba.txt":
            (root / file).write_text(text)
    (root / "img_align_celeba").mkdir(exist_ok=True)
    for name in NAMES:
        Image.new("RGB", (178, 218), (120, 90, 80)).save(root / "img_align_celeba" / name)
    return root


def _real_attributes() -> np.ndarray:
    return np.array([[int(v) for v in line.split()[1:]] for line in REAL_ATTR.splitlines()[2:]])


def test_reads_the_release_format(tmp_path: Path) -> None:
    celeba = read_celeba(_write_real(tmp_path / "celeba"), check_images=True)
    assert list(celeba.attributes.index) == NAMES
    assert list(celeba.attributes.columns) == list(CELEBA_ATTRIBUTES)
    assert (celeba.attributes.dtypes == np.int8).all()
    assert celeba.attributes.loc["000001.jpg", "Arched_Eyebrows"] == 1
    assert celeba.attributes.loc["000003.jpg", "Male"] == 1 and celeba.attributes.loc["000001.jpg", "Male"] == -1
    assert celeba.attributes.loc["000002.jpg"].sum() == 2 * 8 - 40
    assert celeba.identities.dtype == np.int64 and celeba.identities.tolist() == [2880, 2937, 8692]
    assert celeba.partitions.dtype == np.int8 and celeba.partitions.tolist() == [0, 0, 2]
    assert list(celeba.landmarks.columns) == list(LANDMARK_COLUMNS)
    assert celeba.landmarks.loc["000003.jpg"].tolist() == [76, 112, 104, 106, 108, 128, 74, 156, 98, 158]
    assert celeba.image_path("000002.jpg") == tmp_path / "celeba" / "img_align_celeba" / "000002.jpg"
    assert celeba.load_image("000002.jpg").shape == (218, 178, 3)


def test_landmarks_are_optional(tmp_path: Path) -> None:
    assert read_celeba(_write_real(tmp_path / "celeba", landmarks=False)).landmarks is None


def test_writer_reproduces_the_release_bytes(tmp_path: Path) -> None:
    landmarks = np.array([[int(v) for v in line.split()[1:]] for line in REAL_LANDMARKS.splitlines()[2:]])
    write_celeba(
        tmp_path, NAMES, _real_attributes(), np.array([2880, 2937, 8692]), np.array([0, 0, 2]), landmarks.reshape(3, 5, 2) + 0.3
    )
    for file, text in FILES.items():
        assert (tmp_path / file).read_text() == text, file


def test_write_then_read_round_trip_and_bytes_are_stable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, 6)]
    attrs = rng.choice([-1, 1], size=(5, 40))
    landmarks = rng.uniform(30, 90, size=(5, 5, 2))
    for out in ("a", "b"):
        write_celeba(tmp_path / out, names, attrs, np.arange(5) + 10, np.array([0, 0, 1, 2, 2]), landmarks)
    for file in FILES:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    celeba = read_celeba(tmp_path / "a")
    assert list(celeba.attributes.index) == names
    assert np.array_equal(celeba.attributes.to_numpy(), attrs)
    assert celeba.identities.tolist() == [10, 11, 12, 13, 14]
    assert celeba.partitions.tolist() == [0, 0, 1, 2, 2]
    assert np.array_equal(celeba.landmarks.to_numpy(), np.rint(landmarks.reshape(5, 10)))


def test_writer_rejects_what_the_reader_would_reject(tmp_path: Path) -> None:
    ok = dict(image_names=NAMES, attributes=_real_attributes(), identities=np.array([1, 2, 3]), partitions=np.array([0, 1, 2]))
    for change in (
        {"image_names": ["a b.jpg", "b.jpg", "c.jpg"]},
        {"image_names": ["a.jpg", "a.jpg", "c.jpg"]},
        {"attributes": np.zeros((3, 40), dtype=int)},
        {"identities": np.array([1.5, 2, 3])},
        {"partitions": np.array([0, 1, 3])},
        {"landmarks": np.zeros((3, 10))},
    ):
        with pytest.raises(ValueError):
            write_celeba(tmp_path, **{**ok, **change})
    assert not (tmp_path / "list_attr_celeba.txt").exists()


def _corrupt(root: Path, file: str, line: int, text: str | None) -> None:
    lines = (root / file).read_text().splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    (root / file).write_text("\n".join(lines) + "\n")


ATTR_LINE_3 = REAL_ATTR.splitlines()[2]
ATTR_LINE_5 = REAL_ATTR.splitlines()[4]
ATTR_NAMES = REAL_ATTR.splitlines()[1]


@pytest.mark.parametrize(
    "file, line, text, expected_line, message",
    [
        ("list_attr_celeba.txt", 1, "three", 1, "first line 'three' is not an image count"),
        ("list_attr_celeba.txt", 1, "4", 1, "count line says 4 images but the file lists 3"),
        ("list_attr_celeba.txt", 5, None, 1, "count line says 3 images but the file lists 2"),
        ("list_attr_celeba.txt", 2, ATTR_NAMES.replace("Bald", "Bold"), 2, "attribute name 5 is 'Bold'"),
        ("list_attr_celeba.txt", 2, ATTR_NAMES.replace(" Young", ""), 2, "attribute name 40 is missing"),
        ("list_attr_celeba.txt", 4, "000002.jpg -1 1", 4, "3 fields"),
        ("list_attr_celeba.txt", 4, REAL_ATTR.splitlines()[3] + " 1", 4, "42 fields"),
        ("list_attr_celeba.txt", 3, ATTR_LINE_3 + " 1", 3, "42 fields"),
        ("list_attr_celeba.txt", 5, ATTR_LINE_5.replace("-1", " 0", 1), 5, "value '0' for image 000003.jpg"),
        ("list_attr_celeba.txt", 4, REAL_ATTR.splitlines()[3].replace(" 1", "x1", 1), 4, "value 'x1'"),
        ("list_attr_celeba.txt", 5, ATTR_LINE_3, 5, "image 000001.jpg is listed twice (also on line 3)"),
        ("identity_CelebA.txt", 2, "000002.jpg x29", 2, "value 'x29' for image 000002.jpg"),
        ("identity_CelebA.txt", 3, "000003.jpg 8692.5", 3, "value '8692.5'"),
        ("identity_CelebA.txt", 2, "000002.jpg 2937 1", 2, "3 fields"),
        ("identity_CelebA.txt", 3, "000004.jpg 1", 3, "image 000004.jpg is not in list_attr_celeba.txt"),
        ("identity_CelebA.txt", 3, "000001.jpg 1", 3, "image 000001.jpg is listed twice (also on line 1)"),
        ("list_eval_partition.txt", 3, "000003.jpg 3", 3, "value '3'"),
        ("list_eval_partition.txt", 1, "000001.jpg", 1, "1 fields"),
        ("list_landmarks_align_celeba.txt", 1, "2", 1, "count line says 2 images but the file lists 3"),
        ("list_landmarks_align_celeba.txt", 2, "lefteye_x lefteye_y", 2, "column name 3 is missing"),
        ("list_landmarks_align_celeba.txt", 4, "000002.jpg 69 110 107 112 81 135 70 151 108 abc", 4, "value 'abc'"),
        ("list_landmarks_align_celeba.txt", 5, "000009.jpg 1 2 3 4 5 6 7 8 9 10", 5, "image 000009.jpg is not in"),
    ],
)
def test_errors_name_file_and_line(
    tmp_path: Path, file: str, line: int, text: str | None, expected_line: int, message: str
) -> None:
    root = _write_real(tmp_path / "celeba")
    _corrupt(root, file, line, text)
    with pytest.raises(DataFormatError) as error:
        read_celeba(root)
    assert error.value.path == str(root / file) and error.value.line == expected_line
    assert f"{file}:{expected_line}: {message}" in str(error.value)
    assert "Expected: " in str(error.value) and "Fix: " in str(error.value)


@pytest.mark.parametrize("file", ["identity_CelebA.txt", "list_eval_partition.txt", "list_landmarks_align_celeba.txt"])
def test_a_file_missing_an_image_names_it(tmp_path: Path, file: str) -> None:
    root = _write_real(tmp_path / "celeba")
    skip = 2 if file.startswith("list_landmarks") else 0
    _corrupt(root, file, skip + 2, None)
    if skip:
        _corrupt(root, file, 1, "2")
    with pytest.raises(DataFormatError) as error:
        read_celeba(root)
    assert error.value.path == str(root / file) and error.value.line is None
    assert "image 000002.jpg of list_attr_celeba.txt is not listed" in str(error.value)


@pytest.mark.parametrize("file", ["list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt"])
def test_missing_file_is_named(tmp_path: Path, file: str) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / file).unlink()
    with pytest.raises(DataFormatError, match=f"{file}: file is missing"):
        read_celeba(root)


def test_missing_or_broken_image_only_when_checked(tmp_path: Path) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / "img_align_celeba" / "000003.jpg").unlink()
    read_celeba(root)  # images are only opened when asked to check them
    with pytest.raises(DataFormatError, match="000003.jpg: image file is missing"):
        read_celeba(root, check_images=True)
    (root / "img_align_celeba" / "000003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match="000003.jpg: image cannot be decoded"):
        read_celeba(root, check_images=True)


def test_files_may_list_the_images_in_another_order(tmp_path: Path) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / "identity_CelebA.txt").write_text("000003.jpg 8692\n000001.jpg 2880\n000002.jpg 2937\n")
    lines = REAL_LANDMARKS.splitlines()
    (root / "list_landmarks_align_celeba.txt").write_text("\n".join(lines[:2] + lines[:1:-1]) + "\n")
    celeba = read_celeba(root)
    assert celeba.identities.tolist() == [2880, 2937, 8692]
    assert list(celeba.identities.index) == NAMES
    assert celeba.landmarks.loc["000001.jpg", "lefteye_y"] == 109 and celeba.landmarks.iloc[2, 0] == 76


def test_crlf_line_ends_and_trailing_blank_lines_are_accepted(tmp_path: Path) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / "list_attr_celeba.txt").write_bytes((REAL_ATTR + "\n\n").replace("\n", "\r\n").encode())
    (root / "list_eval_partition.txt").write_text(REAL_PARTITION + "\n")
    celeba = read_celeba(root)
    assert np.array_equal(celeba.attributes.to_numpy(), _real_attributes())
    assert celeba.partitions.tolist() == [0, 0, 2]


def test_every_way_of_re_saving_reads_the_same(tmp_path: Path, resave: Callable[[str], bytes]) -> None:
    clean = read_celeba(_write_real(tmp_path / "clean"))
    root = _write_real(tmp_path / "celeba")
    for file, text in FILES.items():
        (root / file).write_bytes(resave(text))
    celeba = read_celeba(root)
    assert celeba.attributes.equals(clean.attributes) and celeba.identities.equals(clean.identities)
    assert celeba.partitions.equals(clean.partitions) and celeba.landmarks.equals(clean.landmarks)


def test_header_lines_are_numbered_after_leading_blank_lines(tmp_path: Path) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / "list_attr_celeba.txt").write_text("\n\n" + REAL_ATTR.replace("Bald", "Bold"))
    with pytest.raises(DataFormatError, match=r"list_attr_celeba\.txt:4: attribute name 5 is 'Bold'"):
        read_celeba(root)
    (root / "list_attr_celeba.txt").write_text("\n\n" + REAL_ATTR.replace("3\n", "4\n", 1))
    with pytest.raises(DataFormatError, match=r"list_attr_celeba\.txt:3: count line says 4 images"):
        read_celeba(root)


@pytest.mark.parametrize(
    "file, line",
    [
        ("list_attr_celeba.txt", 4),
        ("identity_CelebA.txt", 2),
        ("list_eval_partition.txt", 2),
        ("list_landmarks_align_celeba.txt", 4),
    ],
)
def test_bytes_that_are_not_utf8_are_refused_naming_file_and_line(tmp_path: Path, file: str, line: int) -> None:
    root = _write_real(tmp_path / "celeba")
    (root / file).write_bytes(FILES[file].replace("000002.jpg", "0000\xe92.jpg").encode("latin-1"))
    with pytest.raises(DataFormatError) as error:
        read_celeba(root)
    assert error.value.path == str(root / file) and error.value.line == line
    assert f"{file}:{line}: byte 0xe9 is not valid UTF-8" in str(error.value)
    assert "re-save the file as UTF-8" in str(error.value)
