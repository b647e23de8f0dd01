"""LFW pairs.txt reader and writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.lfw import read_lfw_pairs, write_lfw_pairs

# Two sets of two pairs each, tab separated as in the release (names and numbers from its first lines).
PAIRS = (
    "2\t2\n"
    "Abel_Pacheco\t1\t4\nAkhmed_Zakayev\t1\t3\n"
    "Abdel_Madi_Shabneh\t1\tDean_Barker\t1\nAbdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1\n"
    "Slobodan_Milosevic\t2\t3\nSylvester_Stallone\t1\t2\n"
    "Ali_Abbas\t1\tCarlos_Arroyo\t1\nAmy_Cotton\t1\tMartin_Sheen\t2\n"
)


def test_reads_matched_and_mismatched_pairs_with_folds(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text(PAIRS)
    pairs = read_lfw_pairs(tmp_path / "pairs.txt")
    assert pairs.labels.dtype == "int8" and pairs.labels.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert pairs.folds.dtype == "int16" and pairs.folds.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert pairs.left[0] == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert pairs.right[0] == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg"
    assert pairs.left[3] == tmp_path / "lfw" / "Abdel_Madi_Shabneh" / "Abdel_Madi_Shabneh_0001.jpg"
    assert pairs.right[3] == tmp_path / "lfw" / "Giancarlo_Fisichella" / "Giancarlo_Fisichella_0001.jpg"
    assert pairs.right[7].name == "Martin_Sheen_0002.jpg" and len(pairs.left) == len(pairs.right) == 8


def test_any_whitespace_trailing_blank_lines_and_dev_header(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text(PAIRS.replace("\t", "  ") + "\n\n")
    assert read_lfw_pairs(tmp_path / "pairs.txt").labels.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    # pairsDevTrain.txt opens with the pair count alone: one set.
    (tmp_path / "pairsDevTrain.txt").write_text("1\nA_B\t1\t2\nA_B\t1\tC_D\t3\n")
    dev = read_lfw_pairs(tmp_path / "pairsDevTrain.txt")
    assert dev.labels.tolist() == [1, 0] and dev.folds.tolist() == [0, 0]


def test_write_round_trip(tmp_path: Path) -> None:
    sets = [([("A_B", 1, 2)], [("A_B", 1, "C_D", 3)]), ([("E_F", 2, 3)], [("G_H", 1, "A_B", 12)])]
    write_lfw_pairs(tmp_path / "pairs.txt", sets)
    assert (tmp_path / "pairs.txt").read_text() == "2\t1\nA_B\t1\t2\nA_B\t1\tC_D\t3\nE_F\t2\t3\nG_H\t1\tA_B\t12\n"
    pairs = read_lfw_pairs(tmp_path / "pairs.txt", lfw_root=tmp_path / "images")
    assert pairs.labels.tolist() == [1, 0, 1, 0] and pairs.folds.tolist() == [0, 0, 1, 1]
    assert pairs.right[1] == tmp_path / "images" / "C_D" / "C_D_0003.jpg"
    assert pairs.right[3] == tmp_path / "images" / "A_B" / "A_B_0012.jpg"


def test_writer_rejects_sets_the_header_cannot_describe(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_lfw_pairs(tmp_path / "pairs.txt", [])
    with pytest.raises(ValueError):
        write_lfw_pairs(tmp_path / "pairs.txt", [([("A", 1, 2)], [])])
    assert not (tmp_path / "pairs.txt").exists()


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("", 1, "header ''"),
        ("ten\t300\n", 1, "header 'ten\\t300'"),
        ("10\t0\n", 1, "header"),
        ("1\t1\nA\t1\t2\n", 1, "1 pair lines after the header"),
        ("1\t1\nA\t1\t2\nA\t1\tB\t2\nA\t1\t2\n", 1, "3 pair lines after the header"),
        ("1\t1\nA\t1\tB\t2\nA\t1\t2\n", 2, "4 fields in set 1"),
        ("1\t1\nA\t1\t2\nA\t1\tB\n", 3, "3 fields in set 1"),
        ("1\t1\n\nA\t1\tB\t1\nA\t1\t2\n", 3, "4 fields in set 1"),  # a blank line is skipped, not a pair
        ("2\t1\nA\t1\t2\nA\t1\tB\t2\nA\t1\tB\t2\nA\t1\t2\n", 4, "4 fields in set 2"),
        ("1\t1\nA\t1\tx\nA\t1\tB\t2\n", 2, "image number 'x'"),
        ("1\t1\nA\t1\t2\nA\t0\tB\t2\n", 3, "image number '0'"),
        ("1\t1\nA\t1\t2\nA\t1\tB\t-2\n", 3, "image number '-2'"),
        ("\n1\t1\nA\t1\t2\n", 2, "1 pair lines after the header"),
        # Pair faults: the file and both lines.
        ("1\t1\nA\t3\t3\nA\t1\tB\t2\n", 2, "pair A_0003 A_0003 compares image A_0003 with itself"),
        ("2\t1\nA\t1\t2\nA\t1\tB\t2\nA\t1\t2\nC\t1\tB\t1\n", 4, "pair A_0001 A_0002 is listed twice, on lines 2 and 4"),
        (
            "2\t1\nA\t1\t2\nA\t1\tB\t2\nA\t2\t1\nC\t1\tB\t1\n",
            4,
            "pair A_0001 A_0002 on line 2 is listed again in the other order on line 4 (A_0002 A_0001)",
        ),
        (
            "2\t1\nA\t1\t2\nA\t1\tB\t2\nC\t1\t2\nB\t2\tA\t1\n",
            5,
            "pair A_0001 B_0002 on line 3 is listed again in the other order on line 5",
        ),
        (
            "2\t1\nA\t1\t2\nA\t1\tB\t2\nC\t1\t2\nA\t2\tA\t1\n",
            5,
            "pair A_0001 A_0002 is listed with both labels: matched on line 2 and mismatched on line 5",
        ),
        ("1\t1\nA\t1\t2\nA\t1\tA\t3\n", 3, "mismatched pair names A twice"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    (tmp_path / "pairs.txt").write_text(text)
    with pytest.raises(DataFormatError) as error:
        read_lfw_pairs(tmp_path / "pairs.txt")
    assert error.value.path == str(tmp_path / "pairs.txt") and error.value.line == line
    assert f"pairs.txt:{line}: {message}" in str(error.value)


def test_every_way_of_re_saving_reads_the_same(tmp_path: Path, resave: Callable[[str], bytes]) -> None:
    (tmp_path / "clean.txt").write_text(PAIRS)
    (tmp_path / "pairs.txt").write_bytes(resave(PAIRS))
    clean, pairs = read_lfw_pairs(tmp_path / "clean.txt"), read_lfw_pairs(tmp_path / "pairs.txt")
    assert pairs.left == clean.left and pairs.right == clean.right
    assert pairs.labels.tolist() == clean.labels.tolist() and pairs.folds.tolist() == clean.folds.tolist()


def test_bytes_that_are_not_utf8_are_refused_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_bytes(PAIRS.replace("Dean_Barker", "Dean_Bárker").encode("latin-1"))
    with pytest.raises(DataFormatError) as error:
        read_lfw_pairs(tmp_path / "pairs.txt")
    assert error.value.line == 4
    assert "pairs.txt:4: byte 0xe1 is not valid UTF-8" in str(error.value)
    assert "re-save the file as UTF-8" in str(error.value)


def test_missing_pairs_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="pairs.txt: file is missing"):
        read_lfw_pairs(tmp_path / "pairs.txt")


def test_missing_or_broken_image_when_checked(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text("1\t1\nA\t1\t2\nA\t1\tB\t1\n")
    for rel in ("A/A_0001.jpg", "A/A_0002.jpg"):
        (tmp_path / "lfw" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "lfw" / rel)
    read_lfw_pairs(tmp_path / "pairs.txt")  # images are only opened when asked to check them
    with pytest.raises(DataFormatError, match="B_0001.jpg: image file is missing"):
        read_lfw_pairs(tmp_path / "pairs.txt", check_images=True)
    (tmp_path / "lfw" / "B").mkdir()
    (tmp_path / "lfw" / "B" / "B_0001.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataFormatError, match="B_0001.jpg: image cannot be decoded"):
        read_lfw_pairs(tmp_path / "pairs.txt", check_images=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "lfw" / "B" / "B_0001.jpg")
    assert read_lfw_pairs(tmp_path / "pairs.txt", check_images=True).labels.tolist() == [1, 0]
