"""Burst and pick-quality measurements of aggregators."""

import numpy as np
import pytest
import torch

from dmlfaces.eval.set_properties import add_bursts, burst_shift, picked_quality
from dmlfaces.models.aggregators import CoresetAggregator, build_aggregator
from dmlfaces.verify import describe_rows


def _templates(seed: int = 0):
    rng = np.random.default_rng(seed)
    template_ids = np.repeat([10, 20, 30], [5, 8, 3])
    features = rng.normal(size=(16, 16)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features, rng.uniform(5, 30, 16).astype(np.float32), template_ids, np.arange(16)


def test_bursts_are_copies_of_one_crop_of_each_template_in_a_new_media():
    features, norms, template_ids, media = _templates()
    f, n, t, m = add_bursts(features, norms, template_ids, media, copies=4)
    assert len(f) == 16 + 12 and np.array_equal(t[:16], template_ids)
    for template in (10, 20, 30):
        extra = np.flatnonzero(t[16:] == template) + 16
        assert len(extra) == 4 and len(np.unique(f[extra], axis=0)) == 1 and len(np.unique(m[extra])) == 1
        assert any(np.array_equal(f[extra[0]], row) for row in features[template_ids == template])
        assert m[extra[0]] > media.max()


def test_a_burst_moves_the_mean_more_than_the_media_recipe():
    methods = {"mean": build_aggregator("mean", 16), "media_template": build_aggregator("media_template", 16)}
    rows = _templates()
    shifts = burst_shift(describe_rows(methods, *rows), describe_rows(methods, *add_bursts(*rows, copies=50)))
    assert shifts["mean"].shape == (3,) and (shifts["mean"] > shifts["media_template"]).all()
    assert np.allclose(burst_shift(describe_rows(methods, *rows), describe_rows(methods, *rows))["mean"], 0, atol=1e-6)


def test_a_burst_shift_refuses_descriptors_of_other_templates():
    methods = {"mean": build_aggregator("mean", 16)}
    features, norms, template_ids, media = _templates()
    other = describe_rows(methods, features, norms, template_ids + 1, media)
    with pytest.raises(ValueError, match="mean: .*different templates"):
        burst_shift(describe_rows(methods, features, norms, template_ids, media), other)


def test_quality_weighting_picks_better_faces():
    features, norms, template_ids, _ = _templates(1)
    quality = norms / norms.max()
    torch.manual_seed(0)
    diverse, _ = picked_quality(CoresetAggregator(16, heads=4, k=2, gamma=0.0), features, norms, template_ids, quality)
    sharp, overall = picked_quality(CoresetAggregator(16, heads=4, k=2, gamma=20.0), features, norms, template_ids, quality)
    assert (sharp >= overall - 1e-6).all() and sharp.mean() >= diverse.mean()
