"""IJB-B / IJB-C protocols in insightface's "IJB_release" layout: reader and writer.

The layout (see FORMATS.md) is ``ROOT/loose_crop/*.jpg`` plus ``ROOT/meta/{name}_*`` text files: per crop
its template and media (``face_tid_mid``), its 5 landmarks and detector score (``name_5pts_score``), the
1:1 template pairs (``template_pair_label``) and optional 1:N gallery/probe csv files. Real IJB-B/C and the
synthetic ``IJBS`` set share it, so one reader serves both and the writer exists for the generator.

Reading is sized for the real IJB-C (469,375 crop lines, 15,658,489 pair lines): every file goes through
pandas' C parser with explicit dtypes and is validated with vectorised numpy, so the pair file costs
seconds, not minutes. Python loops over lines run only once something is wrong, to name the first bad
line of the file in the ``DataFormatError``. What the files may contain (encoding, line ends, blank lines,
runs of whitespace) is the shared policy of ``dmlfaces.data.text``; a pair file that compares a template
with itself or lists a pair twice, in either order or with both labels, is refused.

Its length: reader and writer of one layout share its parsers, and most lines are the checks that name
the file and line of a malformed entry.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
from PIL import Image

from dmlfaces.data.align import align_face, landmark_problems
from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.images import image_size, load_rgb
from dmlfaces.data.text import check_pairs, iter_text_lines, read_table, split_fields
from dmlfaces.data.text import line_numbers as _line_numbers
from dmlfaces.io import atomic_write_bytes, atomic_write_text

ONE_TO_N_HEADER = "TEMPLATE_ID,SUBJECT_ID,FILENAME"
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class _TextLayout:
    """One whitespace-separated meta file: its name suffix, the kind of each column, and how a line looks."""

    suffix: str
    kinds: tuple[str, ...]  # per column: "name", "int", "label" (0 or 1) or "float" (finite)
    expected: str


_TID_MID = _TextLayout(
    "face_tid_mid.txt",
    ("name", "int", "int"),
    "3 space-separated fields 'image_name template_id media_id', e.g. '1.jpg 1 69544'",
)
_PAIRS = _TextLayout(
    "template_pair_label.txt",
    ("int", "int", "label"),
    "3 space-separated fields 'template_id_1 template_id_2 label' with label 1 (genuine) or 0 (impostor), e.g. '1 11065 1'",
)
_POINTS = _TextLayout(
    "name_5pts_score.txt",
    ("name",) + ("float",) * 11,
    "12 space-separated fields 'image_name x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 detector_score', e.g. '1.jpg 46.060"
    " 62.026 87.785 60.323 68.851 77.656 52.162 99.875 86.450 98.648 0.999'",
)
_DTYPES = {"name": str, "int": np.int64, "label": np.int64, "float": np.float64}
_FIX_LINE = "correct or delete that line; the file must follow the published IJB_release layout"


@dataclass(frozen=True, eq=False)
class OneToNList:
    """One 1:N gallery or probe list: one row per unique template, in order of first occurrence.

    Attributes:
        template_ids: (T,) int64.
        subject_ids: (T,) int64, the subject of each template.
    """

    template_ids: np.ndarray
    subject_ids: np.ndarray


@dataclass(frozen=True, eq=False)
class IJBProtocol:
    """An IJB-B/C-layout protocol; row i of every per-row array describes one crop of one template (a crop
    that several templates list has a row in each, all naming the same image: ``unique_crops``).

    Attributes:
        root: the directory holding ``loose_crop/`` and ``meta/``.
        name: the meta file prefix, e.g. "ijbc".
        crop_names: (N,) str, image file names under ``loose_crop/``, repeated where templates share a crop.
        template_ids, media_ids: (N,) int64.
        landmarks: (N, 5, 2) float32 x, y in loose-crop pixels (eyes, nose, mouth corners).
        detector_scores: (N,) float32.
        pairs: (P, 2) int64 template ids of the 1:1 pairs.
        pair_labels: (P,) int8, 1 genuine, 0 impostor.
        one_to_n: 1:N lists keyed by csv stem without the name prefix, e.g. "1N_gallery_G1".
    """

    root: Path
    name: str
    crop_names: np.ndarray
    template_ids: np.ndarray
    media_ids: np.ndarray
    landmarks: np.ndarray
    detector_scores: np.ndarray
    pairs: np.ndarray
    pair_labels: np.ndarray
    one_to_n: dict[str, OneToNList] = field(default_factory=dict)

    @property
    def num_crops(self) -> int:
        """Number of rows N: a crop listed by k templates counts k times (``unique_crops`` counts it once)."""
        return len(self.crop_names)

    @cached_property
    def unique_templates(self) -> np.ndarray:
        """(T,) sorted int64 ids of the templates that have crops."""
        return np.unique(self.template_ids)

    def template_subjects(self) -> tuple[np.ndarray, np.ndarray]:
        """(T,) template ids and (T,) subject ids, from the 1:N gallery and probe lists (the 1:1 files name no
        subjects). Raises ValueError when the protocol has no 1:N lists."""
        if not self.one_to_n:
            raise ValueError(
                f"{self.root}: no 1:N gallery/probe csv files under meta/, so templates have no subjects; "
                "copy them from the IJB release (they are needed for subject-level bootstrap intervals)"
            )
        templates = np.concatenate([lst.template_ids for lst in self.one_to_n.values()])
        subjects = np.concatenate([lst.subject_ids for lst in self.one_to_n.values()])
        templates, first = np.unique(templates, return_index=True)
        return templates, subjects[first]

    @cached_property
    def unique_crops(self) -> np.ndarray:
        """(U,) int64 rows naming each distinct crop, its first row, in row order: a crop listed by several
        templates is one image, read and extracted once."""
        _, first = np.unique(self.crop_names, return_index=True)
        return np.sort(first).astype(np.int64)

    def crop_path(self, i: int) -> Path:
        """Path of crop ``i`` (``root/loose_crop/<name>``)."""
        return self.root / "loose_crop" / str(self.crop_names[i])

    def load_crop(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB loose crop ``i``."""
        return load_rgb(self.crop_path(i))

    @property
    def points_path(self) -> Path:
        """The ``meta/{name}_name_5pts_score.txt`` file the landmarks come from."""
        return self.root / "meta" / f"{self.name}_{_POINTS.suffix}"

    def aligned_crop(self, i: int, size: int = 112) -> np.ndarray:
        """(size, size, 3) uint8 crop ``i`` aligned onto the ArcFace template from its 5 landmarks.

        Raises:
            DataFormatError: the landmarks cannot be aligned (see ``landmark_problems``), naming crop and line.
        """
        crop = self.load_crop(i)
        try:
            return align_face(crop, self.landmarks[i], size)
        except ValueError as exc:
            raise self._landmark_errors([(i, str(exc))])[0] from None

    def landmark_problems(self, threads: int = 16) -> dict[int, DataFormatError]:
        """Crop index -> error, in crop order, for every crop whose landmarks cannot be aligned (not finite,
        outside the crop, coincident, collinear or with a singular fit; see ``dmlfaces.data.align``); each
        error names the crop and its line of the landmarks file. Reads every crop's image header (threaded;
        a missing or unreadable crop raises at once) but no pixels, so a protocol is checked before any work.
        """
        with ThreadPoolExecutor(threads) as pool:
            sizes = np.array(list(pool.map(image_size, map(self.crop_path, range(self.num_crops)))), dtype=np.int64)
        problems = landmark_problems(self.landmarks, sizes.reshape(-1, 2))
        return dict(zip((i for i, _ in problems), self._landmark_errors(problems)))

    def check_landmarks(self, problems: Mapping[int, DataFormatError] | None = None) -> None:
        """Raise the first of ``problems`` (default: ``landmark_problems()``), saying how many crops have bad
        landmarks in all."""
        problems = self.landmark_problems() if problems is None else problems
        if problems:
            first = next(iter(problems.values()))
            more = f" (and {len(problems) - 1} more crops with bad landmarks)" if len(problems) > 1 else ""
            raise DataFormatError(first.path, first.problem + more, line=first.line, expected=first.expected, fix=first.fix)

    def _landmark_errors(self, problems: Sequence[tuple[int, str]]) -> list[DataFormatError]:
        """DataFormatErrors for (crop index, problem) pairs, with the crops' lines of the landmarks file."""
        lines = _line_numbers(self.points_path, [i for i, _ in problems]) if problems else []
        return [
            DataFormatError(
                self.points_path,
                f"crop {str(self.crop_names[i])!r}: {problem}",
                line=line,
                expected="5 distinct landmarks inside the crop, not all on one line",
                fix="correct that line's landmarks (or delete the crop's lines from both meta files), or leave"
                " such crops out with 'dmlfaces extract --skip-bad-landmarks'",
            )
            for (i, problem), line in zip(problems, lines)
        ]


