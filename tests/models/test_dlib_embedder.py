"""dlib's face descriptor on real faces that ship with scikit-image (offline): stable under a shift and a
mirror, far from other people; clear errors when the extra is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data

from dmlfaces.models import dlib_embedder
from dmlfaces.models.dlib_embedder import DlibEmbedder, model_path


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return DlibEmbedder()


@pytest.fixture(scope="module")
def astronaut(embedder: DlibEmbedder) -> np.ndarray:
    descriptor, detected = embedder.describe(data.astronaut())
    assert detected and descriptor.shape == (128,) and descriptor.dtype == np.float32
    return descriptor


def test_model_files_are_found_without_importing_their_package() -> None:
    assert model_path(dlib_embedder.RESNET_FILE).stat().st_size > 20_000_000
    assert model_path(dlib_embedder.SHAPE_PREDICTOR_FILE).is_file()
    # Its __init__ imports pkg_resources; locating the files must not run it.
    assert dlib_embedder.MODELS_PACKAGE not in sys.modules


def test_descriptor_is_stable_under_a_shift_and_a_mirror(embedder: DlibEmbedder, astronaut: np.ndarray) -> None:
    image = data.astronaut()
    left, top, right, bottom = embedder.detect(image)[0]  # the face, not the badge on the suit
    assert 150 < left < right < 300 and 50 < top < bottom < 200
    shifted, _ = embedder.describe(image[13:, 6:])  # the content moves 13 pixels up and 6 left
    mirrored, _ = embedder.describe(image[:, ::-1])
    assert _cosine(astronaut, shifted) > 0.9 and _cosine(astronaut, mirrored) > 0.9

    # Twenty faces of other people (25x25 grey crops, upscaled) are all farther than either variant.
    faces = (data.lfw_subset()[:20] * 255).round().astype(np.uint8)
    others = np.stack([embedder.describe(np.asarray(Image.fromarray(f).resize((150, 150), Image.BICUBIC)))[0]
                       for f in faces])
    nearest_other = np.linalg.norm(others - astronaut, axis=1).min()
    assert nearest_other > max(np.linalg.norm(shifted - astronaut), np.linalg.norm(mirrored - astronaut))


def test_extract_returns_unit_features_and_falls_back_to_the_whole_image(
    embedder: DlibEmbedder, astronaut: np.ndarray
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (120, 100), dtype=np.uint8)
    images = [data.astronaut(), noise]
    features, norms, detected = embedder.extract(images.__getitem__, 2, progress=False)
    assert features.shape == (2, 128) and np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-6)
    assert detected.tolist() == [True, False]
    assert np.allclose(features[0] * norms[0], astronaut, atol=1e-6)
    with pytest.raises(ValueError, match=r"uint8 image, got \(4, 4\) float64"):
        embedder.describe(np.zeros((4, 4)))


def test_missing_dlib_or_models_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(ImportError, match=r"dlib-bin\) is not installed: install this package's 'dlib' extra"):
        DlibEmbedder()
    monkeypatch.setattr(dlib_embedder, "MODELS_PACKAGE", "no_such_models_package")
    with pytest.raises(ImportError, match=r"face-recognition-models .* 'dlib' extra"):
        model_path(dlib_embedder.RESNET_FILE)
