"""The IJB_release-layout reader and writer: published lines, round trips and every malformed-file error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dmlfaces.data import ijb
from dmlfaces.data.align import align_face
from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.ijb import IJBProtocol, read_ijb, write_ijb

# Lines in the published format; the first of each file is the FORMATS.md example.
TID_MID = ["1.jpg 1 69544", "2.jpg 1 69544", "3.jpg 11065 70001", "4.jpg 11065 70002", "5.jpg 20 70003"]
POINTS = [
    "1.jpg 46.060 62.026 87.785 60.323 68.851 77.656 52.162 99.875 86.450 98.648 0.999",
    "2.jpg 45.000 60.000 85.000 61.000 66.000 80.000 50.000 98.000 84.000 97.000 0.870",
    "3.jpg 40.500 55.250 80.125 55.000 60.000 75.000 45.000 95.000 78.000 94.000 0.500",
    "4.jpg 47.000 63.000 88.000 61.000 69.000 78.000 53.000 100.000 87.000 99.000 0.950",
    "5.jpg 44.000 58.000 84.000 58.000 64.000 76.000 48.000 96.000 82.000 95.000 0.010",
]
PAIRS = ["1 11065 1", "1 20 0", "11065 20 0"]
GALLERY = ["TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID", "1,7,1.jpg,100", "20,9,5.jpg,101", "1,7,2.jpg,102"]
PROBE = ["TEMPLATE_ID,SUBJECT_ID,FILENAME", "11065,7,3.jpg", "11065,7,4.jpg"]


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _make(
    tmp_path: Path,
    tid_mid: list[str] = TID_MID,
    points: list[str] = POINTS,
    pairs: list[str] = PAIRS,
    csvs: dict[str, list[str]] | None = None,
    images: bool = True,
) -> Path:
    """An IJBC directory with the given meta lines and 128x128 JPEG crops for 1.jpg ... 5.jpg."""
    root = tmp_path / "IJBC"
    _lines(root / "meta" / "ijbc_face_tid_mid.txt", tid_mid)
    _lines(root / "meta" / "ijbc_name_5pts_score.txt", points)
    _lines(root / "meta" / "ijbc_template_pair_label.txt", pairs)
    for stem, rows in (csvs or {}).items():
        _lines(root / "meta" / f"ijbc_{stem}.csv", rows)
    if images:
        (root / "loose_crop").mkdir()
        rng = np.random.default_rng(0)
        for k in range(1, 6):
            pixels = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "loose_crop" / f"{k}.jpg", quality=90)
    return root


def _replaced(lines: list[str], index: int, new: str) -> list[str]:
    return lines[:index] + [new] + lines[index + 1 :]


def test_reads_the_published_lines(tmp_path: Path) -> None:
    protocol = read_ijb(_make(tmp_path, images=False))
    assert isinstance(protocol, IJBProtocol)
    assert protocol.name == "ijbc" and protocol.num_crops == 5
    assert protocol.crop_names.tolist() == ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"]
    assert protocol.template_ids.dtype == np.int64 and protocol.template_ids.tolist() == [1, 1, 11065, 11065, 20]
    assert protocol.media_ids.tolist() == [69544, 69544, 70001, 70002, 70003]
    assert protocol.landmarks.shape == (5, 5, 2) and protocol.landmarks.dtype == np.float32
    np.testing.assert_array_equal(
        protocol.landmarks[0],
        np.array([[46.060, 62.026], [87.785, 60.323], [68.851, 77.656], [52.162, 99.875], [86.450, 98.648]], dtype=np.float32),
    )
    assert protocol.detector_scores.dtype == np.float32
    np.testing.assert_allclose(protocol.detector_scores, [0.999, 0.87, 0.5, 0.95, 0.01], rtol=1e-6)
    assert protocol.pairs.dtype == np.int64 and protocol.pairs.tolist() == [[1, 11065], [1, 20], [11065, 20]]
    assert protocol.pair_labels.dtype == np.int8 and protocol.pair_labels.tolist() == [1, 0, 0]
    assert protocol.unique_templates.tolist() == [1, 20, 11065]
    assert protocol.one_to_n == {}
    assert protocol.crop_path(2) == tmp_path / "IJBC" / "loose_crop" / "3.jpg"


def test_name_can_be_given_explicitly(tmp_path: Path) -> None:
    root = _make(tmp_path, images=False)
    renamed = root.rename(tmp_path / "elsewhere")
    assert read_ijb(renamed, name="ijbc").num_crops == 5
    with pytest.raises(DataFormatError, match="elsewhere_face_tid_mid.txt"):
        read_ijb(renamed)


def test_reads_one_to_n_lists_one_row_per_template(tmp_path: Path) -> None:
    root = _make(tmp_path, csvs={"1N_gallery_G1": GALLERY, "1N_probe_mixed": PROBE}, images=False)
    protocol = read_ijb(root)
    assert sorted(protocol.one_to_n) == ["1N_gallery_G1", "1N_probe_mixed"]
    gallery = protocol.one_to_n["1N_gallery_G1"]
    assert gallery.template_ids.dtype == np.int64 and gallery.template_ids.tolist() == [1, 20]
    assert gallery.subject_ids.dtype == np.int64 and gallery.subject_ids.tolist() == [7, 9]
    assert protocol.one_to_n["1N_probe_mixed"].template_ids.tolist() == [11065]


def test_crops_load_align_and_pass_the_image_check(tmp_path: Path) -> None:
    protocol = read_ijb(_make(tmp_path), check_images=True)
    crop = protocol.load_crop(0)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(protocol.aligned_crop(0), align_face(crop, protocol.landmarks[0]))
    assert protocol.aligned_crop(1, size=64).shape == (64, 64, 3)


def _random_protocol(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n, p = 30, 20
    templates = np.sort(rng.choice(np.arange(1, 500), 8, replace=False))
    # Distinct pairs of distinct templates (the reader refuses repeats), some in descending order.
    first, second = np.triu_indices(8, k=1)
    chosen = rng.choice(len(first), p, replace=False)
    pairs = templates[np.stack([first[chosen], second[chosen]], axis=1)]
    pairs[::3] = pairs[::3, ::-1]
    template_ids = templates[rng.integers(0, 8, n)]
    landmarks = rng.uniform(0, 200, (n, 5, 2)).astype(np.float32)
    landmarks[0] = [[46.06, 62.026], [87.785, 60.323], [68.851, 77.656], [52.162, 99.875], [86.45, 98.648]]
    scores = rng.uniform(0, 1, n).astype(np.float32)
    scores[0] = 0.999
    names = np.array([f"{i + 1}.jpg" for i in range(n)])
    return dict(
        crop_names=names,
        template_ids=template_ids,
        media_ids=rng.integers(1, 10**5, n),
        landmarks=landmarks,
        detector_scores=scores,
        pairs=pairs,
        pair_labels=rng.integers(0, 2, p).astype(np.int8),
        one_to_n={
            "1N_gallery_G1": [(int(t), int(t) % 3, str(names[i])) for i, t in enumerate(template_ids) if t % 2],
            "1N_probe_mixed": [(int(t), int(t) % 3, str(names[i])) for i, t in enumerate(template_ids) if not t % 2],
        },
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    data = _random_protocol(0)
    write_ijb(tmp_path / "IJBS", "ijbs", **data)
    protocol = read_ijb(tmp_path / "IJBS")
    assert protocol.name == "ijbs"
    assert protocol.crop_names.tolist() == data["crop_names"].tolist()
    np.testing.assert_array_equal(protocol.template_ids, data["template_ids"])
    np.testing.assert_array_equal(protocol.media_ids, data["media_ids"])
    np.testing.assert_allclose(protocol.landmarks, data["landmarks"], atol=5e-4)
    np.testing.assert_allclose(protocol.detector_scores, data["detector_scores"], atol=5e-4)
    np.testing.assert_array_equal(protocol.pairs, data["pairs"])
    np.testing.assert_array_equal(protocol.pair_labels, data["pair_labels"])
    for key, rows in data["one_to_n"].items():
        first = dict.fromkeys(t for t, _, _ in rows)
        assert protocol.one_to_n[key].template_ids.tolist() == list(first)
        assert protocol.one_to_n[key].subject_ids.tolist() == [t % 3 for t in first]


def test_writer_output_is_the_published_format_and_deterministic(tmp_path: Path) -> None:
    data = _random_protocol(1)
    write_ijb(tmp_path / "a", "ijbs", **data)
    write_ijb(tmp_path / "b", "ijbs", **data)
    files = sorted(p.name for p in (tmp_path / "a" / "meta").iterdir())
    assert files == [
        "ijbs_1N_gallery_G1.csv",
        "ijbs_1N_probe_mixed.csv",
        "ijbs_face_tid_mid.txt",
        "ijbs_name_5pts_score.txt",
        "ijbs_template_pair_label.txt",
    ]
    for name in files:
        assert (tmp_path / "a" / "meta" / name).read_bytes() == (tmp_path / "b" / "meta" / name).read_bytes()
    meta = tmp_path / "a" / "meta"
    assert meta.joinpath("ijbs_name_5pts_score.txt").read_text().splitlines()[0] == POINTS[0]
    first_tid = meta.joinpath("ijbs_face_tid_mid.txt").read_text().splitlines()[0]
    assert first_tid == f"1.jpg {data['template_ids'][0]} {data['media_ids'][0]}"
    pair_line = meta.joinpath("ijbs_template_pair_label.txt").read_text().splitlines()[0]
    assert pair_line == f"{data['pairs'][0, 0]} {data['pairs'][0, 1]} {data['pair_labels'][0]}"
    csv_lines = meta.joinpath("ijbs_1N_gallery_G1.csv").read_text().splitlines()
    t, s, f = data["one_to_n"]["1N_gallery_G1"][0]
    assert csv_lines[:2] == ["TEMPLATE_ID,SUBJECT_ID,FILENAME", f"{t},{s},{f}"]


@pytest.mark.parametrize("count", [0, 1, 2_000])
def test_pair_file_text_is_the_line_by_line_formatting(count: int) -> None:
    """The vectorised pair file equals formatting each pair, ids of every width and sign included."""
    rng = np.random.default_rng(count)
    pairs = rng.integers(-60, 300_000, (count, 2))
    labels = rng.integers(0, 2, count)
    expected = "".join(f"{a} {b} {y}\n" for (a, b), y in zip(pairs.tolist(), labels.tolist()))
    assert ijb._pair_lines(pairs, labels) == expected.encode()


def test_writer_rejects_inconsistent_arrays(tmp_path: Path) -> None:
    data = _random_protocol(2)
    with pytest.raises(ValueError, match="landmarks"):
        write_ijb(tmp_path, "ijbs", **{**data, "landmarks": data["landmarks"][:, :4]})
    with pytest.raises(ValueError, match="crop name"):
        write_ijb(tmp_path, "ijbs", **{**data, "crop_names": np.array(["a b.jpg"] + list(data["crop_names"][1:]))})
    assert not (tmp_path / "meta").exists()


Mutation = Callable[[Path], Path]


def _latin1(root: Path, suffix: str) -> Path:
    """Re-save one meta file as Latin-1, after naming crop 3 '3é.jpg' in it (a pair file keeps its own text)."""
    path = root / "meta" / f"ijbc_{suffix}"
    text = path.read_text(encoding="utf-8")
    path.write_bytes((text if "é" in text else text.replace("3.jpg", "3é.jpg")).encode("latin-1"))
    return root


ERROR_CASES: dict[str, tuple[Mutation, str, int | None, str]] = {
    # case: (build the broken protocol, file named in the message, line, words in the message)
    "missing meta file": (
        lambda d: _make(d, images=False).joinpath("meta", "ijbc_template_pair_label.txt").unlink() or d / "IJBC",
        "ijbc_template_pair_label.txt",
        None,
        "missing",
    ),
    "tid_mid extra column": (
        lambda d: _make(d, tid_mid=_replaced(TID_MID, 2, "3.jpg 11065 70001 9"), images=False),
        "ijbc_face_tid_mid.txt",
        3,
        "4 fields",
    ),
    "tid_mid missing column": (
        lambda d: _make(d, tid_mid=_replaced(TID_MID, 3, "4.jpg 11065"), images=False),
        "ijbc_face_tid_mid.txt",
        4,
        "2 fields",
    ),
    "tid_mid every line 4 columns": (
        lambda d: _make(d, tid_mid=[line + " 0" for line in TID_MID], images=False),
        "ijbc_face_tid_mid.txt",
        1,
        "4 fields",
    ),
    "pairs missing column": (
        lambda d: _make(d, pairs=_replaced(PAIRS, 1, "1 20"), images=False),
        "ijbc_template_pair_label.txt",
        2,
        "2 fields",
    ),
    "5pts 11 columns": (
        lambda d: _make(d, points=_replaced(POINTS, 3, POINTS[3].rsplit(" ", 1)[0]), images=False),
        "ijbc_name_5pts_score.txt",
        4,
        "11 fields",
    ),
    "non-integer template id": (
        lambda d: _make(d, tid_mid=_replaced(TID_MID, 1, "2.jpg x1 69544"), images=False),
        "ijbc_face_tid_mid.txt",
        2,
        "not an integer",
    ),
    "non-integer pair id": (
        lambda d: _make(d, pairs=_replaced(PAIRS, 2, "11065 2.5 0"), images=False),
        "ijbc_template_pair_label.txt",
        3,
        "not an integer",
    ),
    "label not 0 or 1": (
        lambda d: _make(d, pairs=_replaced(PAIRS, 2, "11065 20 2"), images=False),
        "ijbc_template_pair_label.txt",
        3,
        "not 0 or 1",
    ),
    "landmark not a number": (
        lambda d: _make(d, points=_replaced(POINTS, 1, POINTS[1].replace("85.000", "eye")), images=False),
        "ijbc_name_5pts_score.txt",
        2,
        "not a number",
    ),
    "landmark nan": (
        lambda d: _make(d, points=_replaced(POINTS, 4, POINTS[4].replace("0.010", "nan")), images=False),
        "ijbc_name_5pts_score.txt",
        5,
        "not a finite number",
    ),
    "detector score infinite": (
        lambda d: _make(d, points=_replaced(POINTS, 3, POINTS[3].replace("0.950", "inf")), images=False),
        "ijbc_name_5pts_score.txt",
        4,
        "not a finite number",
    ),
    "crop twice in one template": (
        lambda d: _make(d, tid_mid=_replaced(TID_MID, 3, "2.jpg 1 69544"), points=_replaced(POINTS, 3, POINTS[1]), images=False),
        "ijbc_face_tid_mid.txt",
        4,
        "crop '2.jpg' is listed twice in template 1, on lines 2 and 4",
    ),
    "reused crop with another media id": (
        lambda d: _make(
            d, tid_mid=_replaced(TID_MID, 3, "2.jpg 11065 70002"), points=_replaced(POINTS, 3, POINTS[1]), images=False
        ),
        "ijbc_face_tid_mid.txt",
        4,
        "crop '2.jpg' has another media id on line 4 than on line 2",
    ),
    "reused crop with other landmarks": (
        lambda d: _make(
            d,
            tid_mid=_replaced(TID_MID, 3, "2.jpg 11065 69544"),
            points=_replaced(POINTS, 3, POINTS[1].replace("0.870", "0.500")),
            images=False,
        ),
        "ijbc_name_5pts_score.txt",
        4,
        "crop '2.jpg' has another landmarks and score on line 4 than on line 2",
    ),
    "5pts names another image": (
        lambda d: _make(d, points=_replaced(POINTS, 2, POINTS[2].replace("3.jpg", "9.jpg")), images=False),
        "ijbc_name_5pts_score.txt",
        3,
        "row 3 names '9.jpg' but row 3 of ijbc_face_tid_mid.txt (line 3) names '3.jpg'",
    ),
    "5pts out of step after a blank line": (
        lambda d: _make(d, points=[POINTS[0], ""] + [POINTS[2], POINTS[1]] + POINTS[3:], images=False),
        "ijbc_name_5pts_score.txt",
        3,
        "row 2 names '3.jpg'",
    ),
    "5pts row missing": (lambda d: _make(d, points=POINTS[:4], images=False), "ijbc_face_tid_mid.txt", 5, "no counterpart"),
    "pair names an unknown template": (
        lambda d: _make(d, pairs=_replaced(PAIRS, 1, "1 999 0"), images=False),
        "ijbc_template_pair_label.txt",
        2,
        "template 999",
    ),
    "pair names an unknown first template": (
        lambda d: _make(d, pairs=_replaced(PAIRS, 2, "888 20 0"), images=False),
        "ijbc_template_pair_label.txt",
        3,
        "template 888",
    ),
    "self-pair": (
        lambda d: _make(d, pairs=PAIRS + ["20 20 0"], images=False),
        "ijbc_template_pair_label.txt",
        4,
        "pair 20 20 compares template 20 with itself",
    ),
    "pair listed twice": (
        lambda d: _make(d, pairs=PAIRS + ["1 20 0"], images=False),
        "ijbc_template_pair_label.txt",
        4,
        "pair 1 20 is listed twice, on lines 2 and 4",
    ),
    "pair listed in both orders": (
        lambda d: _make(d, pairs=PAIRS + ["20 1 0"], images=False),
        "ijbc_template_pair_label.txt",
        4,
        "pair 1 20 on line 2 is listed again in the other order on line 4",
    ),
    "pair listed with both labels": (
        lambda d: _make(d, pairs=PAIRS + ["1 20 1"], images=False),
        "ijbc_template_pair_label.txt",
        4,
        "pair 1 20 is listed with both labels: impostor (0) on line 2 and genuine (1) on line 4",
    ),
    "pair in both orders with both labels, after a blank line": (
        lambda d: _make(d, pairs=[PAIRS[0], ""] + PAIRS[1:] + ["11065 1 0"], images=False),
        "ijbc_template_pair_label.txt",
        5,
        "genuine (1) on line 1 and impostor (0) on line 5",
    ),
    "tid_mid not UTF-8": (
        lambda d: _latin1(_make(d, images=False), "face_tid_mid.txt"),
        "ijbc_face_tid_mid.txt",
        3,
        "byte 0xe9 is not valid UTF-8",
    ),
    "5pts not UTF-8": (
        lambda d: _latin1(_make(d, images=False), "name_5pts_score.txt"),
        "ijbc_name_5pts_score.txt",
        3,
        "byte 0xe9 is not valid UTF-8",
    ),
    "pairs not UTF-8": (
        lambda d: _latin1(_make(d, pairs=_replaced(PAIRS, 1, "1 20 0 # café"), images=False), "template_pair_label.txt"),
        "ijbc_template_pair_label.txt",
        2,
        "byte 0xe9 is not valid UTF-8",
    ),
    "1:N not UTF-8": (
        lambda d: _latin1(
            _make(d, csvs={"1N_probe_mixed": _replaced(PROBE, 1, "11065,7,3é.jpg")}, images=False), "1N_probe_mixed.csv"
        ),
        "ijbc_1N_probe_mixed.csv",
        2,
        "byte 0xe9 is not valid UTF-8",
    ),
    "1:N empty template": (
        lambda d: _make(d, csvs={"1N_gallery_G1": GALLERY[:2] + ["777,8,x.jpg,5"] + GALLERY[2:]}, images=False),
        "ijbc_1N_gallery_G1.csv",
        3,
        "empty template",
    ),
    "1:N template with two subjects": (
        lambda d: _make(d, csvs={"1N_gallery_G1": GALLERY + ["1,8,2.jpg,103"]}, images=False),
        "ijbc_1N_gallery_G1.csv",
        5,
        "line 2",
    ),
    "1:N non-integer subject": (
        lambda d: _make(d, csvs={"1N_probe_mixed": _replaced(PROBE, 2, "11065,seven,4.jpg")}, images=False),
        "ijbc_1N_probe_mixed.csv",
        3,
        "subject id 'seven' is not an integer",
    ),
    "1:N header missing": (
        lambda d: _make(d, csvs={"1N_probe_mixed": PROBE[1:]}, images=False),
        "ijbc_1N_probe_mixed.csv",
        1,
        "header",
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_malformed_protocols_name_file_and_line(tmp_path: Path, case: str) -> None:
    build, filename, line, words = ERROR_CASES[case]
    root = build(tmp_path)
    with pytest.raises(DataFormatError) as caught:
        read_ijb(root)
    error = caught.value
    assert Path(error.path).name == filename
    assert error.line == line
    message = str(error)
    assert filename in message and words in message and "Fix:" in message
    if line is not None:
        assert f"{filename}:{line}:" in message
    if "UTF-8" in words:
        assert "re-save the file as UTF-8" in message


def test_every_way_of_re_saving_the_meta_files_reads_the_same(tmp_path: Path, resave: Callable[[str], bytes]) -> None:
    csvs = {"1N_gallery_G1": GALLERY, "1N_probe_mixed": PROBE}
    clean = read_ijb(_make(tmp_path / "clean", csvs=csvs, images=False))
    root = _make(tmp_path / "resaved", csvs=csvs, images=False)
    for path in (root / "meta").iterdir():
        path.write_bytes(resave(path.read_text(encoding="utf-8")))
    protocol = read_ijb(root)
    for field in ("crop_names", "template_ids", "media_ids", "landmarks", "detector_scores", "pairs", "pair_labels"):
        np.testing.assert_array_equal(getattr(protocol, field), getattr(clean, field), err_msg=field)
    assert protocol.one_to_n.keys() == clean.one_to_n.keys()
    for key, lst in clean.one_to_n.items():
        np.testing.assert_array_equal(protocol.one_to_n[key].template_ids, lst.template_ids)
        np.testing.assert_array_equal(protocol.one_to_n[key].subject_ids, lst.subject_ids)


def test_lines_are_numbered_alike_in_every_way_of_re_saving(tmp_path: Path, resave: Callable[[str], bytes]) -> None:
    data = resave("".join(line + "\n" for line in PAIRS + ["20 1 0"]))
    root = _make(tmp_path, images=False)
    (root / "meta" / "ijbc_template_pair_label.txt").write_bytes(data)
    # Where the re-saving moved the clean file's lines 2 and 4, as an editor numbers them.
    lines = [n for n, text in enumerate(data.decode().splitlines(), start=1) if text.strip(" \t\ufeff")]
    with pytest.raises(DataFormatError, match=f"label.txt:{lines[3]}: pair 1 20 on line {lines[1]} is listed again"):
        read_ijb(root)


def test_synthetic_protocol_has_no_repeated_pairs(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")  # read_ijb refuses self-pairs and repeated pairs
    assert len(protocol.pairs) and (protocol.pairs[:, 0] < protocol.pairs[:, 1]).all()


def test_image_check_reports_a_missing_crop(tmp_path: Path) -> None:
    root = _make(tmp_path)
    (root / "loose_crop" / "4.jpg").unlink()
    read_ijb(root)  # images are only opened when asked
    with pytest.raises(DataFormatError, match=r"4\.jpg: image file is missing \(listed on line 4 of ijbc_face_tid_mid"):
        read_ijb(root, check_images=True)


def test_image_check_reports_an_unreadable_crop(tmp_path: Path) -> None:
    root = _make(tmp_path)
    (root / "loose_crop" / "2.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataFormatError, match=r"2\.jpg: image cannot be decoded .*line 2 of ijbc_face_tid_mid"):
        read_ijb(root, check_images=True)


def _with_points(tmp_path: Path, changes: dict[int, str]) -> IJBProtocol:
    """The 5-crop protocol with the landmarks of some rows replaced (row -> 10 space-separated numbers)."""
    points = [
        f"{line.split(' ')[0]} {changes[i]} {line.rsplit(' ', 1)[1]}" if i in changes else line for i, line in enumerate(POINTS)
    ]
    return read_ijb(_make(tmp_path, points=points))


OUTSIDE = "46.060 62.026 187.785 60.323 68.851 77.656 52.162 99.875 86.450 98.648"  # right eye right of the 128 px crop
COINCIDENT = "46.060 62.026 46.060 62.026 68.851 77.656 52.162 99.875 86.450 98.648"
COLLINEAR = "10.000 10.000 20.000 20.000 30.000 30.000 40.000 40.000 50.000 50.000"


def test_bad_landmarks_are_found_before_any_alignment_naming_crop_line_and_file(tmp_path: Path) -> None:
    protocol = _with_points(tmp_path, {1: OUTSIDE, 3: COINCIDENT, 4: COLLINEAR})
    problems = protocol.landmark_problems()
    assert list(problems) == [1, 3, 4]
    for row, words in (
        (1, "'2.jpg': landmark 2 (right eye) at (187.785, 60.323) lies outside the 128x128 image"),
        (3, "'4.jpg': landmarks 1 (left eye) and 2 (right eye) coincide"),
        (4, "'5.jpg': the 5 landmarks lie on one line"),
    ):
        error = problems[row]
        assert Path(error.path).name == "ijbc_name_5pts_score.txt" and error.line == row + 1
        assert f"ijbc_name_5pts_score.txt:{row + 1}: crop {words}" in str(error) and "--skip-bad-landmarks" in str(error)
    with pytest.raises(DataFormatError, match=r"5pts_score\.txt:2: crop '2\.jpg': .* \(and 2 more crops with bad landmarks\)"):
        protocol.check_landmarks()
    protocol.check_landmarks({})  # nothing given, nothing raised
    assert protocol.aligned_crop(0).shape == (112, 112, 3)
    # Aligning a bad crop anyway refuses it by name instead of returning a (mostly) black crop.
    with pytest.raises(DataFormatError, match=r"5pts_score\.txt:2: crop '2\.jpg': landmark 2 \(right eye\)"):
        protocol.aligned_crop(1)


def test_landmark_lines_count_blank_lines(tmp_path: Path) -> None:
    points = [POINTS[0], "", POINTS[1], f"3.jpg {COINCIDENT} 0.500"] + POINTS[3:]
    problems = read_ijb(_make(tmp_path, points=points)).landmark_problems()
    assert list(problems) == [2] and problems[2].line == 4


def test_landmark_check_names_a_missing_crop_image(tmp_path: Path) -> None:
    root = _make(tmp_path)
    (root / "loose_crop" / "3.jpg").unlink()
    with pytest.raises(DataFormatError, match=r"3\.jpg: image file is missing"):
        read_ijb(root).landmark_problems()


def test_a_crop_reused_by_templates_reads_back_with_its_rows(tmp_path: Path) -> None:
    """IJB reuses media across templates; a crop listed by two templates keeps a row in each."""
    root = _make(tmp_path, tid_mid=_replaced(TID_MID, 3, "2.jpg 11065 69544"), points=_replaced(POINTS, 3, POINTS[1]))
    protocol = read_ijb(root, check_images=True)
    assert protocol.crop_names.tolist() == ["1.jpg", "2.jpg", "3.jpg", "2.jpg", "5.jpg"]
    assert protocol.template_ids.tolist() == [1, 1, 11065, 11065, 20]
    assert protocol.unique_crops.tolist() == [0, 1, 2, 4] and protocol.num_crops == 5
    assert np.array_equal(protocol.landmarks[3], protocol.landmarks[1])


def test_writer_output_with_reused_crops_reads_back_intact(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    names = np.array(["1.jpg", "2.jpg", "1.jpg", "3.jpg", "2.jpg"])
    templates = np.array([4, 4, 9, 9, 12])
    media = np.array([70, 71, 70, 72, 71])
    crop_points = {n: rng.uniform(20, 90, (5, 2)).round(3) for n in np.unique(names)}
    crop_scores = {n: float(rng.uniform(0.1, 0.99)) for n in np.unique(names)}
    write_ijb(
        tmp_path / "IJBR",
        "ijbr",
        names,
        templates,
        media,
        np.stack([crop_points[n] for n in names]),
        np.array([crop_scores[n] for n in names]),
        np.array([[4, 9], [4, 12]]),
        np.array([1, 0]),
    )
    protocol = read_ijb(tmp_path / "IJBR")
    assert protocol.crop_names.tolist() == names.tolist()
    assert protocol.template_ids.tolist() == templates.tolist() and protocol.media_ids.tolist() == media.tolist()
    assert protocol.unique_crops.tolist() == [0, 1, 3]
    assert np.allclose(protocol.landmarks, np.stack([crop_points[n] for n in names]), atol=1e-3)
