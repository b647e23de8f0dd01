"""SynthFaces generation: determinism, stable identities, disjoint splits, the real layouts."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dmlfaces import io
from dmlfaces.data import synth
from dmlfaces.data.align import ARCFACE_TEMPLATE
from dmlfaces.data.celeba import CELEBA_ATTRIBUTES, read_celeba
from dmlfaces.data.faces import QUALITY_WEIGHTS
from dmlfaces.data.folders import read_clip_folder, read_image_folder
from dmlfaces.data.ijb import read_ijb
from dmlfaces.errors import OutputPathError


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_trees_and_worker_count_does_not_matter(tiny_data: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    synth.synthesize(again, preset="tiny", seed=0, workers=1)
    first, second = _tree_bytes(tiny_data), _tree_bytes(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_different_seed_differs(tiny_data: Path, tmp_path: Path) -> None:
    other = tmp_path / "seed1"
    synth.synthesize(other, preset="tiny", seed=1, workers=2)
    same_name = "IJBS/loose_crop/1.jpg"
    assert (other / same_name).read_bytes() != (tiny_data / same_name).read_bytes()
    assert (other / "ground_truth.csv").read_text() != (tiny_data / "ground_truth.csv").read_text()


def test_adding_people_changes_no_existing_person(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bigger = dataclasses.replace(synth.PRESETS["tiny"], train_identities=14, celeba_identities=11)
    monkeypatch.setitem(synth.PRESETS, "tiny_plus", bigger)
    out = tmp_path / "bigger"
    synth.synthesize(out, preset="tiny_plus", seed=0, workers=2)
    for identity_dir in sorted((tiny_data / "train").iterdir()):
        match, mismatch, errors = filecmp.cmpfiles(
            identity_dir, out / "train" / identity_dir.name, [p.name for p in identity_dir.iterdir()], shallow=False
        )
        assert mismatch == [] and errors == []
    assert len(list((out / "train").iterdir())) == 14


def test_readers_load_the_output_and_counts_match_the_manifest(tiny_data: Path) -> None:
    manifest = json.loads((tiny_data / synth.MANIFEST).read_text())
    counts = manifest["counts"]
    protocol = read_ijb(tiny_data / "IJBS", check_images=True)
    assert protocol.name == "ijbs"
    assert len(protocol.unique_crops) == counts["ijb_crops"] < protocol.num_crops == counts["ijb_rows"]
    assert len(protocol.unique_templates) == counts["ijb_templates"]
    assert int(protocol.pair_labels.sum()) == counts["ijb_genuine_pairs"] > 0
    assert set(protocol.one_to_n) == {"1N_gallery_G1", "1N_gallery_G2", "1N_probe_mixed", "1N_probe_shared_media"}
    celeba = read_celeba(tiny_data / "celeba", check_images=True)
    assert len(celeba.attributes) == counts["celeba_images"]
    assert list(celeba.attributes.columns) == list(CELEBA_ATTRIBUTES)
    folder = read_image_folder(tiny_data / "train")
    assert len(folder.identities) == counts["train_identities"]
    assert len(folder.paths) == counts["train_images"]
    clips = read_clip_folder(tiny_data / "train_clips")
    assert len(clips.clip_identities) == counts["train_clips"] and len(clips.paths) == counts["train_clip_frames"]


def test_training_clips_are_aligned_bursts_of_training_identities(tiny_data: Path) -> None:
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    frames = truth[truth["split"] == "train_clips"]
    assert set(frames["person_id"]) == set(truth.loc[truth["split"] == "train", "person_id"])
    clip_of = frames["path"].str.rsplit("/", n=1).str[0]
    for _, clip in frames.groupby(clip_of):
        assert 2 <= len(clip) <= 40 and clip["frame"].tolist() == list(range(len(clip)))
        assert clip["image_yaw"].std() < 0.2 and clip["image_expression"].nunique() == 1
    # Aligned like the training images (small framing shifts), not loose like the IJB crops.
    shift = truth.groupby("split")["image_shift_x"].std()
    assert shift["train_clips"] < 2 * shift["train"] and shift["ijbs"] > 2 * shift["train_clips"]


def test_ijb_protocol_is_consistent_with_ground_truth(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    crops = truth[truth["split"] == "ijbs"].set_index(truth[truth["split"] == "ijbs"]["path"].str.rsplit("/", n=1).str[-1])
    assert crops.index.is_unique and (crops["template_id"] == -1).all()  # one row per image; templates: protocol
    assert set(crops.index) == set(protocol.crop_names)
    crops = crops.loc[protocol.crop_names]
    assert np.array_equal(crops["media_id"].to_numpy(), protocol.media_ids)
    # Media are reused across a subject's templates, a crop always with all the other frames of its media.
    templates, subjects = protocol.template_subjects()
    subject_of = dict(zip(templates, subjects))
    media_templates = pd.Series(protocol.template_ids).groupby(protocol.media_ids).nunique()
    assert media_templates.max() > 1
    rows = pd.DataFrame({"template": protocol.template_ids, "media": protocol.media_ids, "crop": protocol.crop_names})
    frames_per_media = rows.groupby(["template", "media"])["crop"].nunique().groupby("media").nunique()
    assert (frames_per_media == 1).all()
    # Every template is one person's; genuine pairs join templates of one person sharing no media, impostor
    # pairs templates of two people.
    assert (crops.groupby(protocol.template_ids)["person_id"].nunique() == 1).all()
    media_of = rows.groupby("template")["media"].agg(frozenset)
    same = np.array([subject_of[a] == subject_of[b] for a, b in protocol.pairs])
    assert np.array_equal(same, protocol.pair_labels.astype(bool))
    assert not any(media_of[a] & media_of[b] for a, b in protocol.pairs[same])
    # Landmarks in the 5pts file are those of the rendered faces, and detector scores track quality.
    assert np.allclose(protocol.landmarks[:, 0, 0], crops["landmark_0_x"].to_numpy(), atol=1e-3)
    assert np.corrcoef(protocol.detector_scores, crops["quality"].to_numpy())[0, 1] > 0.9
    # Templates are not numbered contiguously, as in the real IJB-C.
    assert np.any(np.diff(protocol.unique_templates) > 1)


def test_default_preset_has_ijb_b_power() -> None:
    """The default protocol's sizes (no rendering needed): issue 14's targets."""
    preset = synth.PRESETS["default"]
    ijb = synth._ijb_protocol(0, preset)
    _, labels = synth._ijb_pairs(0, preset, ijb)
    assert preset.ijb_identities >= 600 and labels.sum() >= 10_000 and (labels == 0).sum() >= 5_000_000
    assert len(ijb.crops) < 13_000  # reuse, not more rendering: IJB rows outnumber the images


@pytest.mark.parametrize("seed", range(5))
def test_impostor_positions_are_the_cross_subject_cells_of_the_upper_triangle(seed: int) -> None:
    """The direct listing of impostor pairs equals filtering ``np.triu_indices`` by subject, as it replaced."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, rng.integers(1, 30))  # templates per subject, consecutive as in the protocol
    subjects = np.repeat(np.arange(len(sizes)), sizes)
    n = len(subjects)
    i, j = np.triu_indices(n, k=1)
    expected = np.flatnonzero(subjects[i] != subjects[j])
    starts = np.flatnonzero(np.r_[True, subjects[1:] != subjects[:-1]])
    ends = np.repeat(np.r_[starts[1:], n], np.diff(np.r_[starts, n]))
    positions = synth._impostor_positions(ends)
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_array_equal(synth._triangle_pairs(positions, n), np.stack([i[expected], j[expected]], axis=1))


