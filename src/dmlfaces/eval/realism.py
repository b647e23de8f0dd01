"""How face-like a CelebA-layout set is to a model trained on real faces: dlib's detection rate and its TAR@FAR.

dlib's descriptor reaches 99.38 % accuracy on LFW (``dlib_embedder.PUBLISHED_LFW_ACCURACY``), on real
photographs. Run on rendered faces, how often its HOG detector finds a face at all and how well its descriptor
verifies identities over every pair of images say how much of what it learnt from real faces applies to them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from dmlfaces.data.celeba import read_celeba
from dmlfaces.data.errors import DataFormatError
from dmlfaces.eval.verification import all_pairs_tar_at_far
from dmlfaces.features import read_features
from dmlfaces.models.dlib_embedder import DETECTOR, LANDMARKS, PUBLISHED_LFW_ACCURACY, WHOLE_IMAGE, read_found_by

REALISM_FARS: tuple[float, ...] = (1e-3, 1e-2)


def dlib_realism(
    features_path: str | os.PathLike[str],
    faces_path: str | os.PathLike[str],
    celeba_root: str | os.PathLike[str],
    fars: Sequence[float] = REALISM_FARS,
) -> dict[str, object]:
    """dlib's detection counts and its single-image TAR at ``fars`` over all image pairs of a CelebA-layout set.

    Args:
        features_path: ``dmlfaces extract --dlib --celeba`` output (.npz); faces_path: its ``.faces.csv``.
        celeba_root: the CelebA-layout root the features were extracted from (its identities label the pairs).
    Returns:
        JSON-able: ``images``, ``detected``, ``landmark_aligned``, ``whole_image``, ``detection_rate``
        (detected / images), ``tar_at_far`` (``f"{far:g}"`` -> TAR, exact rule), ``genuine_pairs``,
        ``impostor_pairs``, ``rule``, ``detector_only`` (the same pair figures over the detector-found faces
        alone; empty when they make no genuine or no impostor pair) and ``published_lfw_accuracy``.
    Raises:
        DataFormatError: the two files or the identities do not list the same images.
    """
    features = read_features(features_path)
    found_by = read_found_by(faces_path)
    identities = read_celeba(celeba_root).identities
    names = features.names.tolist()
    if found_by.index.tolist() != names:
        raise DataFormatError(
            faces_path,
            f"lists {len(found_by)} images, not the {len(names)} of {features_path} in their order",
            fix="extract both again with 'dmlfaces extract --dlib'",
        )
    unknown = sorted(set(names) - set(identities.index))
    if unknown:
        raise DataFormatError(
            features_path,
            f"{len(unknown)} images have no identity in {celeba_root}, e.g. {unknown[0]}",
            fix="extract the features of this CelebA-layout set",
        )
    counts = {way: int(np.count_nonzero(found_by.to_numpy() == way)) for way in (DETECTOR, LANDMARKS, WHOLE_IMAGE)}
    labels = identities.loc[names].to_numpy()
    pairs = all_pairs_tar_at_far(features.features, labels, fars)
    # The landmark-aligned faces owe their alignment to the given landmarks, not to dlib: the pairs of
    # detector-found faces alone measure dlib unaided.
    detected = found_by.to_numpy() == DETECTOR
    sizes = np.unique(labels[detected], return_counts=True)[1]
    scorable = (sizes >= 2).any() and len(sizes) >= 2  # a genuine and an impostor pair at least
    unaided = all_pairs_tar_at_far(features.features[detected], labels[detected], fars).to_dict() if scorable else {}
    return {
        "images": len(names),
        "detected": counts[DETECTOR],
        "landmark_aligned": counts[LANDMARKS],
        "whole_image": counts[WHOLE_IMAGE],
        "detection_rate": counts[DETECTOR] / len(names),
        **pairs.to_dict(),
        "detector_only": unaided,
        "published_lfw_accuracy": PUBLISHED_LFW_ACCURACY,
    }
