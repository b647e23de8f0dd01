"""models.templates: templates to padded batches and descriptors; several aggregators on one padding give what each gives alone."""

from __future__ import annotations

import numpy as np
import torch

from dmlfaces.eval.templates import insightface_template_descriptors, mean_template_descriptors, unit_rows
from dmlfaces.models.aggregators import CoresetAggregator, build_aggregator
from dmlfaces.models.templates import describe_templates, describe_templates_by, group_crops


def _crops(seed: int = 0):
    rng = np.random.default_rng(seed)
    template_ids = rng.integers(0, 40, 400)
    features = rng.normal(size=(400, 16)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features, rng.uniform(1, 30, 400).astype(np.float32), template_ids, rng.integers(0, 90, 400)


def test_group_crops_lists_every_crop_of_each_template_once() -> None:
    _, _, template_ids, _ = _crops()
    templates, order, starts = group_crops(template_ids)
    assert np.array_equal(templates, np.unique(template_ids)) and np.array_equal(np.sort(order), np.arange(400))
    for t, template in enumerate(templates):
        assert (template_ids[order[starts[t] : starts[t + 1]]] == template).all()


def test_several_aggregators_on_one_padding_equal_each_alone() -> None:
    torch.manual_seed(0)
    methods = {
        "mean": build_aggregator("mean", 16),
        "media_template": build_aggregator("media_template", 16),
        "coreset": CoresetAggregator(16, heads=4, k=3).eval(),
    }
    crops = _crops()
    # A small batch budget: many batches of mixed sizes, as on a real protocol.
    together = describe_templates_by(methods, *crops, crops_per_batch=64, device="cpu")
    assert list(together) == list(methods)
    for name, aggregator in methods.items():
        alone = describe_templates(aggregator, *crops, crops_per_batch=64, device="cpu")
        for mine, theirs in zip(together[name], alone):
            assert np.array_equal(mine, theirs), name


def test_the_torch_baselines_agree_with_the_evaluators_float64_rules():
    """The two homes of the mean, norm-weighted and media-then-template rules (see ``dmlfaces.models.aggregators``)
    give the same descriptors up to float32 rounding, on templates with repeated media."""
    rng = np.random.default_rng(0)
    features = unit_rows(rng.normal(size=(300, 16))).astype(np.float32)
    norms = rng.uniform(5, 25, 300).astype(np.float32)
    template_ids = rng.integers(0, 40, 300)
    media_ids = rng.integers(0, 4, 300) + 10 * template_ids
    templates, mean = describe_templates(build_aggregator("mean", 16), features, norms, template_ids, device="cpu")[:2]
    reference_templates, reference = mean_template_descriptors(features, template_ids)
    np.testing.assert_array_equal(templates, reference_templates)
    np.testing.assert_allclose(mean, reference, atol=1e-6)
    media = describe_templates(build_aggregator("media_template", 16), features, norms, template_ids, media_ids, device="cpu")[1]
    np.testing.assert_allclose(media, insightface_template_descriptors(features, template_ids, media_ids)[1], atol=1e-6)
    weighted = describe_templates(build_aggregator("norm_weighted", 16), features, norms, template_ids, device="cpu")[1]
    each_own_media = np.arange(len(features))  # insightface's D mode with the norms as weights, one crop per media
    reference = insightface_template_descriptors(features, template_ids, each_own_media, weights=norms)[1]
    np.testing.assert_allclose(weighted, reference, atol=1e-6)
