"""dlib's face descriptor on real faces that ship with scikit-image (offline): stable under a shift and a
mirror, far from other people; on SynthFaces, faces its detector misses aligned from the landmarks as it aligns
the ones it finds; clear errors when the extra is missing or the landmarks are wrong."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data

from dmlfaces.data.align import ARCFACE_TEMPLATE
from dmlfaces.data.celeba import read_celeba
from dmlfaces.models import dlib_embedder
from dmlfaces.models.dlib_embedder import (
    DETECTOR,
    LANDMARKS,
    WHOLE_IMAGE,
    DlibEmbedder,
    NoDetectionError,
    from_reference,
    model_path,
    to_reference,
)


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
    others = np.stack([embedder.describe(np.asarray(Image.fromarray(f).resize((150, 150), Image.BICUBIC)))[0] for f in faces])
    nearest_other = np.linalg.norm(others - astronaut, axis=1).min()
    assert nearest_other > max(np.linalg.norm(shifted - astronaut), np.linalg.norm(mirrored - astronaut))


def test_extract_returns_unit_features_and_falls_back_to_the_whole_image(embedder: DlibEmbedder, astronaut: np.ndarray) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (120, 100), dtype=np.uint8)
    images = [data.astronaut(), noise]
    features, norms, found_by = embedder.extract(images.__getitem__, 2, progress=False)
    assert features.shape == (2, 128) and np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-6)
    assert found_by.tolist() == [DETECTOR, WHOLE_IMAGE]
    assert np.allclose(features[0] * norms[0], astronaut, atol=1e-6)
    whole, _ = embedder.describe(noise, (0, 0, 99, 119))
    assert np.allclose(features[1] * norms[1], whole, atol=1e-6)
    with pytest.raises(ValueError, match=r"uint8 image, got \(4, 4\) float64"):
        embedder.describe(np.zeros((4, 4)))


def _cosine_rows(rows: np.ndarray, b: np.ndarray) -> np.ndarray:
    return rows @ b / np.linalg.norm(rows, axis=1) / np.linalg.norm(b)


def test_faces_the_detector_misses_are_aligned_from_the_landmarks_as_dlib_aligns_the_ones_it_finds(
    embedder: DlibEmbedder, tiny_data
) -> None:
    celeba = read_celeba(tiny_data / "celeba")
    images = [celeba.load_image(name) for name in celeba.attributes.index]
    landmarks = celeba.landmarks.to_numpy().reshape(-1, 5, 2)
    features, norms, found_by = embedder.extract(images.__getitem__, len(images), landmarks=landmarks, progress=False)
    assert features.shape == (len(images), 128) and np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-6)
    detected = np.flatnonzero(found_by == DETECTOR)
    # SynthFaces' 112-pixel faces: dlib's detector finds few (3 of the 60 of tiny seed 0), the landmarks align the rest.
    assert 2 <= len(detected) <= len(images) // 2
    assert np.count_nonzero(found_by == LANDMARKS) == len(images) - len(detected)
    raw = features * norms[:, None]
    for i in detected:
        assert np.allclose(raw[i], embedder.describe(images[i])[0], atol=1e-6)  # the detector's own descriptor

    # Each detected face aligned from its landmarks, calibrated on the other detections only, gives nearly dlib's
    # own descriptor: cosine 0.989 to 0.992 measured, while no two different images of the set come above 0.978
    # and the one nearest to each of these at most 0.961; whole-image chips (the old fallback) reach 0.84 for some.
    points = {i: embedder.points(images[i], embedder.detect(images[i])[0]) for i in detected}
    for i in detected:
        template = np.median([to_reference(points[j], landmarks[j]) for j in detected if j != i], axis=0)
        aligned = embedder.describe_points(images[i], from_reference(template, landmarks[i]))
        others = np.delete(raw, i, axis=0)
        assert _cosine(aligned, raw[i]) > max(0.98, _cosine_rows(others, raw[i]).max()), i

    # The undetected faces are aligned with the template of all detections.
    template = np.median([to_reference(points[j], landmarks[j]) for j in detected], axis=0)
    first = int(np.flatnonzero(found_by == LANDMARKS)[0])
    expected = embedder.describe_points(images[first], from_reference(template, landmarks[first]))
    assert np.allclose(raw[first], expected, atol=1e-6)


def test_wrong_landmarks_and_no_detection_to_calibrate_on_are_refused(embedder: DlibEmbedder) -> None:
    noise = [np.random.default_rng(seed).integers(0, 256, (112, 112, 3), dtype=np.uint8) for seed in range(2)]
    good = np.repeat(ARCFACE_TEMPLATE[None].astype(np.float64), 2, axis=0)
    with pytest.raises(ValueError, match=r"landmarks must be \(2, 5, 2\).* got shape \(2, 10\)"):
        embedder.extract(noise.__getitem__, 2, landmarks=good.reshape(2, 10), progress=False)
    with pytest.raises(ValueError, match=r"must be \(2, 5, 2\).* got shape \(1, 5, 2\)"):
        embedder.extract(noise.__getitem__, 2, landmarks=good[:1], progress=False)
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"landmarks of image 1 cannot be aligned: landmark 3 \(nose\) is not a finite"):
        embedder.extract(noise.__getitem__, 2, landmarks=bad, progress=False)
    with pytest.raises(NoDetectionError, match=r"found a face in none of the 2 images.*without landmarks.*--no-landmarks"):
        embedder.extract(noise.__getitem__, 2, landmarks=good, progress=False)
    _, _, found_by = embedder.extract(noise.__getitem__, 2, progress=False)  # the way out the message names
    assert found_by.tolist() == [WHOLE_IMAGE, WHOLE_IMAGE]


def test_missing_dlib_or_models_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(ImportError, match=r"dlib-bin\) is not installed: install this package's 'dlib' extra"):
        DlibEmbedder()
    monkeypatch.setattr(dlib_embedder, "MODELS_PACKAGE", "no_such_models_package")
    with pytest.raises(ImportError, match=r"face-recognition-models .* 'dlib' extra"):
        model_path(dlib_embedder.RESNET_FILE)
