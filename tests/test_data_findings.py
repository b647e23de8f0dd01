"""Chapter 01's findings about SynthFaces: dlib's view in words and tables, the CelebA attributes it renders."""

from __future__ import annotations

import pandas as pd

from dmlfaces import data_findings


def test_chapter_01s_realism_sentences_and_tables() -> None:
    realism = {
        "detection_rate": 0.05,
        "images": 1200,
        "detected": 60,
        "landmark_aligned": 1000,
        "whole_image": 140,
        "genuine_pairs": 3000,
        "impostor_pairs": 700000,
        "tar_at_far": {"0.001": 0.25, "0.01": 0.5},
        "detector_only": {"genuine_pairs": 12, "impostor_pairs": 1700, "tar_at_far": {"0.01": 0.4}},
        "published_lfw_accuracy": 0.9938,
    }
    texts = data_findings.realism_texts(realism)
    assert texts["dlib_share"] == "only a few" and texts["dlib_images"] == "1,200" and texts["dlib_lfw"] == "99.38%"
    assert texts["dlib_detected_pairs"] == "12 genuine and 1,700 impostor" and texts["dlib_tar_1e3"] == "25.0%"
    routes, tars = data_findings.realism_tables(realism)
    assert routes["images"].tolist() == [60, 1000, 140] and tars.loc["0.01"].tolist() == [0.5, 0.4]
    attributes = pd.DataFrame({"Male": [1, -1, 1, 1], "Smiling": [-1, -1, 1, -1], "Hat": [1, 1, 1, 1]})
    shown = data_findings.rendered_attribute_table(attributes, ["Male", "Hat", "Smiling"], ["Smiling", "Male"])
    assert shown.index.tolist() == ["Male", "Smiling"] and shown["fraction of images with it"].tolist() == [0.75, 0.25]


def test_the_detection_share_in_words() -> None:
    shares = [data_findings.detection_share(rate) for rate in (0.0, 0.05, 0.3, 0.5, 1.0)]
    assert shares == ["none", "only a few", "fewer than half", "half or more", "all"]
