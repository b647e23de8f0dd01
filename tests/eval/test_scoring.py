"""Pair scores: block scoring (dense tiles and row gathers) equals direct scoring; unknown templates are named."""

from __future__ import annotations

import numpy as np
import pytest

from dmlfaces.eval.scoring import pair_scores, score_pairs, template_rows
from dmlfaces.eval.templates import unit_rows


@pytest.fixture(scope="module")
def descriptors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return np.arange(400) * 7 + 1, unit_rows(rng.normal(size=(400, 32)))


@pytest.mark.parametrize(
    "pair_count, block_bytes",
    [
        (60_000, 64 << 20),  # dense: the pairs fill most of one tile
        (60_000, 20_000),  # dense, many blocks
        (300, 64 << 20),  # sparse: row gathers
        (3_000, 20_000),  # sparse, many blocks
    ],
)
def test_block_scores_equal_direct_scores(descriptors: tuple, pair_count: int, block_bytes: int) -> None:
    templates, rows = descriptors
    rng = np.random.default_rng(pair_count)
    pairs = templates[rng.integers(0, len(templates), (pair_count, 2))]
    scores = score_pairs(templates, rows, pairs, block_bytes=block_bytes)
    assert scores.dtype == np.float64 and scores.shape == (pair_count,)
    np.testing.assert_allclose(scores, pair_scores(templates, rows, pairs), atol=1e-12)
    np.testing.assert_allclose(scores, np.sum(rows[(pairs[:, 0] - 1) // 7] * rows[(pairs[:, 1] - 1) // 7], 1), atol=1e-12)


@pytest.mark.parametrize("templates", [np.array([3, 8, 20]), np.array([3, 8, 1 << 40])])  # table / binary search
def test_unknown_templates_are_named(templates: np.ndarray) -> None:
    assert template_rows(templates, np.array([[8, 3], [templates[2], 8]])).tolist() == [[1, 0], [2, 1]]
    with pytest.raises(KeyError, match="template 5 is unknown .*; 2 entries name unknown templates"):
        template_rows(templates, np.array([[3, 5], [5, 8]]))
    rows = unit_rows(np.eye(3))
    with pytest.raises(KeyError, match="template 99 is unknown"):
        score_pairs(templates, rows, np.array([[3, 8], [99, 3]]))
    with pytest.raises(KeyError, match="template -4 is unknown"):
        score_pairs(templates, rows, np.array([[-4, 3]]))


def test_non_unit_descriptors_are_refused() -> None:
    rows = np.array([[1.0, 0.0], [np.nan, 0.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="2 template descriptors are not finite unit vectors.*templates 6, 9"):
        score_pairs(np.array([4, 6, 9]), rows, np.array([[4, 6]]))


@pytest.mark.parametrize("pair_count", [60_000, 300])  # dense and sparse
def test_pairs_grouped_by_first_template_are_scored_as_slices(descriptors: tuple, pair_count: int) -> None:
    templates, rows = descriptors
    rng = np.random.default_rng(pair_count + 1)
    pairs = templates[rng.integers(0, len(templates), (pair_count, 2))]
    # Grouped like the IJB pair files (each first template's pairs together), groups in no id order.
    pairs = pairs[np.argsort(pairs[:, 0] % 13 * 10_000 + pairs[:, 0], kind="stable")]
    for block_bytes in (64 << 20, 20_000):
        np.testing.assert_allclose(
            score_pairs(templates, rows, pairs, block_bytes=block_bytes), pair_scores(templates, rows, pairs), atol=1e-12
        )