def read_ijb(root: str | os.PathLike[str], name: str | None = None, check_images: bool = False) -> IJBProtocol:
    """Read and validate an IJB_release-layout protocol.

    Args:
        root: directory with ``meta/`` and ``loose_crop/`` (e.g. ``.../IJBC``).
        name: meta file prefix; defaults to the lowercased directory name ("IJBC" -> "ijbc").
        check_images: also open every crop and verify its header (cheap, but one file open per crop).
    Raises:
        DataFormatError: a meta file is missing or malformed, the files disagree with each other, or
            (with ``check_images``) a crop is missing or unreadable. The message names file and line.
    """
    root = Path(root)
    if name is None:
        name = Path(os.path.abspath(root)).name.lower()
    meta = root / "meta"
    tid_path, points_path, pairs_path = (meta / f"{name}_{layout.suffix}" for layout in (_TID_MID, _POINTS, _PAIRS))

    tid_mid = _read_text_table(tid_path, _TID_MID)
    if len(tid_mid) == 0:
        raise DataFormatError(
            tid_path, "file lists no crops", expected=_TID_MID.expected, fix="restore the file from the release"
        )
    crop_names = tid_mid[0].to_numpy(dtype=str)

    points = _read_text_table(points_path, _POINTS)
    values = points.iloc[:, 1:].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        _fail_at_first_bad_line(points_path, _POINTS, "a value is not finite")
    _check_in_step(tid_path, crop_names, points_path, points[0].to_numpy(dtype=str))
    _check_repeated_crops(tid_path, tid_mid, points_path, values)

    pair_table = _read_text_table(pairs_path, _PAIRS)
    labels = pair_table[2].to_numpy()
    if not ((labels == 0) | (labels == 1)).all():
        _fail_at_first_bad_line(pairs_path, _PAIRS, "a label is not 0 or 1")
    pairs = pair_table[[0, 1]].to_numpy(dtype=np.int64)
    del pair_table

    template_ids = tid_mid[1].to_numpy(dtype=np.int64)
    known = np.unique(template_ids)
    listed = _is_known(known, pairs)
    if not listed.all():
        row = int(np.argmax(~listed.all(axis=1)))
        template = int(pairs[row, np.argmin(listed[row])])
        raise DataFormatError(
            pairs_path,
            f"pair names template {template}, which has no crops in {tid_path.name}",
            line=_line_numbers(pairs_path, [row])[0],
            expected=f"both templates of every pair listed in {tid_path.name}",
            fix="use meta files of one release, or delete the pair",
        )
    check_pairs(
        pairs_path,
        pairs[:, 0],
        pairs[:, 1],
        labels,
        lambda rows: _line_numbers(pairs_path, rows),
        "template",
        {1: "genuine (1)", 0: "impostor (0)"},
    )

    protocol = IJBProtocol(
        root=root,
        name=name,
        crop_names=crop_names,
        template_ids=template_ids,
        media_ids=tid_mid[2].to_numpy(dtype=np.int64),
        landmarks=values[:, :10].astype(np.float32).reshape(-1, 5, 2),
        detector_scores=values[:, 10].astype(np.float32),
        pairs=pairs,
        pair_labels=labels.astype(np.int8),
        one_to_n={path.stem[len(name) + 1 :]: _read_one_to_n(path, known, tid_path.name) for path in _one_to_n_paths(meta, name)},
    )
    if check_images:
        _check_images(protocol, tid_path)
    return protocol


