"""What a data set's text files may contain, for every reader alike, and the pair-list check they share.

The policy: UTF-8, with or without a byte-order mark (stripped); LF, CRLF and CR line ends alike; trailing
spaces and tabs ignored; blank lines ignored wherever they are (a header is the first non-blank lines); in
whitespace-separated formats any run of spaces and tabs separates fields. Bytes that are not UTF-8 are
refused naming the file and the line: guessing another encoding would silently change names.

``iter_text_lines`` applies it line by line; ``read_table`` applies it through pandas' C parser, which the
large files need and which splits lines and fields exactly so. Both number lines as an editor does.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from dmlfaces.data.errors import DataFormatError

SPACES = " \t"  # pandas' C parser separates whitespace fields on these two only, so this module does too
_FIELD_BREAK = re.compile(r"[ \t]+")


def iter_text_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line end and trailing spaces) for every non-blank line.

    Raises:
        DataFormatError: the file is not UTF-8, naming the line of the first bad byte.
    """
    with _open(path) as handle:
        try:
            yield from _non_blank(handle)
        except UnicodeDecodeError:
            raise not_utf8(path) from None


def _open(path: str | os.PathLike[str]) -> TextIO:
    # newline=None reads LF, CRLF and CR alike; utf-8-sig drops a leading byte-order mark.
    return open(path, encoding="utf-8-sig", newline=None)


def _non_blank(handle: TextIO) -> Iterator[tuple[int, str]]:
    """(line number, line) for the non-blank lines of an open file, reading no further than each one."""
    for number, text in enumerate(handle, start=1):
        if text := text.rstrip("\n").rstrip(SPACES):
            yield number, text


