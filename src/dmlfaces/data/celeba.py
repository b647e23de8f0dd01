"""CelebA layout: attributes, identities, evaluation partitions and aligned landmarks.

Reads (and, for SynthFaces, writes) the files of the published CelebA release (Liu et al., ICCV 2015):

* ``list_attr_celeba.txt``: line 1 the image count, line 2 the 40 attribute names, then one line per
  image: its name and 40 values in {-1, 1}, separated by runs of spaces;
* ``identity_CelebA.txt``: ``000001.jpg 2880`` per line;
* ``list_eval_partition.txt``: ``000001.jpg 0`` per line (0 train, 1 val, 2 test);
* ``list_landmarks_align_celeba.txt`` (optional): line 1 the count, line 2 the 10 column names, then a
  name and 10 integer coordinates;
* ``img_align_celeba/<name>``: the images.

Every file is read under the shared text policy (``dmlfaces.data.text``): a header is the first non-blank
lines, and lines are numbered as an editor numbers them.

The three or four files may list the images in different orders; every table is aligned to the order
of ``list_attr_celeba.txt``.

Its length: one release layout, whose reader and the writer SynthFaces uses share the parsers and their
errors (most lines are the per-file checks that name the line of a bad entry).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.images import load_rgb
from dmlfaces.data.text import iter_text_lines, read_table, split_fields
from dmlfaces.io import atomic_write_text

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
LANDMARK_COLUMNS: tuple[str, ...] = (
    "lefteye_x",
    "lefteye_y",
    "righteye_x",
    "righteye_y",
    "nose_x",
    "nose_y",
    "leftmouth_x",
    "leftmouth_y",
    "rightmouth_x",
    "rightmouth_y",
)
ATTRIBUTES_FILE = "list_attr_celeba.txt"
IDENTITY_FILE = "identity_CelebA.txt"
PARTITION_FILE = "list_eval_partition.txt"
LANDMARKS_FILE = "list_landmarks_align_celeba.txt"
IMAGE_DIR = "img_align_celeba"

_INT64 = np.iinfo(np.int64)


@dataclass(frozen=True, eq=False)
class CelebA:
    """A CelebA-layout data set; every table is indexed by image name in ``list_attr_celeba.txt`` order.

    Attributes:
        attributes: (N, 40) int8 frame of {-1, 1}, columns ``CELEBA_ATTRIBUTES``.
        identities: (N,) int64 identity per image.
        partitions: (N,) int8 partition per image (0 train, 1 val, 2 test).
        landmarks: (N, 10) float64 frame, columns ``LANDMARK_COLUMNS``, or None when the file is absent.
    """

    root: Path
    attributes: pd.DataFrame
    identities: pd.Series
    partitions: pd.Series
    landmarks: pd.DataFrame | None

    def image_path(self, name: str) -> Path:
        """``root/img_align_celeba/<name>``."""
        return self.root / IMAGE_DIR / name

    def load_image(self, name: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB image."""
        return load_rgb(self.image_path(name))


@dataclass(frozen=True)
class _Values:
    """What the numbers after the image name must be."""

    integer: bool
    allowed: frozenset[int] | None
    expected: str

    def valid_array(self, frame: pd.DataFrame) -> bool:
        kinds = "iu" if self.integer else "iuf"
        if not all(dtype.kind in kinds for dtype in frame.dtypes):
            return False
        values = frame.to_numpy()
        if self.allowed is not None:
            return bool(np.isin(values, list(self.allowed)).all())
        return self.integer or bool(np.isfinite(values).all())

    def valid_field(self, field: str) -> bool:
        try:
            value = int(field) if self.integer else float(field)
        except ValueError:
            return False
        if not self.integer:
            return math.isfinite(value)
        return _INT64.min <= value <= _INT64.max and (self.allowed is None or value in self.allowed)


_ATTRIBUTE_VALUES = _Values(True, frozenset({-1, 1}), "-1 or 1")
_IDENTITY_VALUES = _Values(True, None, "an integer identity")
_PARTITION_VALUES = _Values(True, frozenset({0, 1, 2}), "0 (train), 1 (val) or 2 (test)")
_LANDMARK_VALUES = _Values(False, None, "a pixel coordinate")


def _require(path: Path) -> None:
    if not path.is_file():
        raise DataFormatError(
            path,
            "file is missing",
            expected="the CelebA release file of this name",
            fix="copy it from the CelebA release (Anno/ or Eval/) into the data directory",
        )


def _head(path: Path) -> tuple[int, int, list[str], int]:
    """The image count (first non-blank line), its line number, the column names (the next non-blank line)
    and theirs, of a file with a two-line header."""
    _require(path)
    head = list(itertools.islice(iter_text_lines(path), 2)) or [(1, "")]
    (count_line, text), (names_line, names) = head[0], head[1] if len(head) > 1 else (head[0][0] + 1, "")
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise DataFormatError(
            path,
            f"first line {text!r} is not an image count",
            line=count_line,
            expected="the number of image lines, e.g. 202599",
            fix="restore the count line of the release",
        )
    return int(text), count_line, split_fields(names), names_line


