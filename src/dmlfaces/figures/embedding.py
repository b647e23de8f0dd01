"""Maps of embeddings: t-SNE of (N, D) points, maps coloured by identity or by attribute, and the feature
norm against ground-truth quality."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from dmlfaces.data.celeba import CelebA
from dmlfaces.eval.attributes import identity_embeddings
from dmlfaces.features import FeatureSet


def tsne(points: np.ndarray, seed: int) -> np.ndarray:
    """(N, 2) t-SNE map of (N, D) points (PCA start; perplexity 30, or N - 1 for fewer points)."""
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", perplexity=min(30, len(points) - 1), random_state=seed).fit_transform(points)


def embedding_map(points: np.ndarray, labels: np.ndarray, title: str) -> plt.Figure:
    """A 2-D map of embeddings, (N, 2) points coloured by (N,) labels."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=labels.astype(str), palette="tab20", s=14, ax=ax, legend=False)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def attribute_maps(points: np.ndarray, states: dict[str, np.ndarray]) -> plt.Figure:
    """The same (N, 2) map coloured by each attribute's (N,) states (1, -1; 0 = tied vote), one panel each."""
    fig, axes = plt.subplots(1, len(states), figsize=(3.6 * len(states), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], states.items()):
        labels = np.where(values > 0, name, np.where(values < 0, f"not {name}", "tied"))
        sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=labels, s=12, ax=ax, palette="Set1")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def norm_quality(norms: np.ndarray, quality: np.ndarray, rho: float) -> plt.Figure:
    """Feature norm against ground-truth quality, one point per crop."""
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hexbin(quality, norms, gridsize=40, cmap="viridis", mincnt=1)
    ax.set_xlabel("ground-truth quality")
    ax.set_ylabel("feature norm")
    ax.set_title(f"Spearman rho = {rho:.2f}")
    fig.tight_layout()
    return fig


def identity_attribute_maps(
    found: FeatureSet, celeba: CelebA, columns: Sequence[str], identities: int, seed: int, title: str
) -> plt.Figure:
    """t-SNE of the first ``identities`` identities' mean embeddings (Study A across identities), one panel per
    attribute column coloured by the identity's majority vote."""
    rows = celeba.attributes.index.get_indexer(found.names)
    people = identity_embeddings(
        found.features, celeba.identities.to_numpy()[rows], celeba.attributes.iloc[rows][list(columns)], mode="mean", seed=seed
    )
    chosen = np.arange(min(identities, len(people.embeddings)))
    fig = attribute_maps(
        tsne(people.embeddings[chosen], seed), {column: people.labels[column].to_numpy()[chosen] for column in columns}
    )
    fig.suptitle(title)
    return fig


def image_attribute_maps(
    found: FeatureSet, celeba: CelebA, columns: Sequence[str], identities: int, seed: int, title: str
) -> plt.Figure:
    """t-SNE of every image of the first ``identities`` identities (Study A within identities), one panel per
    attribute column coloured by the image's state."""
    rows = celeba.attributes.index.get_indexer(found.names)
    identity = celeba.identities.to_numpy()[rows]
    images = np.flatnonzero(np.isin(identity, np.unique(identity)[:identities]))
    fig = attribute_maps(
        tsne(found.features[images], seed),
        {column: celeba.attributes.iloc[rows[images]][column].to_numpy() for column in columns},
    )
    fig.suptitle(title)
    return fig
