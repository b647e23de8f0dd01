"""The procedural renderer: factors in, a face and its landmarks out; quality from degradations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dmlfaces.data.faces import (
    QUALITY_WEIGHTS,
    SIZE,
    degradation_severities,
    encode_jpeg,
    factor_record,
    quality_score,
    render_face,
    sample_image,
    sample_person,
)


def _person(i: int = 0):
    return sample_person(np.random.default_rng([7, i]), i)


def _clean(person, **changes):
    image = sample_image(np.random.default_rng([7, 99]), person, difficulty=0.0, loose=False)
    clean = dataclasses.replace(
        image,
        yaw=0.0,
        pitch=0.0,
        roll=0.0,
        occlusion=0.0,
        blur=0.0,
        noise=0.0,
        low_resolution=1.0,
        light_strength=0.0,
        brightness=1.0,
        scale=1.0,
        shift_x=0.0,
        shift_y=0.0,
        jpeg_quality=95,
        beard=False,
        glasses=False,
        expression="neutral",
    )
    return dataclasses.replace(clean, **changes)


def test_render_shape_and_landmarks_near_arcface_template() -> None:
    person = _person()
    pixels, landmarks = render_face(person, _clean(person))
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
    template = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]])
    # Identity geometry moves the landmarks a few pixels around the template, not more.
    assert np.abs(landmarks - template).max() < 12
    assert landmarks[0, 0] < landmarks[1, 0] and landmarks[3, 0] < landmarks[4, 0]


def test_rendering_is_deterministic() -> None:
    person = _person(3)
    image = sample_image(np.random.default_rng([1, 2]), person, difficulty=0.7, loose=True)
    a, la = render_face(person, image)
    b, lb = render_face(person, image)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert encode_jpeg(a, image.jpeg_quality) == encode_jpeg(b, image.jpeg_quality)


@pytest.mark.parametrize("change", [{"glasses": True}, {"expression": "smiling"}, {"expression": "surprised"}, {"yaw": 0.5}])
def test_each_image_factor_changes_the_face(change: dict) -> None:
    person = _person(1)
    base, _ = render_face(person, _clean(person))
    changed, _ = render_face(person, _clean(person, **change))
    # At least a hundred pixels change visibly (by more than 20 of 255 levels).
    assert (np.abs(base.astype(int) - changed.astype(int)).max(axis=2) > 20).sum() > 100


def test_beard_is_drawn_only_when_on() -> None:
    person = dataclasses.replace(_person(2), gender="male", beard_style="full")
    off, _ = render_face(person, _clean(person))
    on, _ = render_face(person, _clean(person, beard=True))
    lower = slice(85, 112)
    assert np.abs(off[lower].astype(int) - on[lower].astype(int)).mean() > 2


def test_women_are_never_sampled_with_a_beard() -> None:
    for i in range(40):
        person = _person(i)
        image = sample_image(np.random.default_rng([i]), person, difficulty=0.5, loose=True, beard_rate=1.0)
        assert image.beard == (person.gender == "male")


def test_framing_moves_landmarks_with_the_face() -> None:
    person = _person(4)
    _, straight = render_face(person, _clean(person))
    _, moved = render_face(person, _clean(person, shift_x=10.0, shift_y=-5.0))
    assert np.allclose(moved - straight, [10.0, -5.0], atol=1e-6)


def test_quality_is_one_when_pristine_and_falls_with_each_degradation() -> None:
    person = _person()
    pristine = _clean(person)
    assert quality_score(pristine) == pytest.approx(1.0)
    for change in (
        {"blur": 2.0},
        {"noise": 20.0},
        {"low_resolution": 0.3},
        {"occlusion": 0.2},
        {"yaw": 0.8},
        {"jpeg_quality": 30},
        {"brightness": 0.4},
        {"scale": 0.7},
    ):
        degraded = quality_score(dataclasses.replace(pristine, **change))
        assert 0.0 < degraded < 0.95, change
    assert quality_score(dataclasses.replace(pristine, blur=2.0, noise=20.0)) < quality_score(
        dataclasses.replace(pristine, blur=2.0)
    )


def test_severities_are_zero_when_pristine_and_one_at_each_degradation_s_worst() -> None:
    pristine = _clean(_person())
    assert set(degradation_severities(pristine).values()) == {0.0}
    worst = {
        "blur": {"blur": 6.0},
        "noise": {"noise": 60.0},
        "low_resolution": {"low_resolution": 0.06},
        "occlusion": {"occlusion": 0.35},
        "compression": {"jpeg_quality": 15},
        "size": {"scale": 0.6},
    }
    for name, change in worst.items():
        severities = degradation_severities(dataclasses.replace(pristine, **change))
        assert severities[name] == pytest.approx(1.0) and sum(severities.values()) == pytest.approx(1.0), name
    assert set(degradation_severities(pristine)) == set(QUALITY_WEIGHTS)


def test_difficulty_lowers_quality_on_average() -> None:
    person = _person()
    easy = [quality_score(sample_image(np.random.default_rng([i]), person, difficulty=0.0, loose=True)) for i in range(200)]
    hard = [quality_score(sample_image(np.random.default_rng([i]), person, difficulty=1.0, loose=True)) for i in range(200)]
    assert np.mean(easy) > np.mean(hard) + 0.2
    assert 0.0 <= min(hard) and max(easy) <= 1.0


def test_factor_record_has_every_factor_and_quality() -> None:
    person = _person()
    image = _clean(person)
    record = factor_record(person, image)
    assert record["quality"] == pytest.approx(1.0)
    assert record["person_gender"] == person.gender and record["image_glasses"] is False
    assert "person_person_id" not in record and "image_noise_seed" in record


def test_loose_crops_carry_scene_around_the_frame() -> None:
    from dmlfaces.data.align import align_face

    person = _person(3)
    image = _clean(person, scale=1.05, shift_x=12.0, shift_y=-9.0, roll=0.3)
    tight, tight_marks = render_face(person, image)
    loose, loose_marks = render_face(person, image, margin=24)
    assert loose.shape == (SIZE + 48, SIZE + 48, 3)
    np.testing.assert_allclose(loose_marks, tight_marks + 24)
    # Aligning the tight crop of a large, shifted face reaches past its edge (black); the loose one does not.
    black = lambda crop: float((align_face(crop, marks).max(axis=2) == 0).mean())  # noqa: E731
    marks = tight_marks
    assert black(tight) > 0.05
    marks = loose_marks
    assert black(loose) < 0.005


def test_families_share_coarse_looks_and_differ_in_detail() -> None:
    look = lambda: np.random.default_rng([5, 5])  # noqa: E731
    a = sample_person(np.random.default_rng([1]), 1, look=look())
    b = sample_person(np.random.default_rng([2]), 2, look=look())
    for name in ("gender", "age_group", "skin_tone", "hair_style", "hair_colour", "head_width", "jaw_width"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.eye_spacing != b.eye_spacing and a.nose_length != b.nose_length
