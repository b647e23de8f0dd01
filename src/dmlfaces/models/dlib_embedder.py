"""dlib's pretrained metric-learning face descriptor: a real, offline identity embedding for Study A.

D. King's ResNet (``dlib_face_recognition_resnet_model_v1.dat``, 29 convolutional layers) maps an aligned
150x150 face to a 128-d descriptor; it was trained with a pairwise metric (hinge) loss on about 3 million
faces and reaches 99.38% on LFW. Faces are found with dlib's HOG frontal face detector and aligned from
the 5-point landmarks of ``shape_predictor_5_face_landmarks.dat``. The model files ship in the PyPI
package ``face-recognition-models`` and dlib itself in ``dlib-bin``: the ``dlib`` extra of this package.

Where the detector finds no face but the image comes with 5 landmarks (CelebA's eye centres, nose tip and
mouth corners; SynthFaces' ground truth), the face is aligned from them instead. dlib's own points are other
ones (the corners of both eyes and the base of the nose), so the landmarks are not handed to it directly:
each detected image of the same run maps dlib's predicted points into a common frame (the inverse of the
similarity that carries the ArcFace template onto that image's landmarks), the per-coordinate median of
those is where dlib puts its points relative to the landmarks, and an undetected image gets them back
through its own similarity. dlib then cuts and describes its face chip as it would for a detection.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
from tqdm import tqdm

from dmlfaces.data.align import ARCFACE_TEMPLATE, landmark_problems, similarity_transform
from dmlfaces.data.errors import DataFormatError
from dmlfaces.errors import UserError
from dmlfaces.io import atomic_write_text

DLIB_EXTRA = "dlib"
MODELS_PACKAGE = "face_recognition_models"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_DIM = 128
# The model's LFW accuracy as its documentation states it (dlib.net, dlib_face_recognition_resnet_model_v1):
# measured on real photographs of faces.
PUBLISHED_LFW_ACCURACY = 0.9938

Box = tuple[int, int, int, int]  # left, top, right, bottom (inclusive), in pixels
# How each image's face was found: by the detector, aligned from given landmarks, or the whole image taken.
DETECTOR, LANDMARKS, WHOLE_IMAGE = FOUND_BY = ("detector", "landmarks", "whole_image")
FACES_SUFFIX = ".faces.csv"  # beside X.npz: X.faces.csv, one row per image: name,found_by


class NoDetectionError(UserError, ValueError):
    """Landmarks were given, but no image had a detection to calibrate the landmark alignment on."""


def _missing(what: str) -> str:
    return f"{what} is not installed: install this package's {DLIB_EXTRA!r} extra (pip install 'dmlfaces[{DLIB_EXTRA}]')"


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


def _similarity(landmarks: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity carrying the ArcFace template onto (5, 2) ``landmarks``."""
    return similarity_transform(ARCFACE_TEMPLATE, landmarks)