def test_templates_mix_stills_and_clips_of_near_duplicate_frames(tiny_data: Path) -> None:
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    crops = truth[truth["split"] == "ijbs"]
    assert set(crops["media_kind"]) == {"still", "clip"}
    clip_lengths = crops[crops["media_kind"] == "clip"].groupby("media_id").size()
    assert clip_lengths.min() >= 2 and clip_lengths.max() <= 40
    clip = crops[crops["media_id"] == clip_lengths.idxmax()]
    assert clip["image_yaw"].std() < 0.2 and clip["image_expression"].nunique() == 1


def test_splits_have_disjoint_identities(tiny_data: Path) -> None:
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    persons = {split: set(group["person_id"]) for split, group in truth.groupby("split")}
    assert persons["train"].isdisjoint(persons["ijbs"])
    assert persons["train"].isdisjoint(persons["celeba"])
    assert persons["ijbs"].isdisjoint(persons["celeba"])
    assert persons["train_clips"] <= persons["train"]


def test_celeba_labels_follow_the_rendered_factors(tiny_data: Path) -> None:
    celeba = read_celeba(tiny_data / "celeba")
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    rows = truth[truth["split"] == "celeba"]
    rows = rows.set_index(rows["path"].str.rsplit("/", n=1).str[-1]).loc[celeba.attributes.index]
    attrs = celeba.attributes
    assert np.array_equal(attrs["Male"] == 1, rows["person_gender"] == "male")
    assert np.array_equal(attrs["Eyeglasses"] == 1, rows["image_glasses"])
    assert np.array_equal(attrs["No_Beard"] == -1, rows["image_beard"])
    assert np.array_equal(attrs["Smiling"] == 1, rows["image_expression"] == "smiling")
    assert np.array_equal(attrs["Young"] == 1, rows["person_age_group"] == "young")
    assert np.array_equal(attrs["Pale_Skin"] == 1, rows["person_skin_tone"] < 0.5)
    unrendered = [a for a in CELEBA_ATTRIBUTES if a not in synth.RENDERED_CELEBA_ATTRIBUTES]
    assert (attrs[unrendered] == -1).all().all()
    # Several images per identity, identity-disjoint partitions.
    assert celeba.identities.value_counts().min() >= 2
    assert celeba.partitions.groupby(celeba.identities).nunique().max() == 1


