"""Alignment onto the ArcFace template: the similarity fit and where warped pixels land."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dmlfaces.data.align import ARCFACE_TEMPLATE, align_face, landmark_problems, similarity_transform


def _similar(points: np.ndarray, scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    """(N, 2) points rotated by ``degrees``, scaled and shifted."""
    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * points @ rotation.T + np.asarray(shift)


def _blobs(height: int, width: int, centres: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W, 3) uint8 image of bright Gaussian dots at (x, y) pixel-index ``centres`` on black."""
    yy, xx = np.mgrid[0:height, 0:width]
    dots = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in centres)
    return np.repeat((255 * np.clip(dots, 0, 1)).round().astype(np.uint8)[..., None], 3, axis=2)


def _centroid(image: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    """(x, y) intensity centroid of the dot in a window around ``near``."""
    x0, y0 = int(round(near[0])) - radius, int(round(near[1])) - radius
    window = image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1, 0].astype(np.float64)
    yy, xx = np.mgrid[0 : window.shape[0], 0 : window.shape[1]]
    return np.array([(window * xx).sum() + x0 * window.sum(), (window * yy).sum() + y0 * window.sum()]) / window.sum()


def test_template_constants_are_the_arcface_ones() -> None:
    assert ARCFACE_TEMPLATE.shape == (5, 2) and ARCFACE_TEMPLATE.dtype == np.float32
    assert ARCFACE_TEMPLATE[0].tolist() == pytest.approx([38.2946, 51.6963])
    assert ARCFACE_TEMPLATE[4].tolist() == pytest.approx([70.7299, 92.2041])


def test_similarity_transform_recovers_rotation_scale_and_shift() -> None:
    src = ARCFACE_TEMPLATE.astype(np.float64)
    dst = _similar(src, scale=1.7, degrees=25.0, shift=(13.0, -4.5))
    matrix = similarity_transform(src, dst)
    angle = np.deg2rad(25.0)
    expected = np.array([[np.cos(angle), -np.sin(angle), 13.0], [np.sin(angle), np.cos(angle), -4.5]])
    expected[:, :2] *= 1.7
    np.testing.assert_allclose(matrix, expected, atol=1e-9)


def test_similarity_transform_is_the_least_squares_fit_without_reflection() -> None:
    rng = np.random.default_rng(0)
    src = ARCFACE_TEMPLATE.astype(np.float64)
    dst = _similar(src, 0.8, -10.0, (5.0, 7.0)) + rng.normal(0, 1.0, src.shape)
    matrix = similarity_transform(src, dst)
    fitted = src @ matrix[:, :2].T + matrix[:, 2]
    residual = np.sum((fitted - dst) ** 2)
    # Any nearby similarity fits worse than the returned one.
    for delta in np.eye(4) * 1e-3:
        scale, angle = np.hypot(*matrix[:, 0]) + delta[0], np.arctan2(matrix[1, 0], matrix[0, 0]) + delta[1]
        other = _similar(src, scale, np.rad2deg(angle), matrix[:, 2] + delta[2:])
        assert np.sum((other - dst) ** 2) > residual
    # A mirrored face is still fitted by a rotation (positive determinant), never a reflection.
    mirrored = similarity_transform(src, src * np.array([-1.0, 1.0]))
    assert np.linalg.det(mirrored[:, :2]) > 0


def test_similarity_transform_rejects_degenerate_points() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), ARCFACE_TEMPLATE)
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 3)), np.zeros((5, 3)))


def test_landmarks_on_the_template_give_the_identity() -> None:
    image = np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    aligned = align_face(image, ARCFACE_TEMPLATE)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    assert np.abs(aligned.astype(int) - image.astype(int)).max() <= 1


