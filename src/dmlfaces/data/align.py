"""Face alignment: warp a face onto the ArcFace 112x112 template from its 5 landmarks.

This is the alignment every public IJB-B/C evaluator applies before feature extraction: a least-squares
similarity transform (rotation, uniform scale, translation) of the 5 detected points onto a fixed
template, then an affine warp. Points are in pixel-index coordinates (the centre of pixel (0, 0) is at
(0, 0)), the convention of ``cv2.warpAffine`` used by those evaluators.

Landmarks are refused (``landmark_problems``) rather than warped into a black or smeared crop when a point
is not finite, lies outside the image (beyond the area its pixels cover, -0.5 .. W - 0.5 by -0.5 .. H - 0.5;
a point there was not detected in this image), two points coincide or all five lie on one line (within
``MIN_SPREAD`` pixels, far below any real face and above the 3-decimal precision of the IJB files), or the
similarity fit onto the template is singular (zero scale).
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
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
MIN_SPREAD = 0.01  # pixels: closer points coincide, a thinner set is a line
_SINGULAR = 1e-9  # a fitted scale this small relative to the spreads' ratio is a zero scale


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
    if not scale > _SINGULAR * np.sqrt(np.mean(np.sum(dst_c**2, axis=1)) / src_var):
        raise ValueError("the points fit the target only at zero scale; the similarity transform is singular")
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def landmark_problems(landmarks: np.ndarray, sizes: np.ndarray | None = None) -> list[tuple[int, str]]:
    """Which sets of 5 landmarks cannot be aligned, and why (see the module docstring), vectorised.

    Args:
        landmarks: (N, 5, 2) x, y in pixel-index coordinates.
        sizes: (N, 2) width, height of each image, or None to skip the bounds check.
    Returns:
        (index, problem) of every bad set, in index order; each problem is one sentence.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must have shape (N, 5, 2), got {points.shape}")
    found: dict[int, str] = {}

    def report(bad: np.ndarray, describe) -> None:
        for i in np.flatnonzero(bad):
            found.setdefault(int(i), describe(int(i)))

    finite = np.isfinite(points).all(axis=2)
    report(~finite.all(axis=1), lambda i: f"landmark {_named(int(np.argmin(finite[i])))} is not a finite number")
    points = np.where(np.isfinite(points), points, 0.0)  # the bad sets are reported; keep the rest NaN-free
    if sizes is not None:
        sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 1, 2)
        outside = ((points < -0.5) | (points > sizes - 0.5)).any(axis=2)

        def where(i: int) -> str:
            k = int(np.argmax(outside[i]))
            width, height = sizes[i, 0].astype(int)
            return (
                f"landmark {_named(k)} at ({points[i, k, 0]:.3f}, {points[i, k, 1]:.3f}) lies outside the"
                f" {width}x{height} image (x must be in -0.5..{width - 0.5}, y in -0.5..{height - 0.5})"
            )

        report(outside.any(axis=1), where)
    distances = np.where(np.eye(5, dtype=bool), np.inf, np.linalg.norm(points[:, :, None] - points[:, None], axis=3))
    close = distances.reshape(len(points), -1).min(axis=1) < MIN_SPREAD

    def coincide(i: int) -> str:
        a, b = divmod(int(np.argmin(distances[i])), 5)
        return f"landmarks {_named(a)} and {_named(b)} coincide at ({points[i, a, 0]:.3f}, {points[i, a, 1]:.3f})"

    report(close, coincide)
    centred = points - points.mean(axis=1, keepdims=True)
    spread = np.linalg.svd(centred, compute_uv=False) / np.sqrt(5)  # (N, 2) RMS spread along each principal axis
    report(spread[:, 1] < MIN_SPREAD, lambda i: f"the 5 landmarks lie on one line (spread across it {spread[i, 1]:.4f} px)")
    # similarity_transform's zero-scale test, batched (the per-set SVD would cost IJB-C ~25 s).
    target = ARCFACE_TEMPLATE.astype(np.float64) - ARCFACE_TEMPLATE.astype(np.float64).mean(axis=0)
    u, s, vt = np.linalg.svd(np.einsum("kd,nke->nde", target, centred) / 5)
    d = np.where(np.linalg.det(u) * np.linalg.det(vt) >= 0, 1.0, -1.0)
    variance = np.sum(spread**2, axis=1)
    singular = ~(s[:, 0] + d * s[:, 1] > _SINGULAR * np.sqrt(np.mean(np.sum(target**2, axis=1)) * variance))
    report(singular, lambda i: "the landmarks fit the template only at zero scale; the similarity transform is singular")
    return sorted(found.items())


def _named(k: int) -> str:
    """``'3 (nose)'`` for landmark index 2."""
    return f"{k + 1} ({LANDMARK_NAMES[k]})"


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
    (a similarity transform fits five points of a particular face only approximately).

    Raises:
        ValueError: the landmarks cannot be aligned (``landmark_problems`` names why).
    """
    problems = landmark_problems(np.asarray(landmarks)[None], np.array([image.shape[1], image.shape[0]]))
    if problems:
        raise ValueError(problems[0][1])
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
