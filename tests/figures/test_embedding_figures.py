"""Maps of embeddings: t-SNE gives one 2-D point per row; maps have a panel per attribute."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from dmlfaces.figures import embedding  # noqa: E402


def test_tsne_maps_every_row_and_attribute_maps_have_a_panel_each() -> None:
    rng = np.random.default_rng(0)
    points = embedding.tsne(rng.normal(size=(12, 5)), seed=0)
    assert points.shape == (12, 2)
    states = {"beard": np.array([1, -1] * 6), "glasses": np.array([1, 1, 0, -1] * 3)}
    fig = embedding.attribute_maps(points, states)
    assert len(fig.axes) == 2
    legend = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert sorted(legend) == ["glasses", "not glasses", "tied"]


def test_attribute_maps_of_identities_and_of_images_have_a_panel_per_column(tiny_data) -> None:
    from dmlfaces.data.celeba import read_celeba
    from dmlfaces.features import FeatureSet

    celeba = read_celeba(tiny_data / "celeba")
    names = np.asarray(celeba.attributes.index)
    features = np.random.default_rng(0).normal(size=(len(names), 8)).astype(np.float32)
    found = FeatureSet(names, features / np.linalg.norm(features, axis=1, keepdims=True), np.ones(len(names), np.float32))
    across = embedding.identity_attribute_maps(found, celeba, ["Male", "Young"], identities=6, seed=0, title="trained")
    within = embedding.image_attribute_maps(found, celeba, ["Eyeglasses"], identities=3, seed=0, title="trained")
    assert len(across.axes) == 2 and len(within.axes) == 1 and across._suptitle.get_text() == "trained"
