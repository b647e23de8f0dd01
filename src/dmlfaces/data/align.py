"""Face alignment: warp a face onto the ArcFace 112x112 template from its 5 landmarks.

This is the alignment every public IJB-B/C evaluator applies before feature extraction: a least-squares
similarity transform (rotation, uniform scale, translation) of the 5 detected points onto a fixed
template, then an affine warp. Points are in pixel-index coordinates (the centre of pixel (0, 0) is at
(0, 0)), the convention of ``cv2.warpAffine`` used by those evaluators.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Left eye, right eye, nose tip, left and right mouth corner in the 112x112 ArcFace crop. Source: insightface,
# recognition/arcface_torch/eval_ijbc.py (the 96x112 SphereFace points with x shifted by +8 for 112 wide),
# identical to ``arcface_dst`` in python-package/insightface/utils/face_align.py.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst`` points (Umeyama, 1991).

    Args:
        src: (N, 2) points, N >= 2 (the 5 landmarks).
        dst: (N, 2) target points.
    Returns:
        (2, 3) float64 matrix M with ``dst ~= M[:, :2] @ p + M[:, 2]`` for each point p of ``src``;
        M[:, :2] is a rotation times a positive scale (never a reflection).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"expected two (N, 2) point arrays with N >= 2, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = float(np.mean(np.sum(src_c**2, axis=1)))
    if src_var <= 0.0:
        raise ValueError("source points all coincide; no similarity transform is defined")
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    # Flip the last axis when the best orthogonal map would be a reflection (Umeyama's correction).
    d = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ np.diag(d) @ vt
    scale = float(np.sum(s * d)) / src_var
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp a face so that its 5 landmarks land on the ArcFace template (scaled by ``size / 112``).

    Args:
        image: (H, W, 3) uint8 RGB image (e.g. an IJB loose crop).
        landmarks: (5, 2) x, y landmark positions in ``image`` pixels.
        size: side of the square output.
    Returns:
        (size, size, 3) uint8 aligned face; pixels that fall outside ``image`` are black.
    """
    return align_face_with_landmarks(image, landmarks, size)[0]


def align_face_with_landmarks(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """``align_face``, and where the landmarks land in the aligned face: (5, 2), near the template, not on it
    (a similarity transform fits five points of a particular face only approximately)."""
    forward = similarity_transform(landmarks, ARCFACE_TEMPLATE.astype(np.float64) * (size / 112.0))
    # PIL wants the output->input map, and samples at pixel centres (i + 0.5); shifting by half a pixel on
    # both sides keeps the index-coordinate convention of the landmarks and of cv2.warpAffine.
    inverse = np.linalg.inv(forward[:, :2])
    half = np.array([0.5, 0.5])
    offset = inverse @ (-forward[:, 2] - half) + half
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    warped = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).transform(
        (size, size), Image.Transform.AFFINE, tuple(float(c) for c in coefficients), resample=Image.Resampling.BILINEAR
    )
    moved = np.asarray(landmarks, dtype=np.float64) @ forward[:, :2].T + forward[:, 2]
    return np.asarray(warped, dtype=np.uint8).copy(), moved
