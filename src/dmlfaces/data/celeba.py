"""CelebA layout: attributes, identities, evaluation partitions and aligned landmarks.

Reads (and, for SynthFaces, writes) the files of the published CelebA release (Liu et al., ICCV 2015):

* ``list_attr_celeba.txt``: line 1 the image count, line 2 the 40 attribute names, then one line per
  image: its name and 40 values in {-1, 1}, separated by runs of spaces;
* ``identity_CelebA.txt``: ``000001.jpg 2880`` per line;
* ``list_eval_partition.txt``: ``000001.jpg 0`` per line (0 train, 1 val, 2 test);
* ``list_landmarks_align_celeba.txt`` (optional): line 1 the count, line 2 the 10 column names, then a
  name and 10 integer coordinates;
* ``img_align_celeba/<name>``: the images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.images import load_rgb
from dmlfaces.io import atomic_write_text

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)
LANDMARK_COLUMNS: tuple[str, ...] = (
    "lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
    "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y",
)
ATTRIBUTES_FILE = "list_attr_celeba.txt"
IDENTITY_FILE = "identity_CelebA.txt"
PARTITION_FILE = "list_eval_partition.txt"
LANDMARKS_FILE = "list_landmarks_align_celeba.txt"
IMAGE_DIR = "img_align_celeba"


@dataclass(frozen=True, eq=False)
class CelebA:
    """A CelebA-layout data set.

    Attributes:
        attributes: (N, 40) int8 frame of {-1, 1}, indexed by image name, columns in file order.
        identities: (N,) int64 identity per image name.
        partitions: (N,) int8 partition per image name (0 train, 1 val, 2 test).
        landmarks: (N, 10) float frame of aligned landmarks, or None when the file is absent.
    """

    root: Path
    attributes: pd.DataFrame
    identities: pd.Series
    partitions: pd.Series
    landmarks: pd.DataFrame | None

    def image_path(self, name: str) -> Path:
        return self.root / IMAGE_DIR / name

    def load_image(self, name: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB image."""
        return load_rgb(self.image_path(name))


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFormatError(path, "file is missing", expected="the CelebA release file of this name",
                              fix="copy it from the CelebA release (Anno/ or Eval/) into the data directory")
    return path.read_text(encoding="utf-8").splitlines()


def _rows(path: Path, lines: list[str], first: int, width: int, what: str) -> list[list[str]]:
    """Split data lines (from 0-based index ``first``) on any whitespace; each must have ``width`` fields."""
    rows = [line.split() for line in lines[first:]]
    for offset, fields in enumerate(rows):
        if len(fields) != width:
            raise DataFormatError(path, f"{len(fields)} fields", line=first + offset + 1,
                                  expected=f"{width} fields: {what}", fix="correct or delete that line")
    return rows


def _integers(path: Path, rows: list[list[str]], first: int, allowed: set[int] | None, what: str) -> np.ndarray:
    """(N, W-1) int64 array of every field but the name; the error names the first bad line."""
    try:
        values = np.array([fields[1:] for fields in rows], dtype=np.int64)
    except ValueError:
        values = None
    if values is not None and (allowed is None or np.isin(values, list(allowed)).all()):
        return values
    for offset, fields in enumerate(rows):
        for field in fields[1:]:
            try:
                value = int(field)
            except ValueError:
                value = None
            bad = value is None or (allowed is not None and value not in allowed)
            if bad:
                raise DataFormatError(path, f"value {field!r} for image {fields[0]}", line=first + offset + 1,
                                      expected=what, fix="correct the value on that line")
    raise AssertionError("unreachable: a bad value was detected but not located")


def _count_line(path: Path, lines: list[str], rows: int) -> None:
    try:
        count = int(lines[0].strip())
    except (IndexError, ValueError):
        raise DataFormatError(path, f"first line {lines[0] if lines else ''!r} is not an image count", line=1,
                              expected="the number of images", fix="restore the count line of the release") from None
    if count != rows:
        raise DataFormatError(path, f"count line says {count} images but the file lists {rows}", line=1,
                              expected=f"{rows}", fix="correct the count line or restore the missing rows")


def _name_index(path: Path, rows: list[list[str]], first: int) -> pd.Index:
    names = pd.Index([fields[0] for fields in rows])
    if not names.is_unique:
        duplicated = np.flatnonzero(names.duplicated())[0]
        earlier = names.get_loc(names[duplicated])
        earlier = earlier if isinstance(earlier, int) else int(np.flatnonzero(earlier)[0])
        raise DataFormatError(path, f"image {names[duplicated]} is listed twice (also on line {first + earlier + 1})",
                              line=first + duplicated + 1, expected="each image once", fix="delete the duplicate line")
    return names


def _same_images(reference_path: Path, reference: pd.Index, path: Path, names: pd.Index) -> None:
    if names.equals(reference):
        return
    extra = names.difference(reference)
    if len(extra):
        line = int(names.get_indexer([extra[0]])[0]) + 1
        raise DataFormatError(path, f"image {extra[0]} is not in {reference_path.name}", line=line,
                              expected=f"the same images as {reference_path.name}", fix="delete that line or add the image")
    missing = reference.difference(names)
    if len(missing) == 0:
        return  # the same images in another order; callers align rows by name
    raise DataFormatError(path, f"image {missing[0]} of {reference_path.name} is not listed",
                          expected=f"the same images as {reference_path.name}", fix="restore the missing lines")