def to_reference(points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(K, 2) image ``points`` in the template's frame of a face with (5, 2) ``landmarks``."""
    forward = _similarity(landmarks)
    return (np.asarray(points, dtype=np.float64) - forward[:, 2]) @ np.linalg.inv(forward[:, :2]).T


def from_reference(points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(K, 2) template-frame ``points`` in the image of a face with (5, 2) ``landmarks``."""
    forward = _similarity(landmarks)
    return np.asarray(points, dtype=np.float64) @ forward[:, :2].T + forward[:, 2]


def check_landmarks(landmarks: np.ndarray, count: int) -> np.ndarray:
    """(count, 5, 2) float64 landmarks that can be aligned, or a ValueError naming the shape or the first bad image
    (``dmlfaces.data.align.landmark_problems``: not finite, coinciding, on one line)."""
    array = np.asarray(landmarks, dtype=np.float64)
    if array.shape != (count, 5, 2):
        raise ValueError(
            f"landmarks must be ({count}, 5, 2): x, y of the left eye, right eye, nose tip, left and "
            f"right mouth corner of each of the {count} images; got shape {array.shape} (CelebA's "
            "(N, 10) landmark table reshapes with .reshape(-1, 5, 2))"
        )
    problems = landmark_problems(array)
    if problems:
        index, problem = problems[0]
        raise ValueError(
            f"landmarks of image {index} cannot be aligned: {problem} ({len(problems)} images in all); "
            "correct them, or extract without landmarks"
        )
    return array


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

    def points(self, image: np.ndarray, box: Box) -> np.ndarray:
        """(5, 2) float64 x, y of dlib's 5 shape-predictor points for the face in ``box``."""
        shape = self._landmarks(_rgb(image), self._dlib.rectangle(*box))
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)

    def describe_points(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(128,) float32 descriptor of the face whose dlib points (5, 2) are ``points`` (see :meth:`points`).

        The descriptor's chip is cut from the points alone; the box around them only completes dlib's shape.
        """
        dlib = self._dlib
        rounded = np.rint(np.asarray(points, dtype=np.float64)).astype(int)  # dlib's points are integer pixels
        (left, top), (right, bottom) = rounded.min(axis=0), rounded.max(axis=0)
        shape = dlib.full_object_detection(
            dlib.rectangle(int(left), int(top), int(right), int(bottom)), [dlib.point(int(x), int(y)) for x, y in rounded]
        )
        descriptor = self._network.compute_face_descriptor(_rgb(image), shape, self.jitters)
        return np.asarray(descriptor, dtype=np.float32)

    def extract(
        self,
        load: Callable[[int], np.ndarray],
        count: int,
        *,
        landmarks: np.ndarray | None = None,
        progress: bool = True,
        pool: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descriptors of images ``load(0) .. load(count - 1)``, shaped like :func:`dmlfaces.features.extract_features`.

        Args:
            landmarks: (count, 5, 2) x, y of each image's eye centres, nose tip and mouth corners (CelebA's
                order), or None. With them, an image without a detection is aligned from its landmarks (see
                the module docstring; a second pass, after the detected images have calibrated the
                alignment); without them, it is described whole.
            pool: joins this call's (K, 5, 2) calibration points with those of the other processes sharing the
                images (under torchrun), so that every process calibrates on all detections; None: this call's.
        Returns:
            unit features (count, 128) float32, their norms (count,) float32 (for ``write_features``) and
            (count,) str: how each face was found, one of ``FOUND_BY``.
        Raises:
            ValueError: landmarks of the wrong shape, or of an image that cannot be aligned (``check_landmarks``).
            NoDetectionError: landmarks given, but no image had a detection to calibrate them on.
        """
        if landmarks is not None:
            landmarks = check_landmarks(landmarks, count)
        features = np.zeros((count, DESCRIPTOR_DIM), dtype=np.float32)
        found_by = np.full(count, WHOLE_IMAGE, dtype=f"<U{max(map(len, FOUND_BY))}")
        calibration = []  # dlib's points of each detected image, in the template frame of its landmarks
        for index in tqdm(range(count), desc="dlib", disable=not progress, mininterval=2.0):
            image = _rgb(load(index))
            boxes = self.detect(image)
            if boxes:
                points = self.points(image, boxes[0])
                features[index], found_by[index] = self.describe_points(image, points), DETECTOR
                if landmarks is not None:
                    calibration.append(to_reference(points, landmarks[index]))
            elif landmarks is None:  # the second pass, if any, describes the rest from their landmarks
                features[index] = self.describe(image, (0, 0, image.shape[1] - 1, image.shape[0] - 1))[0]
        if landmarks is not None:
            undetected = np.flatnonzero(found_by != DETECTOR)
            samples = np.asarray(calibration, dtype=np.float64).reshape(-1, 5, 2)
            samples = pool(samples) if pool is not None else samples
            if len(undetected) and not len(samples):
                raise NoDetectionError(
                    f"dlib's detector found a face in none of the {count} images, so there is nothing to calibrate the "
                    "landmark alignment on; describe the images without landmarks (each taken whole: "
                    "DlibEmbedder.extract(..., landmarks=None), 'dmlfaces extract --dlib --no-landmarks'), or add "
                    "images in which dlib detects faces"
                )
            # The median, not the mean: a detection that went wrong (a box on the hair) must not move it.
            template = np.median(samples, axis=0) if len(samples) else None
            for index in tqdm(undetected, desc="dlib (landmarks)", disable=not progress, mininterval=2.0):
                points = from_reference(template, landmarks[index])
                features[index], found_by[index] = self.describe_points(_rgb(load(index)), points), LANDMARKS
        norms = np.linalg.norm(features, axis=1)
        return features / np.maximum(norms, 1e-12)[:, None], norms.astype(np.float32), found_by


def faces_path(features_path: str | os.PathLike[str]) -> Path:
    """``X.faces.csv`` beside the features file ``X.npz``."""
    path = Path(features_path)
    return path.with_name(path.stem + FACES_SUFFIX)


def write_found_by(path: str | os.PathLike[str], names: Sequence[str], found_by: np.ndarray) -> None:
    """Write ``name,found_by`` per image (``found_by`` (N,) values of ``FOUND_BY``) to ``path`` atomically."""
    found_by = np.asarray(found_by)
    if found_by.shape != (len(names),) or not np.isin(found_by, FOUND_BY).all():
        raise ValueError(
            f"found_by must be ({len(names)},) values of {FOUND_BY}, got {found_by.shape} "
            f"{sorted(set(found_by.ravel().tolist()) - set(FOUND_BY))[:3]}"
        )
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["name", "found_by"])
    writer.writerows(zip(names, found_by.tolist()))
    atomic_write_text(path, table.getvalue())


def read_found_by(path: str | os.PathLike[str]) -> pd.Series:
    """(N,) str how each image's face was found (``FOUND_BY``), indexed by image name, from a ``.faces.csv``.

    Raises:
        DataFormatError: naming the file (and line): missing, other columns, an unknown value, a name twice.
    """
    path = Path(path)
    fix = "extract the features again with 'dmlfaces extract --dlib', which writes it beside the .npz"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataFormatError(path, "file is missing", fix=fix) from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise DataFormatError(path, f"not a readable CSV file ({str(exc).strip()})", fix=fix) from None
    if list(frame.columns) != ["name", "found_by"]:
        raise DataFormatError(path, f"columns {list(frame.columns)}", line=1, expected="the header name,found_by", fix=fix)
    bad = ~frame["found_by"].isin(FOUND_BY)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFormatError(
            path,
            f"image {frame['name'][row]}: found_by {frame['found_by'][row]!r}",
            line=row + 2,
            expected=" or ".join(FOUND_BY),
            fix=fix,
        )
    twice = frame["name"].duplicated()
    if twice.any():
        row = int(np.argmax(twice))
        raise DataFormatError(
            path, f"image {frame['name'][row]} is listed twice", line=row + 2, expected="each image once", fix=fix
        )
    return pd.Series(frame["found_by"].to_numpy(), index=pd.Index(frame["name"], name="name"), name="found_by")
