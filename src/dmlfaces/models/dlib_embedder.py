"""dlib's pretrained metric-learning face descriptor: a real, offline identity embedding for Study A.

D. King's ResNet (``dlib_face_recognition_resnet_model_v1.dat``, 29 convolutional layers) maps an aligned
150x150 face to a 128-d descriptor; it was trained with a pairwise metric (hinge) loss on about 3 million
faces and reaches 99.38% on LFW. Faces are found with dlib's HOG frontal face detector and aligned from
the 5-point landmarks of ``shape_predictor_5_face_landmarks.dat``. The model files ship in the PyPI
package ``face-recognition-models`` and dlib itself in ``dlib-bin``: the ``dlib`` extra of this package.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
from tqdm import tqdm

DLIB_EXTRA = "dlib"
MODELS_PACKAGE = "face_recognition_models"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_DIM = 128

Box = tuple[int, int, int, int]  # left, top, right, bottom (inclusive), in pixels


def _missing(what: str) -> str:
    return (f"{what} is not installed: install this package's {DLIB_EXTRA!r} extra "
            f"(pip install 'dmlfaces[{DLIB_EXTRA}]')")


def _import_dlib() -> ModuleType:
    try:
        import dlib
    except ImportError as exc:
        raise ImportError(_missing("dlib (PyPI package dlib-bin)")) from exc
    return dlib


def model_path(filename: str) -> Path:
    """Path of a model file of ``face-recognition-models``, found without importing that package.

    Its ``__init__`` imports ``pkg_resources``, which recent setuptools no longer provides; ``find_spec``
    of a top-level package locates its directory without executing it.
    """
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(_missing("face-recognition-models (dlib's model files)"))
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file missing; reinstall face-recognition-models")
    return path


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) contiguous uint8 from an RGB or grey (H, W) uint8 image (dlib rejects views such as a mirror)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 image, got {image.shape} {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image)


class DlibEmbedder:
    """dlib's face detector, 5-point aligner and 128-d ResNet descriptor.

    Args:
        upsample: times the detector doubles the image first (1 finds faces down to about 40 pixels).
        jitters: descriptors averaged over this many random jitters of the face (0: one pass).
    """

    def __init__(self, upsample: int = 1, jitters: int = 0) -> None:
        dlib = _import_dlib()
        self._dlib = dlib
        self.upsample = upsample
        self.jitters = jitters
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(model_path(SHAPE_PREDICTOR_FILE)))
        self._network = dlib.face_recognition_model_v1(str(model_path(RESNET_FILE)))

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in an (H, W, 3) or (H, W) uint8 image, the detector's most confident first."""
        found, scores, _ = self._detector.run(_rgb(image), self.upsample)
        ranked = sorted(zip(scores, found), key=lambda pair: pair[0], reverse=True)
        return [(r.left(), r.top(), r.right(), r.bottom()) for _, r in ranked]

    def describe(self, image: np.ndarray, box: Box | None = None) -> tuple[np.ndarray, bool]:
        """(128,) float32 descriptor of the face in ``box``, else of the most confidently detected face.

        When no face is detected, the whole image is taken as the face box (right for crops that are
        already faces, e.g. CelebA's aligned images). Returns the descriptor and whether the box came
        from the detector.
        """
        rgb = _rgb(image)
        detected = False
        if box is None:
            boxes = self.detect(rgb)
            detected = bool(boxes)
            box = boxes[0] if boxes else (0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1)
        shape = self._landmarks(rgb, self._dlib.rectangle(*box))
        descriptor = self._network.compute_face_descriptor(rgb, shape, self.jitters)
        return np.asarray(descriptor, dtype=np.float32), detected

    def extract(
        self, load: Callable[[int], np.ndarray], count: int, *, progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descriptors of images ``load(0) .. load(count - 1)``, shaped like :func:`dmlfaces.features.extract_features`.

        Returns:
            unit features (count, 128) float32, their norms (count,) float32 (for ``write_features``) and
            (count,) bool: whether a face was detected (else the whole image was described).
        """
        features = np.empty((count, DESCRIPTOR_DIM), dtype=np.float32)
        detected = np.empty(count, dtype=bool)
        for index in tqdm(range(count), desc="dlib", disable=not progress, mininterval=2.0):
            features[index], detected[index] = self.describe(load(index))
        norms = np.linalg.norm(features, axis=1)
        return features / np.maximum(norms, 1e-12)[:, None], norms.astype(np.float32), detected
