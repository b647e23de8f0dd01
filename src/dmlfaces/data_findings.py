"""Chapter 01's findings about SynthFaces itself, in words and tables: how much of it dlib's detector finds and
how dlib's descriptor verifies it (``eval.realism.dlib_realism``), and the CelebA attributes it renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def detection_share(rate: float) -> str:
    """Words for the fraction of images in which the detector found a face: "none", "only a few" (below 10 %),
    "fewer than half", "half or more" or "all"."""
    if rate <= 0:
        return "none"
    if rate >= 1:
        return "all"
    return "only a few" if rate < 0.1 else "fewer than half" if rate < 0.5 else "half or more"


def realism_texts(realism: Mapping) -> dict[str, str]:
    """Chapter 01's sentences' figures from dlib's view of SynthFaces (``eval.realism.dlib_realism``)."""
    detected = realism["detector_only"]
    return {
        "dlib_share": detection_share(realism["detection_rate"]),
        "dlib_images": f"{realism['images']:,}",
        "dlib_detected": f"{realism['detected']:,}",
        "dlib_detection_rate": f"{100 * realism['detection_rate']:.1f}%",
        "dlib_landmark_aligned": f"{realism['landmark_aligned']:,}",
        "dlib_whole_image": f"{realism['whole_image']:,}",
        "dlib_genuine_pairs": f"{realism['genuine_pairs']:,}",
        "dlib_impostor_pairs": f"{realism['impostor_pairs']:,}",
        "dlib_tar_1e3": f"{100 * realism['tar_at_far']['0.001']:.1f}%",
        "dlib_tar_1e2": f"{100 * realism['tar_at_far']['0.01']:.1f}%",
        "dlib_detected_pairs": f"{detected.get('genuine_pairs', 0):,} genuine and {detected.get('impostor_pairs', 0):,} impostor",
        "dlib_lfw": f"{100 * realism['published_lfw_accuracy']:.2f}%",
    }


def realism_tables(realism: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How dlib found the faces (images per route) and its TAR at FAR on every image and on detector-found ones."""
    routes = pd.DataFrame(
        {"images": [realism["detected"], realism["landmark_aligned"], realism["whole_image"]]},
        index=["found by dlib's detector", "aligned from the landmarks", "described as the whole image"],
    ).rename_axis("face")
    tars = pd.DataFrame(
        {
            "dlib TAR, every image": realism["tar_at_far"],
            "dlib TAR, detector-found faces only": realism["detector_only"].get("tar_at_far", {}),
        }
    ).rename_axis("FAR")
    return routes, tars


def rendered_attribute_table(attributes: pd.DataFrame, names: Sequence[str], rendered: Sequence[str]) -> pd.DataFrame:
    """The CelebA attributes ``names`` that SynthFaces renders, with the share of images (rows of the {-1, 1}
    ``attributes``) that have each."""
    shown = [name for name in names if name in rendered]
    return pd.DataFrame({"fraction of images with it": [(attributes[name] == 1).mean() for name in shown]}, index=shown)