def _check_names(path: Path, line: int, found: list[str], expected: tuple[str, ...], noun: str) -> None:
    """The names line must hold ``expected`` in order; name the first position that differs."""
    if tuple(found) == expected:
        return
    position = next(i for i in itertools.count() if i >= min(len(found), len(expected)) or found[i] != expected[i])
    got = repr(found[position]) if position < len(found) else "missing"
    want = repr(expected[position]) if position < len(expected) else "no further name"
    raise DataFormatError(
        path,
        f"{noun} name {position + 1} is {got}",
        line=line,
        expected=f"{want} ({len(expected)} names in release order)",
        fix="restore line 2 of the release",
    )


def _raise_bad_line(path: Path, skip: int, width: int, values: _Values, reason: str) -> NoReturn:
    """Scan line by line for the first malformed data line (only once the fast parse has failed)."""
    for number, text in itertools.islice(iter_text_lines(path), skip, None):
        fields = split_fields(text)
        if len(fields) != width + 1:
            raise DataFormatError(
                path,
                f"{len(fields)} fields",
                line=number,
                expected=f"{width + 1} fields: an image name and {width} x {values.expected}",
                fix="correct or delete that line",
            )
        bad = next((field for field in fields[1:] if not values.valid_field(field)), None)
        if bad is not None:
            raise DataFormatError(
                path,
                f"value {bad!r} for image {fields[0]}",
                line=number,
                expected=values.expected,
                fix="correct the value on that line",
            )
    raise DataFormatError(
        path,
        f"cannot be parsed ({reason})",
        expected=f"image names, each with {width} numbers",
        fix="restore the file from the release",
    )


def _read_rows(path: Path, skip: int, width: int, values: _Values) -> tuple[pd.Index, np.ndarray]:
    """Image names and (N, width) numbers of the data lines after ``skip`` non-blank header lines."""
    _require(path)
    try:
        _, frame = read_table(path, {0: str}, header_lines=skip)
    except pd.errors.EmptyDataError:
        empty = np.empty((0, width), dtype=np.int64 if values.integer else np.float64)
        return pd.Index([], dtype=str), empty
    except pd.errors.ParserError as exc:
        _raise_bad_line(path, skip, width, values, str(exc).strip())
    # A short line leaves strings in its column and a long one changes the width: both fail this check.
    if frame.shape[1] != width + 1 or not values.valid_array(frame.iloc[:, 1:]):
        _raise_bad_line(path, skip, width, values, "unexpected columns")
    return pd.Index(frame[0]), frame.iloc[:, 1:].to_numpy()


def _lines_of(path: Path, skip: int, name: str) -> list[int]:
    """1-based numbers of the data lines whose image name is ``name``."""
    return [number for number, text in itertools.islice(iter_text_lines(path), skip, None) if split_fields(text)[:1] == [name]]


def _check_count(path: Path, line: int, count: int, rows: int) -> None:
    if count != rows:
        raise DataFormatError(
            path,
            f"count line says {count} images but the file lists {rows}",
            line=line,
            expected=f"{rows}",
            fix="correct the count line or restore the missing lines",
        )


def _check_unique(path: Path, skip: int, names: pd.Index) -> None:
    duplicated = names[names.duplicated()]
    if len(duplicated):
        first, second = _lines_of(path, skip, duplicated[0])[:2]
        raise DataFormatError(
            path,
            f"image {duplicated[0]} is listed twice (also on line {first})",
            line=second,
            expected="each image once",
            fix="delete the duplicate line",
        )


def _check_same_images(reference_path: Path, reference: pd.Index, path: Path, skip: int, names: pd.Index) -> None:
    if names.equals(reference):
        return
    extra = names.difference(reference, sort=False)
    if len(extra):
        raise DataFormatError(
            path,
            f"image {extra[0]} is not in {reference_path.name}",
            line=_lines_of(path, skip, extra[0])[0],
            expected=f"the same images as {reference_path.name}",
            fix="delete that line or add the image to every CelebA file",
        )
    missing = reference.difference(names, sort=False)
    if len(missing):
        raise DataFormatError(
            path,
            f"image {missing[0]} of {reference_path.name} is not listed",
            expected=f"the same images as {reference_path.name}",
            fix="restore the missing lines",
        )


def _read_table(
    path: Path,
    header: bool,
    width: int,
    values: _Values,
    reference: tuple[Path, pd.Index] | None,
    column_names: tuple[str, ...] = (),
    noun: str = "",
) -> tuple[pd.Index, np.ndarray]:
    """Read one CelebA file and check it: header, lines, count, unique names, same images as the reference."""
    skip = 2 if header else 0
    if header:
        count, count_line, found, names_line = _head(path)
        _check_names(path, names_line, found, column_names, noun)
    names, array = _read_rows(path, skip, width, values)
    if header:
        _check_count(path, count_line, count, len(names))
    _check_unique(path, skip, names)
    if reference is not None:
        _check_same_images(*reference, path, skip, names)
        if not names.equals(reference[1]):
            array = array[names.get_indexer(reference[1])]
    return names, array