def write_ijb(
    root: str | os.PathLike[str],
    name: str,
    crop_names: Sequence[str] | np.ndarray,
    template_ids: np.ndarray,
    media_ids: np.ndarray,
    landmarks: np.ndarray,
    detector_scores: np.ndarray,
    pairs: np.ndarray,
    pair_labels: np.ndarray,
    one_to_n: Mapping[str, Sequence[tuple[int, int, str]]] | None = None,
) -> None:
    """Write the ``meta/`` files of an IJB_release-layout protocol, byte for byte as published.

    Args:
        root: protocol directory; files go to ``root/meta/{name}_*``. Images are the caller's job
            (``root/loose_crop/<crop name>``).
        name: meta file prefix, e.g. "ijbs".
        crop_names: (N,) image file names.
        template_ids, media_ids: (N,) integers.
        landmarks: (N, 5, 2) x, y in loose-crop pixels; written with 3 decimals.
        detector_scores: (N,); written with 3 decimals.
        pairs: (P, 2) template ids; pair_labels: (P,) 1 genuine, 0 impostor.
        one_to_n: per csv stem suffix (e.g. "1N_gallery_G1") rows (template_id, subject_id, filename),
            one per image; written as ``meta/{name}_{key}.csv`` with header TEMPLATE_ID,SUBJECT_ID,FILENAME.
    """
    meta = Path(root) / "meta"
    names = [str(n) for n in crop_names]
    count = len(names)
    template_ids = np.asarray(template_ids, dtype=np.int64)
    media_ids = np.asarray(media_ids, dtype=np.int64)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    detector_scores = np.asarray(detector_scores, dtype=np.float64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    pair_labels = np.asarray(pair_labels, dtype=np.int64)
    if count == 0:
        raise ValueError("an IJB protocol needs at least one crop")
    if template_ids.shape != (count,) or media_ids.shape != (count,) or detector_scores.shape != (count,):
        raise ValueError(f"template_ids, media_ids and detector_scores must have shape ({count},)")
    if landmarks.shape != (count, 5, 2):
        raise ValueError(f"landmarks must have shape ({count}, 5, 2), got {landmarks.shape}")
    if pair_labels.shape != (len(pairs),) or not np.isin(pair_labels, (0, 1)).all():
        raise ValueError(f"pair_labels must be {len(pairs)} values in {{0, 1}}")
    for crop in names:
        # The files are split on whitespace and the csv on commas, so such names would not read back.
        if not crop or any(c.isspace() or c in ',"' for c in crop):
            raise ValueError(f"crop name {crop!r} is empty or contains whitespace, a comma or a quote")

    atomic_write_text(
        meta / f"{name}_{_TID_MID.suffix}",
        "".join(f"{n} {t} {m}\n" for n, t, m in zip(names, template_ids.tolist(), media_ids.tolist())),
    )
    rows = np.concatenate([landmarks.reshape(count, 10), detector_scores[:, None]], axis=1).tolist()
    atomic_write_text(
        meta / f"{name}_{_POINTS.suffix}",
        "".join(n + "".join(f" {v:.3f}" for v in row) + "\n" for n, row in zip(names, rows)),
    )
    atomic_write_bytes(meta / f"{name}_{_PAIRS.suffix}", _pair_lines(pairs, pair_labels))
    for key, entries in sorted((one_to_n or {}).items()):
        if not re.fullmatch(r"1N_[A-Za-z0-9_]+", key):
            raise ValueError(f"1:N list key {key!r} must look like '1N_gallery_G1'")
        lines = [ONE_TO_N_HEADER]
        for template, subject, filename in entries:
            if any(c in ',"\r\n' for c in filename):
                raise ValueError(f"1:N file name {filename!r} contains a comma, a quote or a line break")
            lines.append(f"{int(template)},{int(subject)},{filename}")
        atomic_write_text(meta / f"{name}_{key}.csv", "\n".join(lines) + "\n")


def _pair_lines(pairs: np.ndarray, labels: np.ndarray) -> bytes:
    """The pair file's text, ``"t1 t2 label\\n"`` per pair, for (P, 2) template ids and (P,) labels in {0, 1}.

    Built as one byte matrix (P, 2 W + 4), W the widest id: each id's decimal digits padded with NUL, the
    separators and the label, then the NULs dropped. IJB pair files hold millions of lines, and formatting
    them one by one in Python cost seconds (bench_synth); this is the same text.
    """
    if len(pairs) == 0:
        return b""
    ids, index = np.unique(pairs, return_inverse=True)
    digits = np.array([str(t).encode() for t in ids.tolist()]).view(np.uint8).reshape(len(ids), -1)
    width = digits.shape[1]
    index = index.reshape(-1, 2)
    lines = np.zeros((len(pairs), 2 * width + 4), dtype=np.uint8)
    lines[:, :width] = digits[index[:, 0]]
    lines[:, width] = ord(" ")
    lines[:, width + 1 : 2 * width + 1] = digits[index[:, 1]]
    lines[:, 2 * width + 1] = ord(" ")
    lines[:, 2 * width + 2] = ord("0") + labels.astype(np.uint8)
    lines[:, 2 * width + 3] = ord("\n")
    return lines[lines != 0].tobytes()


def _read_text_table(path: Path, layout: _TextLayout) -> pd.DataFrame:
    """Parse a whitespace-separated meta file with the C parser; columns are numbered 0..k-1."""
    if not path.is_file():
        raise DataFormatError(
            path,
            "meta file is missing",
            expected=f"the IJB_release layout with {path.parent.name}/{path.name} ({layout.expected})",
            fix="point root at the directory holding loose_crop/ and meta/, and pass name= when the meta files"
            " are not prefixed with the lowercased directory name",
        )
    dtypes = {i: _DTYPES[kind] for i, kind in enumerate(layout.kinds)}
    try:
        _, table = read_table(path, dtypes)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({i: pd.Series([], dtype=dtype) for i, dtype in dtypes.items()})
    except DataFormatError:
        raise
    except (ValueError, OverflowError) as exc:  # ParserError is a ValueError
        _fail_at_first_bad_line(path, layout, str(exc).strip())
    if table.shape[1] != len(layout.kinds):
        _fail_at_first_bad_line(path, layout, f"the file has {table.shape[1]} columns")
    return table


def _fail_at_first_bad_line(path: Path, layout: _TextLayout, reason: str) -> NoReturn:
    """Scan ``path`` line by line and raise for its first bad line (or, failing that, for the file)."""
    for number, text in iter_text_lines(path):
        problem = _line_problem(split_fields(text), layout.kinds)
        if problem:
            raise DataFormatError(path, problem, line=number, expected=layout.expected, fix=_FIX_LINE)
    raise DataFormatError(path, f"file cannot be parsed ({reason})", expected=layout.expected, fix=_FIX_LINE)


def _line_problem(fields: list[str], kinds: tuple[str, ...]) -> str | None:
    """What is wrong with one split line, or None."""
    if len(fields) != len(kinds):
        return f"line has {len(fields)} fields, not {len(kinds)}"
    for column, (text, kind) in enumerate(zip(fields, kinds), start=1):
        if kind in ("int", "label") and not _INTEGER.fullmatch(text):
            return f"field {column} ({text!r}) is not an integer id"
        if kind == "label" and int(text) not in (0, 1):
            return f"label {text!r} is not 0 or 1"
        if kind == "float":
            try:
                number = float(text)
            except ValueError:
                return f"field {column} ({text!r}) is not a number"
            if not np.isfinite(number):
                return f"field {column} ({text!r}) is not a finite number"
    return None


def _check_repeated_crops(tid_path: Path, tid_mid: pd.DataFrame, points_path: Path, points: np.ndarray) -> None:
    """A crop may be listed by several templates (one image reused, as IJB reuses media), but once per
    template, always with the same media id and the same landmarks and score; raise naming both lines."""
    names = tid_mid[0]
    twice_in_template = tid_mid.duplicated(subset=[0, 1]).to_numpy()
    if twice_in_template.any():
        second = int(np.argmax(twice_in_template))
        same = (names == names.iloc[second]) & (tid_mid[1] == tid_mid[1].iloc[second])
        first = int(np.argmax(same.to_numpy()))
        first_line, second_line = _line_numbers(tid_path, [first, second])
        raise DataFormatError(
            tid_path,
            f"crop {names.iloc[second]!r} is listed twice in template {tid_mid[1].iloc[second]}, on lines"
            f" {first_line} and {second_line}",
            line=second_line,
            expected="each crop once per template",
            fix="delete one of the two lines (and its line of the landmarks file)",
        )
    repeated = names.duplicated().to_numpy()
    if not repeated.any():
        return
    first_row = pd.Series(np.arange(len(names))).groupby(names.to_numpy()).transform("first").to_numpy()
    for what, path, values in (
        ("media id", tid_path, tid_mid[2].to_numpy()[:, None]),
        ("landmarks and score", points_path, points),
    ):
        differs = repeated & (values != values[first_row]).any(axis=1)
        if differs.any():
            second = int(np.argmax(differs))
            first_line, second_line = _line_numbers(path, [int(first_row[second]), second])
            raise DataFormatError(
                path,
                f"crop {names.iloc[second]!r} has another {what} on line {second_line} than on line {first_line}",
                line=second_line,
                expected="one image: the same media id, landmarks and score in every template",
                fix="give the two images different names, or copy the first line's values",
            )


def _check_in_step(tid_path: Path, tid_names: np.ndarray, points_path: Path, point_names: np.ndarray) -> None:
    """Row i of face_tid_mid and of name_5pts_score must name the same image."""
    common = min(len(tid_names), len(point_names))
    differs = tid_names[:common] != point_names[:common]
    fix = "take both files from the same release; they list the crops in the same order"
    if differs.any():
        row = int(np.argmax(differs))
        tid_line, points_line = _line_numbers(tid_path, [row])[0], _line_numbers(points_path, [row])[0]
        raise DataFormatError(
            points_path,
            f"row {row + 1} names {str(point_names[row])!r} but row {row + 1} of {tid_path.name} (line {tid_line})"
            f" names {str(tid_names[row])!r}",
            line=points_line,
            expected=f"row i to describe the same crop as row i of {tid_path.name}",
            fix=fix,
        )
    if len(tid_names) != len(point_names):
        longer, shorter = (tid_path, points_path) if len(tid_names) > len(point_names) else (points_path, tid_path)
        raise DataFormatError(
            longer,
            f"{longer.name} has {max(len(tid_names), len(point_names))} rows but {shorter.name} has {common};"
            " this row has no counterpart",
            line=_line_numbers(longer, [common])[0],
            expected="the two files to have one row per crop each",
            fix=fix,
        )


def _is_known(known: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Boolean mask (same shape as ``ids``) of ids present in the sorted, non-empty array ``known``."""
    # A lookup table over the id range checks IJB-C's 31M pair ids in ~0.1 s, far faster than sorting;
    # numpy's default handles the odd protocol whose ids span too wide a range for a table.
    return np.isin(ids, known, kind="table" if known[-1] - known[0] < 1 << 26 else None)


def _one_to_n_paths(meta: Path, name: str) -> list[Path]:
    """The optional ``{name}_1N_*.csv`` files, sorted by name."""
    prefix = f"{name}_1N_"
    return sorted(p for p in meta.iterdir() if p.name.startswith(prefix) and p.suffix == ".csv" and p.is_file())


def _read_one_to_n(path: Path, known: np.ndarray, tid_name: str) -> OneToNList:
    """Read a 1:N csv (header row; column 0 template id, column 1 subject id, one row per image)."""
    expected = f"a header row like '{ONE_TO_N_HEADER}', then rows 'template_id,subject_id,...'"
    number, header = next(iter_text_lines(path), (1, ""))
    if not header or _INTEGER.fullmatch(header.split(",")[0].strip()):
        raise DataFormatError(
            path,
            f"line {number} is not a header row",
            line=number,
            expected=expected,
            fix=f"insert the header '{ONE_TO_N_HEADER}' as the first line",
        )
    try:
        _, table = read_table(path, {0: np.int64, 1: np.int64}, sep=",", header_lines=1, usecols=[0, 1])
    except pd.errors.EmptyDataError:
        table = pd.DataFrame({0: pd.Series([], dtype=np.int64), 1: pd.Series([], dtype=np.int64)})
    except DataFormatError:
        raise
    except (ValueError, OverflowError) as exc:
        _fail_at_first_bad_csv_row(path, expected, str(exc).strip())
    templates, subjects = table[0].to_numpy(), table[1].to_numpy()

    empty = ~_is_known(known, templates)
    if empty.any():
        row = int(np.argmax(empty))
        raise DataFormatError(
            path,
            f"template {templates[row]} has no crops in {tid_name} (empty template)",
            line=_line_numbers(path, [row], header_lines=1)[0],
            expected=f"every 1:N template to have at least one crop in {tid_name}",
            fix="use meta files of one release, or delete the rows of that template",
        )
    pairs = table.drop_duplicates()
    conflict = pairs[0].duplicated().to_numpy()
    if conflict.any():
        row = int(pairs.index[np.argmax(conflict)])
        template = templates[row]
        first = int(np.argmax(templates == template))
        first_line, line = _line_numbers(path, [first, row], header_lines=1)
        raise DataFormatError(
            path,
            f"template {template} has subject {subjects[row]} here but subject {subjects[first]} on line {first_line}",
            line=line,
            expected="one subject per template",
            fix="correct the subject id, or give the template rows their own template id",
        )
    _, first_rows = np.unique(templates, return_index=True)
    order = np.sort(first_rows)
    return OneToNList(template_ids=templates[order].astype(np.int64), subject_ids=subjects[order].astype(np.int64))


def _fail_at_first_bad_csv_row(path: Path, expected: str, reason: str) -> NoReturn:
    """Scan a 1:N csv row by row and raise for its first bad row (or, failing that, for the file)."""
    for number, line in itertools.islice(iter_text_lines(path), 1, None):  # after the header
        row = next(csv.reader([line]))
        if len(row) < 2:
            problem = f"row has {len(row)} field(s), needs at least 2"
        else:
            bad = [f"{what} {text!r}" for what, text in zip(("template id", "subject id"), row) if not _INTEGER.fullmatch(text)]
            problem = f"{' and '.join(bad)} is not an integer" if bad else None
        if problem:
            raise DataFormatError(path, problem, line=number, expected=expected, fix=_FIX_LINE)
    raise DataFormatError(path, f"file cannot be parsed ({reason})", expected=expected, fix=_FIX_LINE)


def _check_images(protocol: IJBProtocol, tid_path: Path) -> None:
    """Open every crop and verify its header; raise for the first missing or unreadable one."""
    for i in range(protocol.num_crops):
        path = protocol.crop_path(i)
        problem = _image_problem(path)
        if problem:
            line = _line_numbers(tid_path, [i])[0]
            raise DataFormatError(path, f"{problem[0]} (listed on line {line} of {tid_path.name})", fix=problem[1])


def _image_problem(path: Path) -> tuple[str, str] | None:
    """(problem, fix) when ``path`` is missing or not a readable image, else None; reads only the header."""
    try:
        with Image.open(path) as image:
            image.verify()
    except FileNotFoundError:
        return "image file is missing", "restore the file or remove its rows from the protocol"
    except (OSError, SyntaxError, ValueError) as exc:  # PIL reports corrupt data with any of these
        return f"image cannot be decoded ({exc})", "replace the file with a valid JPEG or PNG"
    return None
