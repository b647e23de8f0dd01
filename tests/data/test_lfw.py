"""LFW pairs.txt reader and writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.lfw import read_lfw_pairs, write_lfw_pairs

# Two sets of two pairs each, tab separated as in the release.
PAIRS = "2\t2\nAbel_Pacheco\t1\t4\nAkhmed_Zakayev\t1\t3\nAbdel_Madi_Shabneh\t1\tDean_Barker\t1\nAbdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1\n" \
        "Slobodan_Milosevic\t2\t3\nSylvester_Stallone\t1\t2\nAli_Abbas\t1\tCarlos_Arroyo\t1\nAmy_Cotton\t1\tMartin_Sheen\t2\n"


def test_reads_matched_and_mismatched_pairs_with_folds(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text(PAIRS)
    pairs = read_lfw_pairs(tmp_path / "pairs.txt")
    assert pairs.labels.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert pairs.folds.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert pairs.left[0] == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert pairs.right[0].name == "Abel_Pacheco_0004.jpg"
    assert pairs.right[3] == tmp_path / "lfw" / "Giancarlo_Fisichella" / "Giancarlo_Fisichella_0001.jpg"


def test_write_round_trip(tmp_path: Path) -> None:
    sets = [([("A_B", 1, 2)], [("A_B", 1, "C_D", 3)]), ([("E_F", 2, 3)], [("G_H", 1, "A_B", 2)])]
    write_lfw_pairs(tmp_path / "pairs.txt", sets)
    assert (tmp_path / "pairs.txt").read_text().splitlines()[:2] == ["2\t1", "A_B\t1\t2"]
    pairs = read_lfw_pairs(tmp_path / "pairs.txt", lfw_root=tmp_path / "images")
    assert pairs.labels.tolist() == [1, 0, 1, 0]
    assert pairs.right[1] == tmp_path / "images" / "C_D" / "C_D_0003.jpg"


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("ten\t300\n", 1, "header"),
        ("1\t1\nA\t1\t2\n", 1, "1 pair lines after the header"),
        ("1\t1\nA\t1\tB\t2\nA\t1\t2\n", 2, "4 fields in set 1"),
        ("1\t1\nA\t1\tx\nA\t1\tB\t2\n", 2, "image number 'x'"),
        ("1\t1\nA\t1\t2\nA\t1\tB\n", 3, "3 fields in set 1"),
    ],
)
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    (tmp_path / "pairs.txt").write_text(text)
    with pytest.raises(DataFormatError) as error:
        read_lfw_pairs(tmp_path / "pairs.txt")
    assert error.value.line == line and message in str(error.value)


def test_missing_image_when_checked(tmp_path: Path) -> None:
    (tmp_path / "pairs.txt").write_text("1\t1\nA\t1\t2\nA\t1\tB\t1\n")
    for rel in ("A/A_0001.jpg", "A/A_0002.jpg"):
        (tmp_path / "lfw" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "lfw" / rel)
    read_lfw_pairs(tmp_path / "pairs.txt")
    with pytest.raises(DataFormatError, match="B_0001.jpg: image file is missing"):
        read_lfw_pairs(tmp_path / "pairs.txt", check_images=True)
