"""The shared text policy and pair check: both ways of reading (line by line, pandas) agree on every variant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.text import check_pairs, iter_text_lines, line_numbers, read_table, read_text_lines, split_fields

CLEAN = "count 3\nname a b\nx.jpg 1 2\ny.jpg 3 4\nz.jpg 5 6\n"
DTYPES = {0: str, 1: np.int64, 2: np.int64}


def test_fields_are_split_on_runs_of_spaces_and_tabs() -> None:
    assert split_fields(" a\t b  c \t") == ["a", "b", "c"] and split_fields(" \t ") == []


@pytest.mark.parametrize("header_lines", [0, 2])
def test_every_way_of_re_saving_reads_as_the_clean_file(
    tmp_path: Path, resave: Callable[[str], bytes], header_lines: int
) -> None:
    text = CLEAN if header_lines else CLEAN.split("\n", 2)[2]
    (tmp_path / "clean.txt").write_text(text)
    (tmp_path / "resaved.txt").write_bytes(resave(text))
    clean = read_text_lines(tmp_path / "clean.txt")
    lines = read_text_lines(tmp_path / "resaved.txt")
    assert [split_fields(line) for _, line in lines] == [split_fields(line) for _, line in clean]
    # The line numbers are an editor's: those of the re-saved file's non-blank lines.
    editor = resave(text).decode("utf-8").splitlines()
    assert [number for number, _ in lines] == [n for n, line in enumerate(editor, 1) if line.strip(" \t\ufeff")]
    header, table = read_table(tmp_path / "resaved.txt", DTYPES, header_lines=header_lines)
    assert header == lines[:header_lines]
    _, expected = read_table(tmp_path / "clean.txt", DTYPES, header_lines=header_lines)
    pd.testing.assert_frame_equal(table, expected)
    assert table[0].tolist() == ["x.jpg", "y.jpg", "z.jpg"]
    # Data rows map back to their lines as the line-by-line reader numbers them.
    assert line_numbers(tmp_path / "resaved.txt", [2, 0], header_lines) == [lines[header_lines + 2][0], lines[header_lines][0]]


def test_blank_cr_lines_before_the_data_do_not_shift_the_header(tmp_path: Path) -> None:
    # pandas' skiprows miscounts these; the header is read off the handle instead.
    (tmp_path / "t.txt").write_bytes(b"\r\rcount 1\r\rname a b\rx.jpg 1 2\r")
    header, table = read_table(tmp_path / "t.txt", DTYPES, header_lines=2)
    assert header == [(3, "count 1"), (5, "name a b")] and table.values.tolist() == [["x.jpg", 1, 2]]


def test_comma_separated_tables_follow_the_policy(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(b"\xef\xbb\xbfA,B,C\r\n\r\n1,2,x.jpg \r\n3,4,y.jpg\r\n\r\n")
    header, table = read_table(tmp_path / "t.csv", {0: np.int64, 1: np.int64}, sep=",", header_lines=1, usecols=[0, 1])
    assert header == [(1, "A,B,C")] and table.values.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("header_lines", [0, 1])
def test_bytes_that_are_not_utf8_are_refused_naming_file_and_line(tmp_path: Path, line_end: str, header_lines: int) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(line_end.join(["h 1 2", "", "a.jpg 1 2", "caf\xe9.jpg 3 4", "b.jpg 5 6", ""]).encode("latin-1"))
    for read in (lambda: read_text_lines(path), lambda: read_table(path, DTYPES, header_lines=header_lines)):
        with pytest.raises(DataFormatError) as error:
            read()
        assert error.value.path == str(path) and error.value.line == 4
        message = str(error.value)
        assert "t.txt:4: byte 0xe9 is not valid UTF-8" in message and "re-save the file as UTF-8" in message


def test_a_bad_byte_after_a_cr_at_a_line_end_counts_the_new_line(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_bytes(b"a 1 2\r\xff 3 4\r")
    with pytest.raises(DataFormatError, match=r"t\.txt:2: byte 0xff"):
        list(iter_text_lines(tmp_path / "t.txt"))


def _pair_error(first: list, second: list, labels: list[int]) -> DataFormatError | None:
    lines = [10 + 2 * row for row in range(len(first))]  # as if every pair line followed a blank one
    try:
        check_pairs(
            "p.txt",
            np.array(first),
            np.array(second),
            np.array(labels),
            lambda rows: [lines[r] for r in rows],
            "template",
            {1: "genuine", 0: "impostor"},
        )
    except DataFormatError as exc:
        return exc
    return None


@pytest.mark.parametrize("big", [0, 1 << 40])  # ids spanning more than 2**31 take the factorising path
def test_pair_faults_name_both_lines(big: int) -> None:
    ids = [1 + big, 2, 3]
    assert _pair_error([ids[0], ids[0]], [ids[1], ids[2]], [1, 0]) is None
    assert _pair_error([], [], []) is None
    cases = [
        ([ids[0], ids[1]], [ids[1], ids[1]], [1, 0], 12, f"pair {ids[1]} {ids[1]} compares template {ids[1]} with itself"),
        (
            [ids[0], ids[2], ids[0]],
            [ids[1], ids[1], ids[1]],
            [1, 0, 1],
            14,
            f"pair {ids[0]} {ids[1]} is listed twice, on lines 10 and 14",
        ),
        (
            [ids[0], ids[1]],
            [ids[1], ids[0]],
            [0, 0],
            12,
            f"pair {ids[0]} {ids[1]} on line 10 is listed again in the other order on line 12 ({ids[1]} {ids[0]})",
        ),
        (
            [ids[0], ids[0]],
            [ids[1], ids[1]],
            [1, 0],
            12,
            f"pair {ids[0]} {ids[1]} is listed with both labels: genuine on line 10 and impostor on line 12",
        ),
    ]
    for first, second, labels, line, words in cases:
        error = _pair_error(first, second, labels)
        assert error is not None and error.line == line and f"p.txt:{line}: {words}" in str(error), words
        assert "Fix:" in str(error)


def test_pair_check_compares_names() -> None:
    error = _pair_error(["A_0001", "B_0001", "A_0002"], ["A_0002", "C_0001", "A_0001"], [1, 0, 1])
    assert error is not None
    assert "pair A_0001 A_0002 on line 10 is listed again in the other order on line 14" in str(error)
