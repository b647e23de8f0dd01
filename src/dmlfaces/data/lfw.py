"""LFW verification pairs: ``pairs.txt`` and the ``lfw/<Name>/<Name>_0001.jpg`` image tree.

``pairs.txt`` opens with ``sets<TAB>pairs_per_set`` (``10	300``); each set then lists that many matched
lines ``name n1 n2`` followed by as many mismatched lines ``name1 n1 name2 n2`` (tab separated; any
whitespace is accepted). The field count tells the kind of a line. ``pairsDevTrain.txt`` and
``pairsDevTest.txt`` open with the pair count alone and read as one set. The file is read under the shared
text policy (``dmlfaces.data.text``); a pair compared with itself or listed twice is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.images import load_rgb
from dmlfaces.data.text import check_pairs, read_text_lines, split_fields
from dmlfaces.io import atomic_write_text

Matched = tuple[str, int, int]
Mismatched = tuple[str, int, str, int]


@dataclass(frozen=True, eq=False)
class LFWPairs:
    """P verification pairs in file order.

    Attributes:
        left, right: P image paths.
        labels: (P,) int8, 1 for the same person, 0 otherwise.
        folds: (P,) int16, the 0-based set (cross-validation fold) of each pair.
    """

    left: list[Path]
    right: list[Path]
    labels: np.ndarray
    folds: np.ndarray


def lfw_image_path(lfw_root: Path, name: str, number: int) -> Path:
    """``lfw_root/<name>/<name>_<4-digit number>.jpg``."""
    return lfw_root / name / f"{name}_{number:04d}.jpg"


def _number(path: Path, line: int, field: str) -> int:
    """A 1-based image number; LFW numbers every person's images from 0001."""
    if not (field.isascii() and field.isdigit()) or int(field) < 1:
        raise DataFormatError(
            path,
            f"image number {field!r} is not a positive integer",
            line=line,
            expected="a 1-based image number such as 1 or 12",
            fix="correct the number on that line",
        )
    return int(field)


def _header(path: Path, lines: list[tuple[int, str]]) -> tuple[int, int]:
    """(sets, pairs per set) from the first line."""
    line, text = lines[0] if lines else (1, "")
    fields = split_fields(text)
    if len(fields) == 1:
        fields = ["1", *fields]
    if len(fields) != 2 or not all(f.isascii() and f.isdigit() and int(f) > 0 for f in fields):
        raise DataFormatError(
            path,
            f"header {text!r}",
            line=line,
            expected="two positive integers: sets and pairs per set, e.g. '10\\t300'",
            fix="restore the first line of pairs.txt",
        )
    return int(fields[0]), int(fields[1])


def read_lfw_pairs(
    pairs_path: str | os.PathLike[str], lfw_root: str | os.PathLike[str] | None = None, check_images: bool = False
) -> LFWPairs:
    """Read ``pairs.txt``; image paths point into ``lfw_root`` (default: ``lfw/`` beside the file).

    Raises:
        DataFormatError: naming the line of a bad header, a line of the wrong kind or field count, a bad
            image number, a line count that disagrees with the header, or (with ``check_images``) a
            missing or unreadable image.
    """
    path = Path(pairs_path)
    root = Path(lfw_root) if lfw_root is not None else path.parent / "lfw"
    if not path.is_file():
        raise DataFormatError(path, "file is missing", fix="copy pairs.txt from the LFW release")
    lines = read_text_lines(path)
    sets, per_set = _header(path, lines)
    body = lines[1:]
    if len(body) != sets * 2 * per_set:
        raise DataFormatError(
            path,
            f"{len(body)} pair lines after the header",
            line=lines[0][0],
            expected=f"{sets} sets x 2 x {per_set} = {sets * 2 * per_set} lines",
            fix="correct the header or restore the missing lines",
        )
    left, right, labels, folds = [], [], [], []
    for index, (line, text) in enumerate(body):
        fold, within = divmod(index, 2 * per_set)
        matched = within < per_set
        fields = split_fields(text)
        if len(fields) != (3 if matched else 4):
            kind = "matched 'name n1 n2'" if matched else "mismatched 'name1 n1 name2 n2'"
            raise DataFormatError(
                path,
                f"{len(fields)} fields in set {fold + 1}",
                line=line,
                expected=f"a {kind} line here ({per_set} matched then {per_set} mismatched per set)",
                fix="reorder or correct the line so each set lists its matched pairs first",
            )
        name1, a = fields[0], fields[1]
        name2, b = (name1, fields[2]) if matched else (fields[2], fields[3])
        left.append(lfw_image_path(root, name1, _number(path, line, a)))
        right.append(lfw_image_path(root, name2, _number(path, line, b)))
        labels.append(int(matched))
        folds.append(fold)
    check_pairs(
        path,
        np.array([p.stem for p in left]),
        np.array([p.stem for p in right]),
        np.array(labels),
        lambda rows: [body[r][0] for r in rows],
        "image",
        {1: "matched", 0: "mismatched"},
    )
    # After the pair check, which names both lines when the pair is also listed as matched.
    for (line, _), label, a, b in zip(body, labels, left, right):
        if not label and a.parent.name == b.parent.name:
            raise DataFormatError(
                path,
                f"mismatched pair names {a.parent.name} twice",
                line=line,
                expected="two different people on a mismatched line",
                fix="correct one of the names, or list the pair as matched 'name n1 n2'",
            )
    if check_images:
        for image in sorted(set(left) | set(right)):
            load_rgb(image)
    return LFWPairs(left=left, right=right, labels=np.array(labels, dtype=np.int8), folds=np.array(folds, dtype=np.int16))


def write_lfw_pairs(path: str | os.PathLike[str], sets: Sequence[tuple[Sequence[Matched], Sequence[Mismatched]]]) -> None:
    """Write ``pairs.txt`` (tab separated); every set must hold the same number of matched and mismatched pairs.

    Raises:
        ValueError: no sets, or sets of unequal sizes (the header could not describe them).
    """
    if not sets or not sets[0][0]:
        raise ValueError("need at least one set with at least one pair")
    per_set = len(sets[0][0])
    if any(len(m) != per_set or len(n) != per_set for m, n in sets):
        raise ValueError("every set needs the same number of matched and mismatched pairs")
    lines = [f"{len(sets)}\t{per_set}"]
    for matched, mismatched in sets:
        lines += [f"{name}\t{a}\t{b}" for name, a, b in matched]
        lines += [f"{n1}\t{a}\t{n2}\t{b}" for n1, a, n2, b in mismatched]
    atomic_write_text(path, "\n".join(lines) + "\n")