def test_quality_in_unit_interval_and_spread(tiny_data: Path) -> None:
    quality = pd.read_csv(tiny_data / "ground_truth.csv")["quality"]
    assert quality.between(0, 1).all()
    assert quality.max() - quality.min() > 0.5


def test_ground_truth_records_the_severities_the_quality_is_made_of(tiny_data: Path) -> None:
    truth = pd.read_csv(tiny_data / "ground_truth.csv")
    weighted = sum(weight * truth[f"severity_{name}"] for name, weight in QUALITY_WEIGHTS.items())
    np.testing.assert_allclose(truth["quality"], np.exp(-weighted), rtol=1e-9)


def test_training_crops_are_aligned_from_their_landmarks_like_the_ijb_crops_at_extraction(tiny_data: Path) -> None:
    truth = pd.read_csv(tiny_data / "ground_truth.csv")

    def landmarks(rows: pd.DataFrame) -> np.ndarray:
        return rows[[f"landmark_{i}_{a}" for i in range(5) for a in "xy"]].to_numpy().reshape(-1, 5, 2)

    template = ARCFACE_TEMPLATE.astype(np.float64)
    for split in ("train", "train_clips"):
        # A similarity warp fits 5 points only approximately (faces differ in shape), so the landmarks of
        # an aligned crop scatter around the template by a few pixels, and their mean sits on it.
        points = landmarks(truth[truth["split"] == split])
        assert np.abs(points.mean(axis=0) - template).max() < 2.0, split
        assert np.median(np.linalg.norm(points - template, axis=2)) < 4.0, split
    # The CelebA layout keeps its own framing (centred by the renderer, small shifts), as before.
    celeba = landmarks(truth[truth["split"] == "celeba"])
    assert np.median(np.linalg.norm(celeba - template, axis=2)) > np.median(
        np.linalg.norm(landmarks(truth[truth["split"] == "train"]) - template, axis=2)
    )


