"""Template descriptors: the insightface recipe equals a naive per-template loop; bad crops are named."""

from __future__ import annotations

import numpy as np
import pytest

from dmlfaces.eval.templates import check_crop_features, insightface_template_descriptors


def naive_recipe(
    features: np.ndarray, templates: np.ndarray, media: np.ndarray, weights: np.ndarray, normalise: bool
) -> dict[int, np.ndarray]:
    """The recipe written out: per template, per media mean of (normalised) weighted crops, summed."""
    result = {}
    for template in np.unique(templates):
        rows = np.flatnonzero(templates == template)
        crops = features[rows].astype(np.float64)
        if normalise:
            crops /= np.linalg.norm(crops, axis=1, keepdims=True)
        crops *= weights[rows, None]
        total = sum(crops[media[rows] == m].mean(axis=0) for m in np.unique(media[rows]))
        result[int(template)] = total / np.linalg.norm(total)
    return result


@pytest.fixture(scope="module")
def crops() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, 24) raw features of varied norm, template ids, media ids (shared across templates), weights."""
    rng = np.random.default_rng(3)
    count = 3000
    features = (rng.normal(size=(count, 24)) * rng.uniform(0.5, 20, (count, 1))).astype(np.float32)
    templates = rng.integers(0, 150, count) * 5 + 2
    media = rng.integers(0, 6, count)  # media 0..5 recur in every template: counted per template
    return features, templates, media, rng.uniform(0.3, 1.0, count)


@pytest.mark.parametrize("normalise", [True, False])
def test_recipe_equals_a_naive_loop(crops: tuple, normalise: bool) -> None:
    features, templates, media, weights = crops
    ids, descriptors = insightface_template_descriptors(features, templates, media, weights, normalise=normalise)
    expected = naive_recipe(features, templates, media, weights, normalise)
    assert ids.tolist() == sorted(expected)
    assert descriptors.dtype == np.float64
    np.testing.assert_allclose(descriptors, np.stack([expected[t] for t in ids.tolist()]), atol=1e-12)


def test_flip_halves_are_summed_before_normalising(crops: tuple) -> None:
    features, templates, media, weights = crops
    mirror = np.random.default_rng(4).normal(size=features.shape).astype(np.float32)
    _, joined = insightface_template_descriptors(np.hstack([features, mirror]), templates, media, weights, flip_halves=True)
    _, summed = insightface_template_descriptors(features.astype(np.float64) + mirror, templates, media, weights)
    np.testing.assert_allclose(joined, summed, atol=1e-12)


def test_media_mean_then_sum_is_not_a_plain_mean() -> None:
    # Template 1: a 3-frame video of (1, 0) and one still of (0, 1): media weigh equally, frames do not.
    features = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ids, descriptors = insightface_template_descriptors(features, np.array([1, 1, 1, 1]), np.array([7, 7, 7, 8]))
    np.testing.assert_allclose(descriptors[0], [np.sqrt(0.5), np.sqrt(0.5)])


@pytest.mark.parametrize(
    "bad, what", [(np.nan, "have NaN or infinite values"), (np.inf, "have NaN or infinite values"), (0.0, "are all zeros")]
)
def test_bad_crop_features_are_named(bad: float, what: str) -> None:
    features = np.ones((40, 4))
    features[[3, 17, 30], :] = bad
    names = np.array([f"crop{i}.jpg" for i in range(40)])
    message = f"3 crop features {what}: 'crop3.jpg', 'crop17.jpg', 'crop30.jpg'"
    with pytest.raises(ValueError, match=message):
        insightface_template_descriptors(features, np.arange(40) // 4, np.arange(40), crop_names=names)
    with pytest.raises(ValueError, match=message):
        insightface_template_descriptors(features, np.arange(40) // 4, np.arange(40), crop_names=names, normalise=False)
    with pytest.raises(ValueError, match=message):
        check_crop_features(features, names)


def test_many_bad_crops_are_counted_and_the_first_few_named() -> None:
    features = np.zeros((50, 3))
    with pytest.raises(ValueError, match=r"50 crop features are all zeros: row 0, row 1, row 2, row 3, row 4, \.\.\."):
        check_crop_features(features)


def test_weights_must_be_valid_and_a_template_needs_some_weight() -> None:
    features = np.eye(4)
    with pytest.raises(ValueError, match="1 crop weights are negative or not finite: 'b'"):
        insightface_template_descriptors(
            features, np.arange(4), np.arange(4), np.array([1.0, -1, 1, 1]), crop_names=np.array(list("abcd"))
        )
    with pytest.raises(ValueError, match="1 templates have a zero descriptor .*: 9"):
        insightface_template_descriptors(features, np.array([5, 5, 9, 9]), np.arange(4), np.array([1.0, 1, 0, 0]))


def test_check_crop_features_returns_norms() -> None:
    np.testing.assert_allclose(check_crop_features(np.array([[3.0, 4.0], [0.0, 2.0]])), [5.0, 2.0])