def read_celeba(root: str | os.PathLike[str], check_images: bool = False) -> CelebA:
    """Read a CelebA-layout directory (the four text files and ``img_align_celeba/``).

    Raises:
        DataFormatError: naming the file and line of the first problem found.
    """
    root = Path(root)
    attr_path = root / ATTRIBUTES_FILE
    lines = _lines(attr_path)
    header = lines[1].split() if len(lines) > 1 else []
    if tuple(header) != CELEBA_ATTRIBUTES:
        position = next((i for i, (a, b) in enumerate(zip(header, CELEBA_ATTRIBUTES)) if a != b), min(len(header), 40))
        found = header[position] if position < len(header) else "(nothing)"
        raise DataFormatError(attr_path, f"attribute name {position + 1} is {found!r}", line=2,
                              expected=f"{CELEBA_ATTRIBUTES[position] if position < 40 else 'no more names'!r} "
                              "(the 40 CelebA attribute names in release order)",
                              fix="restore the header line of the release")
    rows = _rows(attr_path, lines, 2, 41, "an image name and 40 values in {-1, 1}")
    _count_line(attr_path, lines, len(rows))
    names = _name_index(attr_path, rows, 2)
    values = _integers(attr_path, rows, 2, {-1, 1}, "-1 or 1")
    attributes = pd.DataFrame(values.astype(np.int8), index=names, columns=list(CELEBA_ATTRIBUTES))

    id_path = root / IDENTITY_FILE
    id_rows = _rows(id_path, _lines(id_path), 0, 2, "an image name and an integer identity")
    _same_images(attr_path, names, id_path, _name_index(id_path, id_rows, 0))
    identities = pd.Series(_integers(id_path, id_rows, 0, None, "an integer identity")[:, 0],
                           index=[r[0] for r in id_rows]).loc[names]

    part_path = root / PARTITION_FILE
    part_rows = _rows(part_path, _lines(part_path), 0, 2, "an image name and a partition 0, 1 or 2")
    _same_images(attr_path, names, part_path, _name_index(part_path, part_rows, 0))
    partitions = pd.Series(_integers(part_path, part_rows, 0, {0, 1, 2}, "0 (train), 1 (val) or 2 (test)")[:, 0]
                           .astype(np.int8), index=[r[0] for r in part_rows]).loc[names]

    landmarks = None
    mark_path = root / LANDMARKS_FILE
    if mark_path.exists():
        mark_lines = _lines(mark_path)
        mark_rows = _rows(mark_path, mark_lines, 2, 11, "an image name and 10 integer coordinates")
        _count_line(mark_path, mark_lines, len(mark_rows))
        _same_images(attr_path, names, mark_path, _name_index(mark_path, mark_rows, 2))
        landmarks = pd.DataFrame(_integers(mark_path, mark_rows, 2, None, "an integer pixel coordinate").astype(float),
                                 index=[r[0] for r in mark_rows], columns=list(LANDMARK_COLUMNS)).loc[names]

    celeba = CelebA(root=root, attributes=attributes, identities=identities, partitions=partitions, landmarks=landmarks)
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
    """Write the CelebA text files in the release's format (images are the caller's).

    Args:
        attributes: (N, 40) values in {-1, 1}, columns in ``CELEBA_ATTRIBUTES`` order.
        identities: (N,) integer identity per image; partitions: (N,) 0, 1 or 2.
        landmarks: optional (N, 5, 2) aligned landmarks, written rounded to integers as in the release.
    """
    root = Path(root)
    attributes = np.asarray(attributes)
    if attributes.shape != (len(image_names), 40) or not np.isin(attributes, (-1, 1)).all():
        raise ValueError("attributes must be (N, 40) with values in {-1, 1}")
    # The release right-aligns each value in two characters after a space: "000001.jpg -1  1  1 -1".
    attr_lines = [str(len(image_names)), " ".join(CELEBA_ATTRIBUTES) + " "]
    attr_lines += [name + "".join(f" {int(v):2d}" for v in row) for name, row in zip(image_names, attributes)]
    atomic_write_text(root / ATTRIBUTES_FILE, "\n".join(attr_lines) + "\n")
    atomic_write_text(root / IDENTITY_FILE, "".join(f"{n} {int(i)}\n" for n, i in zip(image_names, identities)))
    atomic_write_text(root / PARTITION_FILE, "".join(f"{n} {int(p)}\n" for n, p in zip(image_names, partitions)))
    if landmarks is not None:
        points = np.rint(np.asarray(landmarks).reshape(len(image_names), 10)).astype(int)
        mark_lines = [str(len(image_names)), " ".join(LANDMARK_COLUMNS)]
        mark_lines += [f"{name:<10} " + " ".join(f"{v:>4d}" for v in row) for name, row in zip(image_names, points)]
        atomic_write_text(root / LANDMARKS_FILE, "\n".join(mark_lines) + "\n")