def test_refuses_to_overwrite_a_directory_that_is_not_synthfaces(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a SynthFaces output"):
        synth.synthesize(mine, preset="tiny")
    assert (mine / "thesis.tex").read_text() == "precious"


def _copy(tiny_data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "data"
    shutil.copytree(tiny_data, out)
    return out


def test_a_user_file_inside_an_earlier_output_stops_the_replacement_before_any_work(tiny_data: Path, tmp_path: Path) -> None:
    out = _copy(tiny_data, tmp_path)
    (out / "train" / "notes.txt").write_text("mine")
    before = _tree_bytes(out)
    with pytest.raises(OutputPathError, match=r"1 files SynthFaces did not write \(train/notes.txt\)"):
        synth.synthesize(out, preset="tiny", seed=1, workers=1)
    assert _tree_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_user_symlink_or_empty_folder_inside_an_earlier_output_is_foreign_too(tiny_data: Path, tmp_path: Path) -> None:
    out = _copy(tiny_data, tmp_path)
    (out / "train" / "link").symlink_to(tmp_path, target_is_directory=True)
    (out / "celeba" / "my_notes").mkdir()
    with pytest.raises(OutputPathError, match=r"2 files SynthFaces did not write \(celeba/my_notes, train/link\)"):
        synth.synthesize(out, preset="tiny", seed=1, workers=1)
    assert (out / "train" / "link").is_symlink() and (out / "celeba" / "my_notes").is_dir()


@pytest.mark.parametrize("name", [".", "..", "link"])
def test_an_out_that_is_no_directory_of_its_own_is_refused_before_any_work(tmp_path: Path, name: str) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OutputPathError, match="give the data set's own directory by name"):
        synth.synthesize(Path(tmp_path / name) if name == "link" else Path(name), preset="tiny")


def test_an_output_of_an_earlier_dmlfaces_is_replaced_only_by_the_files_it_held(tiny_data: Path, tmp_path: Path) -> None:
    """A manifest without a file inventory: its files must all be in the new output, else it is kept."""
    out = _copy(tiny_data, tmp_path)
    manifest = json.loads((out / synth.MANIFEST).read_text())
    del manifest["files"]
    (out / synth.MANIFEST).write_text(json.dumps(manifest))
    assert "no file inventory" in synth.outdated(out, "tiny", 0)
    (out / "results.csv").write_text("mine")
    with pytest.raises(OutputPathError, match="results.csv"):
        synth.synthesize(out, preset="tiny", seed=0, workers=2)
    assert (out / "results.csv").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    (out / "results.csv").unlink()
    synth.synthesize(out, preset="tiny", seed=0, workers=2)
    assert _tree_bytes(out) == _tree_bytes(tiny_data)


def test_sibling_directories_that_look_like_temporaries_are_left_alone(tmp_path: Path) -> None:
    for name in (".data.mine.tmp", ".data.dmlfaces-0123456789ab.tmp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "thesis.tex").write_text("precious")
    synth.synthesize(tmp_path / "data", preset="tiny", seed=0, workers=2)
    for name in (".data.mine.tmp", ".data.dmlfaces-0123456789ab.tmp"):
        assert (tmp_path / name / "thesis.tex").read_text() == "precious"


def test_reuse_checks_that_every_file_is_there_not_only_the_manifest(tiny_data: Path, tmp_path: Path) -> None:
    out = _copy(tiny_data, tmp_path)
    assert synth.outdated(out, "tiny", 0) is None
    image = next((out / "train").rglob("*.jpg"))
    image.write_bytes(image.read_bytes()[:100])
    assert "damaged" in synth.outdated(out, "tiny", 0)
    image.unlink()
    assert "missing" in synth.outdated(out, "tiny", 0)
    shutil.rmtree(out / "IJBS" / "loose_crop")
    assert "incomplete" in synth.outdated(out, "tiny", 0)


def test_an_interrupt_while_the_old_output_is_removed_leaves_the_new_one_complete(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, rmtree = _copy(tiny_data, tmp_path), shutil.rmtree

    def interrupted(path, *args, **kwargs):
        rmtree(Path(path) / "train")  # half of the old output is gone when the interrupt comes
        raise KeyboardInterrupt

    monkeypatch.setattr(io.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synth.synthesize(out, preset="tiny", seed=1, workers=2)
    monkeypatch.undo()
    assert synth.outdated(out, "tiny", 1) is None  # the new output, complete under the final name
    synth.synthesize(out, preset="tiny", seed=0, workers=2)  # the next run clears the half-deleted old one
    assert _tree_bytes(out) == _tree_bytes(tiny_data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_unknown_preset_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="default"):
        synth.synthesize(tmp_path / "x", preset="huge")


def test_a_killed_run_leaves_no_data_set_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "dmlfaces", "synth", "--out", str(out), "--preset", "tiny", "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not list(tmp_path.glob(".data.*.tmp/train")) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()  # nothing under the final name
    assert list(tmp_path.glob(".data.*.tmp"))
    synth.synthesize(out, preset="tiny", seed=0, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
