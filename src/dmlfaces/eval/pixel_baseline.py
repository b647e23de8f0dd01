"""The pixel baseline: PCA on aligned grey pixels and cosine similarity (eigenfaces).

It shows how far a benchmark is from being solved by appearance alone: a face data set on which
this baseline already verifies well would not need an identity embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.decomposition import PCA
from tqdm import tqdm

from dmlfaces.data.folders import read_image_folder
from dmlfaces.data.ijb import IJBProtocol, read_ijb
from dmlfaces.data.images import load_rgb
from dmlfaces.eval.verification import mean_template_descriptors, pair_scores, tar_at_far


def grey_pixels(image: np.ndarray, size: int) -> np.ndarray:
    """(size*size,) float32 grey pixels in [0, 1] of an (H, W, 3) uint8 face."""
    grey = Image.fromarray(image).convert("L").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.float32).ravel() / 255.0


def fit_eigenfaces(train_root: str | Path, pca_dim: int, pixel_size: int, max_train_images: int, seed: int) -> PCA:
    """PCA on the grey pixels of (at most ``max_train_images``) training images."""
    folder = read_image_folder(train_root)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(folder.paths))[:max_train_images])
    train = np.stack([grey_pixels(load_rgb(folder.paths[i]), pixel_size) for i in chosen])
    return PCA(n_components=min(pca_dim, *train.shape), random_state=seed).fit(train)


def eigenface_crop_features(protocol: IJBProtocol, pca: PCA, pixel_size: int, progress: bool = True) -> np.ndarray:
    """(N, pca_dim) eigenface features of every row of an IJB protocol, aligned from its 5 points; a crop that
    several templates list is computed once."""
    unique = protocol.unique_crops
    crops = np.stack(
        [
            grey_pixels(protocol.aligned_crop(i), pixel_size)
            for i in tqdm(unique, desc="pixels", mininterval=2.0, disable=not progress)
        ]
    )
    return pca.transform(crops)[pd.Index(protocol.crop_names[unique]).get_indexer(protocol.crop_names)]


def pixel_baseline_verification(
    ijb_root: str | Path,
    train_root: str | Path,
    *,
    pca_dim: int = 128,
    pixel_size: int = 32,
    max_train_images: int = 4000,
    fars: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
    seed: int = 0,
    progress: bool = True,
) -> dict[str, object]:
    """TAR@FAR of eigenfaces on an IJB-layout protocol: template = mean of crop features, cosine."""
    pca = fit_eigenfaces(train_root, pca_dim, pixel_size, max_train_images, seed)
    protocol = read_ijb(ijb_root)
    templates, descriptors = mean_template_descriptors(
        eigenface_crop_features(protocol, pca, pixel_size, progress), protocol.template_ids
    )
    scores = pair_scores(templates, descriptors, protocol.pairs)
    tar = tar_at_far(scores, protocol.pair_labels, fars)
    return {
        "method": "PCA on aligned grey pixels + cosine",
        "pca_dim": int(pca.n_components_),
        "pixel_size": pixel_size,
        "train_images": int(pca.n_samples_),
        "tar_at_far": {f"{far:g}": tar[far] for far in fars},
        "genuine_pairs": int(protocol.pair_labels.sum()),
        "impostor_pairs": int(len(protocol.pair_labels) - protocol.pair_labels.sum()),
    }
