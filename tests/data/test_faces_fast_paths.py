"""The renderer's fast paths (separable sines and light, the occluder's box, table-driven noise, whole-array
projection and head outline, the field-by-field record) against the straightforward formulas they replace."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image

from dmlfaces.data import faces


def _image(**changes) -> faces.ImageFactors:
    person = faces.sample_person(np.random.default_rng([7, 0]), 0)
    image = faces.sample_image(np.random.default_rng([7, 1]), person, difficulty=0.5, loose=True)
    return dataclasses.replace(image, **changes)


@pytest.mark.parametrize("seed", range(5))
def test_stripes_are_the_box_filtered_sine_of_the_direct_formula(seed: int) -> None:
    image = _image(background="stripes", background_seed=seed)
    drawn = np.asarray(faces._background(image, 80)).astype(int)
    rng = np.random.default_rng(seed)
    period, angle, other = rng.uniform(10, 40), rng.uniform(0, math.pi), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:160, 0:160]
    wave = 0.5 + 0.5 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    wave = wave.reshape(80, 2, 80, 2).mean(axis=(1, 3))  # the 2x drawing's box filter
    base = np.array(image.background_colour, dtype=float)
    expected = np.clip(base + wave[..., None] * (other - base), 0, 255).astype(np.uint8)
    assert drawn.shape == (80, 80, 3)
    assert np.abs(drawn - expected).max() <= 1  # float32 rounding at a level boundary, nothing more


def test_gradient_is_its_2x_ramp_reduced_and_plain_is_flat() -> None:
    image = _image(background="gradient", background_seed=3)
    drawn = np.asarray(faces._background(image, 56))
    other = np.random.default_rng(3).integers(0, 256, 3)
    ramp = np.linspace(0, 1, 112)[:, None, None]
    base = np.array(image.background_colour, dtype=float)
    at_2x = np.broadcast_to((1 - ramp) * base + ramp * other, (112, 112, 3)).astype(np.uint8)
    assert np.array_equal(drawn, np.asarray(Image.fromarray(at_2x).reduce(2)))
    plain = np.asarray(faces._background(_image(background="plain"), 56))
    assert plain.shape == (56, 56, 3) and (plain == image.background_colour).all()


def _occluder_alpha(shape, fraction, centre, rng) -> np.ndarray:
    """(H, W) coverage of the occluder over every pixel, from the draws ``faces._occlude`` makes first."""
    kind = faces._OCCLUDER_KINDS[int(rng.integers(3))]
    if kind == "hand":
        rng.uniform(0, 1)
    elif kind == "hair":
        rng.integers(4)
    else:
        rng.uniform(0, 255, 3)
    aspect, angle = float(rng.uniform(0.6, 1.6)), float(rng.uniform(0, math.pi))
    b = math.sqrt(fraction * faces._FACE_EXTENT**2 / (math.pi * aspect))
    a = aspect * b
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    u = (xx - centre[0]) * math.cos(angle) + (yy - centre[1]) * math.sin(angle)
    v = -(xx - centre[0]) * math.sin(angle) + (yy - centre[1]) * math.cos(angle)
    return np.clip((1.0 - np.sqrt((u / a) ** 2 + (v / b) ** 2)) * min(a, b) / 3.0 + 0.5, 0.0, 1.0)


@pytest.mark.parametrize("centre", [(80.0, 80.0), (5.0, 150.0), (-30.0, 40.0), (400.0, 400.0)])
@pytest.mark.parametrize("seed", range(4))
def test_occluder_box_holds_every_pixel_it_covers(centre, seed: int) -> None:
    array = np.random.default_rng(seed).uniform(0, 255, (160, 160, 3)).astype(np.float32)
    covered = faces._occlude(array, 0.3, centre, np.random.default_rng([seed, 1]))
    alpha = _occluder_alpha(array.shape, 0.3, centre, np.random.default_rng([seed, 1]))
    assert covered.dtype == np.float32
    assert np.array_equal(covered[alpha == 0], array[alpha == 0])
    assert (covered != array).any(axis=2)[alpha > 0.01].all()


def test_gaussian_noise_has_the_asked_spread_and_follows_the_seed() -> None:
    noise = faces._gaussian_noise(np.random.default_rng(4), (200, 300, 3), 7.5)
    assert noise.dtype == np.float32 and noise.shape == (200, 300, 3)
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 7.5) < 0.05
    assert abs(np.mean(np.abs(noise) > 2 * 7.5) - 0.0455) < 0.002  # the normal's tails, not a flat spread
    assert np.array_equal(noise, faces._gaussian_noise(np.random.default_rng(4), (200, 300, 3), 7.5))


def test_light_is_the_linear_ramp_times_the_exposure() -> None:
    image = _image(occlusion=0.0, low_resolution=1.0, blur=0.0, noise=0.0, light_strength=0.7, light_angle=2.1, brightness=1.2)
    pixels = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    lit = faces._degrade(Image.fromarray(pixels), image, 0).astype(int)
    yy, xx = np.mgrid[0:112, 0:112] / 111.0 - 0.5
    light = 1.0 + 0.7 * 1.6 * (math.cos(2.1) * xx + math.sin(2.1) * yy)
    expected = np.clip(pixels * (light[..., None] * 1.2), 0, 255).astype(np.uint8)
    assert np.abs(lit - expected).max() <= 1


def test_projecting_many_points_is_projecting_each() -> None:
    project = faces._Projector(0.4, -0.2)
    points = np.random.default_rng(0).uniform(-40, 40, (7, 2))
    expected = [c for x, y in points for c in project(float(x), float(y), 12.0)]
    assert project.many(points, z=12.0) == expected


def test_factor_record_holds_each_person_field_as_is() -> None:
    person = faces.sample_person(np.random.default_rng([3, 3]), 3)
    record = faces.factor_record(person, _image())
    expected = {f"person_{k}": v for k, v in dataclasses.asdict(person).items() if k != "person_id"}
    assert {k: record[k] for k in expected} == expected


def test_head_outline_is_the_ellipse_on_top_and_the_tapering_jaw_below() -> None:
    person = faces.sample_person(np.random.default_rng([3, 4]), 4)
    outline = faces._head_outline(person)
    eye_y = 51.6 - faces.CENTRE_Y + person.eye_height
    chin = 92.3 - faces.CENTRE_Y + person.chin_length
    for (x, y), t in zip(outline, np.linspace(0, 2 * math.pi, 40, endpoint=False)):
        s, c = math.sin(t), math.cos(t)
        if c <= 0:
            expected = (person.head_width * s, eye_y + person.forehead_height * c)
        else:
            expected = ((person.head_width + (person.jaw_width - person.head_width) * c**0.8) * s, eye_y + (chin - eye_y) * c)
        assert (x, y) == pytest.approx(expected, abs=1e-9)