def read_text_lines(path: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """``iter_text_lines`` as a list."""
    return list(iter_text_lines(path))


def split_fields(line: str) -> list[str]:
    """The fields of a whitespace-separated line: any run of spaces and tabs separates them."""
    line = line.strip(SPACES)
    return _FIELD_BREAK.split(line) if line else []


def read_table(
    path: str | os.PathLike[str],
    dtype: Mapping[int, object],
    *,
    sep: str = "whitespace",
    header_lines: int = 0,
    usecols: Sequence[int] | None = None,
) -> tuple[list[tuple[int, str]], pd.DataFrame]:
    """Parse a text table under the policy with pandas' C parser; columns are numbered 0..k-1.

    Args:
        dtype: column -> dtype.
        sep: "whitespace" (any run of spaces and tabs) or a one-character separator such as ",".
        header_lines: how many non-blank lines open the file before the data (returned, not parsed).
    Returns:
        The header lines as ``iter_text_lines`` gives them, and the data.
    Raises:
        DataFormatError: the file is not UTF-8. pandas' own errors (EmptyDataError, ParserError and
            ValueError for a field that does not convert) pass through for the caller to explain.
    """
    whitespace = sep == "whitespace"
    options = dict(  # quotes are data in whitespace formats (as in split_fields), csv quoting elsewhere
        sep=r"\s+" if whitespace else sep,
        header=None,
        engine="c",
        dtype=dict(dtype),
        usecols=usecols,
        quoting=csv.QUOTE_NONE if whitespace else csv.QUOTE_MINIMAL,
        na_filter=False,
    )
    try:
        if not header_lines:  # pandas reads a path twice as fast as a handle, BOM included
            return [], pd.read_csv(path, encoding="utf-8", **options)
        # pandas' skiprows miscounts blank CR-ended lines, so the header is read off the handle instead.
        with _open(path) as handle:
            header = list(itertools.islice(_non_blank(handle), header_lines))
            return header, pd.read_csv(handle, **options)
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def not_utf8(path: str | os.PathLike[str]) -> DataFormatError:
    """The error for a file that is not UTF-8, naming the line of its first bad byte."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
        return DataFormatError(
            path,
            f"byte 0x{data[exc.start]:02x} is not valid UTF-8 (the file is in another encoding)",
            line=line,
            expected="UTF-8 text, with or without a byte-order mark",
            fix="re-save the file as UTF-8 (e.g. 'iconv -f latin1 -t utf-8'), or restore it from the release",
        )
    return DataFormatError(path, "file changed while it was read", fix="read it again once nothing writes to it")


def line_numbers(path: str | os.PathLike[str], rows: Sequence[int], header_lines: int = 0) -> list[int]:
    """1-based line numbers of 0-based data rows, the rows counted from the first non-blank line after
    ``header_lines`` non-blank ones (as ``read_table`` counts them)."""
    wanted = {int(r) for r in rows}
    found: dict[int, int] = {}
    for row, (number, _) in enumerate(itertools.islice(iter_text_lines(path), header_lines, None)):
        if row in wanted:
            found[row] = number
            if len(found) == len(wanted):
                break
    return [found[int(r)] for r in rows]


def check_pairs(
    path: str | os.PathLike[str],
    first: np.ndarray,
    second: np.ndarray,
    labels: np.ndarray,
    lines: Callable[[list[int]], list[int]],
    noun: str,
    label_names: Mapping[int, str],
) -> None:
    """Refuse a pair list with a self-pair, a pair listed twice (in either order) or with both labels.

    Args:
        first, second: (P,) what each pair compares (ids or names); labels: (P,) integer labels.
        lines: 0-based rows -> their 1-based lines; only called for the rows an error names.
        noun: what the ids are, e.g. "template"; label_names: label -> word, e.g. {1: "genuine"}.
    Raises:
        DataFormatError: naming the file and the line (both lines for a repeated pair).
    """
    first, second, labels = np.asarray(first), np.asarray(second), np.asarray(labels)
    if not len(first):
        return
    a, b = _small_codes(first, second)
    same = a == b
    if same.any():
        row = int(np.argmax(same))
        raise DataFormatError(
            path,
            f"pair {first[row]} {second[row]} compares {noun} {first[row]} with itself",
            line=lines([row])[0],
            expected=f"two different {noun}s per pair",
            fix="delete the line or correct one of its ids",
        )
    # One int64 per unordered pair: sorting it finds repeats in any order in a second for IJB-C's 15.7M pairs.
    keys = np.minimum(a, b) * (int(max(a.max(), b.max())) + 1) + np.maximum(a, b)
    ordered = np.sort(keys)
    if not (ordered[1:] == ordered[:-1]).any():
        return
    later = int(np.argmax(pd.Series(keys).duplicated().to_numpy()))
    earlier = int(np.argmax(keys == keys[later]))
    earlier_line, later_line = lines([earlier, later])
    pair = f"{first[earlier]} {second[earlier]}"
    if labels[earlier] != labels[later]:
        problem = (
            f"pair {pair} is listed with both labels: {label_names[int(labels[earlier])]} on line"
            f" {earlier_line} and {label_names[int(labels[later])]} on line {later_line}"
        )
        fix = "delete the line with the wrong label"
    elif a[earlier] == a[later]:
        problem = f"pair {pair} is listed twice, on lines {earlier_line} and {later_line}"
        fix = "delete one of the two lines"
    else:
        problem = (
            f"pair {pair} on line {earlier_line} is listed again in the other order on line {later_line}"
            f" ({first[later]} {second[later]})"
        )
        fix = "delete one of the two lines"
    raise DataFormatError(
        path, problem, line=later_line, expected=f"each pair of {noun}s once, in one order, with one label", fix=fix
    )


def _small_codes(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two sides as int64 codes below 2**31 (equal exactly where the values are), so that a pair of
    codes fits one int64."""
    if first.dtype.kind in "iu" and second.dtype.kind in "iu":
        low = min(int(first.min()), int(second.min()))
        if max(int(first.max()), int(second.max())) - low < 1 << 31:  # ids: shifting is enough and cheap
            return first.astype(np.int64) - low, second.astype(np.int64) - low
    codes, _ = pd.factorize(np.concatenate([first, second]))
    return codes[: len(first)].astype(np.int64), codes[len(first) :].astype(np.int64)