@pytest.mark.parametrize("size", [112, 224])
def test_dots_at_the_landmarks_land_on_the_template_points(size: int) -> None:
    landmarks = _similar(ARCFACE_TEMPLATE.astype(np.float64), scale=1.7, degrees=20.0, shift=(61.3, -14.8))
    image = _blobs(260, 240, landmarks, sigma=2.5)
    aligned = align_face(image, landmarks, size=size)
    assert aligned.shape == (size, size, 3)
    target = ARCFACE_TEMPLATE * (size / 112)
    found = np.array([_centroid(aligned, point, radius=int(6 * size / 112)) for point in target])
    np.testing.assert_allclose(found, target, atol=0.08)


def _zero_scale_points() -> np.ndarray:
    """(5, 2) points, not collinear, whose centred coordinates are orthogonal to the template's: the least-squares
    similarity onto the template has scale 0."""
    template = ARCFACE_TEMPLATE.astype(np.float64)
    basis, _ = np.linalg.qr(np.column_stack([np.ones(5), template - template.mean(axis=0)]))
    points = np.random.default_rng(3).normal(0, 10, (5, 2))
    return points - basis @ (basis.T @ points) + 60


FACE = _similar(ARCFACE_TEMPLATE.astype(np.float64), 1.1, 5.0, (4.0, 6.0))
BAD_LANDMARKS = {
    # case: (landmarks, words in the problem)
    "not finite": (np.where(np.arange(10).reshape(5, 2) == 5, np.nan, FACE), "landmark 3 (nose) is not a finite number"),
    "right of the image": (
        FACE + [[0, 0], [90, 0], [0, 0], [0, 0], [0, 0]],
        "landmark 2 (right eye) at (169.640, 69.486) lies outside the 128x120 image",
    ),
    "above the image": (FACE - [[0, 0], [0, 0], [0, 0], [0, 0], [0, 120]], "landmark 5 (right mouth corner)"),
    "coincident eyes": (np.vstack([FACE[:1], FACE[:1], FACE[2:]]), "landmarks 1 (left eye) and 2 (right eye) coincide"),
    "collinear": (np.column_stack([np.linspace(20, 90, 5), np.linspace(30, 100, 5)]), "lie on one line"),
    "singular fit": (_zero_scale_points(), "zero scale"),
}


@pytest.mark.parametrize("case", sorted(BAD_LANDMARKS))
def test_unalignable_landmarks_are_refused_not_warped_to_black(case: str) -> None:
    landmarks, words = BAD_LANDMARKS[case]
    image = np.full((120, 128, 3), 200, np.uint8)
    problems = landmark_problems(np.stack([FACE, landmarks, FACE]), np.array([[128, 120]] * 3))
    assert [i for i, _ in problems] == [1] and words in problems[0][1], problems
    with pytest.raises(ValueError, match=re.escape(words)):
        align_face(image, landmarks)


def test_the_bounds_are_the_area_the_pixels_cover() -> None:
    # Pixel centres are at 0 .. W - 1, so the image covers -0.5 .. W - 0.5; a point on that edge is inside.
    edge = FACE.copy()
    edge[0] = [-0.5, 119.5]
    assert landmark_problems(edge[None], np.array([[128, 120]])) == []
    edge[0] = [-0.51, 119.5]
    assert (
        "outside the 128x120 image (x must be in -0.5..127.5, y in -0.5..119.5)"
        in landmark_problems(edge[None], np.array([[128, 120]]))[0][1]
    )
    assert landmark_problems(edge[None]) == []  # without sizes only the geometry is checked


def test_a_profile_face_with_close_points_is_kept() -> None:
    # A near-profile face: both eyes and both mouth corners a pixel apart, the points nearly on a line.
    profile = np.array([[60.0, 50.0], [61.0, 50.5], [52.0, 70.0], [58.0, 90.0], [59.0, 90.2]])
    assert landmark_problems(profile[None], np.array([[128, 128]])) == []


def test_similarity_transform_rejects_a_zero_scale_fit() -> None:
    with pytest.raises(ValueError, match="zero scale"):
        similarity_transform(_zero_scale_points(), ARCFACE_TEMPLATE)