def read_celeba(root: str | os.PathLike[str], check_images: bool = False) -> CelebA:
    """Read a CelebA-layout directory (the text files and, with ``check_images``, every image).

    Raises:
        DataFormatError: naming the file and line of the first problem found.
    """
    root = Path(root)
    attr_path = root / ATTRIBUTES_FILE
    names, attributes = _read_table(attr_path, True, 40, _ATTRIBUTE_VALUES, None, CELEBA_ATTRIBUTES, "attribute")
    reference = (attr_path, names)
    _, identities = _read_table(root / IDENTITY_FILE, False, 1, _IDENTITY_VALUES, reference)
    _, partitions = _read_table(root / PARTITION_FILE, False, 1, _PARTITION_VALUES, reference)
    landmarks = None
    if (root / LANDMARKS_FILE).exists():
        _, points = _read_table(root / LANDMARKS_FILE, True, 10, _LANDMARK_VALUES, reference, LANDMARK_COLUMNS, "column")
        landmarks = pd.DataFrame(points.astype(np.float64), index=names, columns=list(LANDMARK_COLUMNS))
    celeba = CelebA(
        root=root,
        attributes=pd.DataFrame(attributes.astype(np.int8), index=names, columns=list(CELEBA_ATTRIBUTES)),
        identities=pd.Series(identities[:, 0].astype(np.int64), index=names, name="identity"),
        partitions=pd.Series(partitions[:, 0].astype(np.int8), index=names, name="partition"),
        landmarks=landmarks,
    )
    if check_images:
        for name in names:
            celeba.load_image(name)
    return celeba


def write_celeba(
    root: str | os.PathLike[str],
    image_names: Sequence[str],
    attributes: np.ndarray,
    identities: np.ndarray,
    partitions: np.ndarray,
    landmarks: np.ndarray | None = None,
) -> None:
    """Write the CelebA text files byte for byte in the release's format (the images are the caller's).

    Args:
        image_names: N unique names without whitespace, e.g. ``000001.jpg``.
        attributes: (N, 40) values in {-1, 1}, columns in ``CELEBA_ATTRIBUTES`` order.
        identities: (N,) integer identity per image.
        partitions: (N,) 0, 1 or 2.
        landmarks: optional (N, 5, 2) aligned landmarks, written rounded to integers as in the release.
    Raises:
        ValueError: arguments the reader would reject.
    """
    root = Path(root)
    names = list(image_names)
    n = len(names)
    attributes, identities, partitions = np.asarray(attributes), np.asarray(identities), np.asarray(partitions)
    if len(set(names)) != n or any(not name or len(name.split()) != 1 for name in names):
        raise ValueError("image names must be unique, non-empty and free of whitespace")
    if attributes.shape != (n, 40) or not np.isin(attributes, (-1, 1)).all():
        raise ValueError(f"attributes must be ({n}, 40) with values in {{-1, 1}}, got shape {attributes.shape}")
    if identities.shape != (n,) or identities.dtype.kind not in "iu":
        raise ValueError(f"identities must be ({n},) integers, got {identities.shape} {identities.dtype}")
    if partitions.shape != (n,) or not np.isin(partitions, (0, 1, 2)).all():
        raise ValueError(f"partitions must be ({n},) values in {{0, 1, 2}}, got shape {partitions.shape}")
    if landmarks is not None and np.shape(landmarks) != (n, 5, 2):
        raise ValueError(f"landmarks must be ({n}, 5, 2), got {np.shape(landmarks)}")

    # The release right-aligns each value in two characters after a space ("000001.jpg -1  1  1 -1") and
    # ends the names line with a space.
    tokens = np.where(attributes == 1, "  1", " -1").tolist()
    attr_lines = [str(n), " ".join(CELEBA_ATTRIBUTES) + " "]
    attr_lines += [name + "".join(row) for name, row in zip(names, tokens)]
    atomic_write_text(root / ATTRIBUTES_FILE, "\n".join(attr_lines) + "\n")
    atomic_write_text(root / IDENTITY_FILE, "".join(f"{m} {int(i)}\n" for m, i in zip(names, identities)))
    atomic_write_text(root / PARTITION_FILE, "".join(f"{m} {int(p)}\n" for m, p in zip(names, partitions)))
    if landmarks is not None:
        # The release writes "000001.jpg 69  109  106 ...": the first value after one space, the rest in
        # five-character columns (a space before each, so wide values never merge).
        points = np.rint(np.asarray(landmarks, dtype=np.float64).reshape(n, 10)).astype(np.int64).tolist()
        mark_lines = [str(n), " ".join(LANDMARK_COLUMNS)]
        mark_lines += [f"{name} {row[0]}" + "".join(f" {v:4d}" for v in row[1:]) for name, row in zip(names, points)]
        atomic_write_text(root / LANDMARKS_FILE, "\n".join(mark_lines) + "\n")
