"""`dmlfaces verify` end to end on a small protocol in the IJB layout: extraction, every aggregator, 1:1 and 1:N."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.ijb import read_ijb
from dmlfaces.features import FeatureSet, read_features, read_official_feature_pickle, write_features
from dmlfaces.models.aggregators import build_aggregator
from dmlfaces.verify import (
    compared_methods,
    describe_protocol,
    describe_rows,
    every_crop_row,
    match_crops,
    verify_descriptors,
    verify_protocol,
)


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dmlfaces", "verify", *args], capture_output=True, text=True, timeout=600)


def test_verify_extracts_aggregates_and_scores_every_method(tiny_data: Path, tiny_backbone: Path, tmp_path: Path) -> None:
    result = _verify(
        "--ijb", str(tiny_data / "IJBS"), "--backbone", str(tiny_backbone), "--out", str(tmp_path), "--resamples", "20"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "verification.json").read_text())
    assert set(report["methods"]) == {"mean", "norm_weighted", "media_template", "media_template_N1D1"}
    assert "differences" not in report  # no trained method to compare with the baselines
    row = report["methods"]["mean"]["0.1"]
    assert 0 <= row["tar_exact"] <= 1 and row["ci_low"] is not None and row["ci_low"] <= row["ci_high"]
    assert report["genuine_pairs"] + report["impostor_pairs"] == len(read_ijb(tiny_data / "IJBS").pairs)
    assert "1N_gallery_G1" in report["one_to_n"]["mean"]
    written = read_features(tmp_path / "features.npz")
    assert written.flip_test and written.single_features.shape == written.features.shape
    # The features written on the way are reusable, and give the same numbers.
    again = _verify(
        "--ijb",
        str(tiny_data / "IJBS"),
        "--features",
        str(tmp_path / "features.npz"),
        "--out",
        str(tmp_path / "b"),
        "--resamples",
        "20",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "b" / "verification.json").read_text())["methods"] == report["methods"]


def _unit_features(protocol, dim: int = 8, seed: int = 0) -> FeatureSet:
    """Random unit features (U, dim) of every distinct crop of ``protocol``, in order of first listing."""
    names = protocol.crop_names[protocol.unique_crops]
    features = np.random.default_rng(seed).normal(size=(len(names), dim)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return FeatureSet(names, features, np.ones(len(names), np.float32))


def test_methods_evaluated_without_the_flip_test_read_the_single_passes(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    flip, single = _unit_features(protocol, seed=0), _unit_features(protocol, seed=1)
    crops = FeatureSet(flip.names, flip.features, flip.norms, single_features=single.features, single_norms=single.norms)
    as_published = build_aggregator("mean", 8).eval()
    as_published.flip_test = False  # what load_aggregator sets for aggregator flip_test: false
    described = describe_protocol({**compared_methods(8), "published": as_published}, protocol, crops)
    assert list(described) == [*compared_methods(8), "published", "media_template_N1D1"]
    on_single, on_flip = (
        describe_protocol(compared_methods(8), protocol, single),
        describe_protocol(compared_methods(8), protocol, flip),
    )
    assert np.array_equal(described["published"][1], on_single["mean"][1])
    assert all(np.array_equal(described[name][1], on_flip[name][1]) for name in on_flip)
    with pytest.raises(DataFormatError, match="holds flip-test features only"):
        describe_protocol({"published": as_published}, protocol, flip)
    broken = single.features.copy()
    broken[2] = np.nan
    with pytest.raises(DataFormatError, match="single-pass crop features are NaN/inf and 0 are zero: .3.jpg. \\(template 3\\)"):
        describe_protocol(
            {"published": as_published},
            protocol,
            FeatureSet(flip.names, flip.features, flip.norms, single_features=broken, single_norms=single.norms),
        )
    rows = match_crops(protocol, crops)[0]
    with pytest.raises(ValueError, match="methods published are evaluated on single-pass crop features: pass single_pass"):
        describe_rows(
            {"published": as_published}, flip.features[rows], flip.norms[rows], protocol.template_ids, protocol.media_ids
        )


def test_bad_features_are_named(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    names = protocol.crop_names[protocol.unique_crops]
    n = len(names)
    features = np.tile(np.eye(8, dtype=np.float32)[0], (n, 1))
    norms = np.ones(n, np.float32)
    norms[3] = np.nan
    crops = FeatureSet(names, features, norms)
    first_row = protocol.unique_crops[3]  # the crop's first row names its first template
    with pytest.raises(DataFormatError, match=f"'{names[3]}' \\(template {protocol.template_ids[first_row]}\\)"):
        describe_protocol(compared_methods(8), protocol, crops)
    other = FeatureSet(np.array(["elsewhere.jpg", *names[1:]]), features, np.ones(n, np.float32))
    with pytest.raises(DataFormatError, match="1 of .* crops are not crops of"):
        describe_protocol(compared_methods(8), protocol, other)


def test_rows_in_another_order_are_matched_by_crop_name(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    crops = _unit_features(protocol)
    order = np.random.default_rng(1).permutation(len(crops.names))
    shuffled = FeatureSet(crops.names[order], crops.features[order], crops.norms[order])
    methods = compared_methods(8)
    for name, (templates, rows) in describe_protocol(methods, protocol, shuffled).items():
        expected_templates, expected_rows = describe_protocol(methods, protocol, crops)[name]
        np.testing.assert_array_equal(templates, expected_templates)
        np.testing.assert_allclose(rows, expected_rows, atol=1e-6)


def test_missing_crops_are_refused_unless_recorded_as_skipped(tiny_data: Path, tmp_path: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    crops = _unit_features(protocol)
    write_features(tmp_path / "f.npz", crops.names[1:], crops.features[1:], crops.norms[1:])
    short = read_features(tmp_path / "f.npz")
    gone = protocol.crop_names == crops.names[0]  # the rows of every template listing that crop
    with pytest.raises(
        DataFormatError,
        match=rf"f\.npz: key 'names': {gone.sum()} of {protocol.num_crops} crops .* are missing"
        rf" and not recorded as skipped: '{protocol.crop_names[0]}'",
    ):
        describe_protocol(compared_methods(8), protocol, short)
    write_features(tmp_path / "g.npz", crops.names[1:], crops.features[1:], crops.norms[1:], skipped=crops.names[:1])
    skipped = read_features(tmp_path / "g.npz")
    template = int(protocol.template_ids[0])
    total = int(np.count_nonzero(protocol.template_ids == template))
    lost = [
        {"template": int(t), "lost": 1, "crops": int(np.count_nonzero(protocol.template_ids == t))}
        for t in np.unique(protocol.template_ids[gone])
    ]
    with pytest.warns(UserWarning, match=rf"g\.npz: {gone.sum()} crops were skipped .* template {template} lost 1 of {total}"):
        report, _ = verify_protocol(compared_methods(8), protocol, skipped, resamples=0)
    assert report.to_dict()["lost_crops"] == lost
    assert "lost_crops" not in verify_protocol(compared_methods(8), protocol, crops, resamples=0)[0].to_dict()
    # A measure of every crop (single-image pairs) refuses what the templates' descriptors only warn about.
    with pytest.raises(
        DataFormatError,
        match=rf"g\.npz: crops of .* skipped at extraction: 1 \('{protocol.crop_names[0]}'\);"
        r" every crop is needed for single-image pairs",
    ):
        every_crop_row(protocol, skipped, "single-image pairs")
    rows = every_crop_row(protocol, crops, "single-image pairs")
    assert np.array_equal(crops.names[rows], protocol.crop_names)


def test_a_template_left_without_crops_is_named(tiny_data: Path, tmp_path: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    crops = _unit_features(protocol)
    template = protocol.template_ids[0]
    gone = np.isin(crops.names, protocol.crop_names[protocol.template_ids == template])
    rows_gone = np.isin(protocol.crop_names, crops.names[gone])
    emptied = [t for t in protocol.unique_templates if rows_gone[protocol.template_ids == t].all()]  # it and its subsets
    write_features(tmp_path / "f.npz", crops.names[~gone], crops.features[~gone], crops.norms[~gone], skipped=crops.names[gone])
    with pytest.raises(
        DataFormatError,
        match=rf"f\.npz: every crop of {len(emptied)} templates was skipped: templates"
        rf" {', '.join(map(str, emptied))};",
    ):
        describe_protocol(compared_methods(8), protocol, read_features(tmp_path / "f.npz"))
    # The same template with zero features for all its crops, read from a file.
    features, norms = crops.features.copy(), crops.norms.copy()
    features[gone], norms[gone] = 0, 0
    write_features(tmp_path / "z.npz", crops.names, features, norms)
    with pytest.raises(
        DataFormatError,
        match=rf"z\.npz: 0 crop features are NaN/inf and {rows_gone.sum()} are zero:"
        rf" .*; every crop of templates {', '.join(map(str, emptied))} has a zero or non-finite feature",
    ):
        describe_protocol(compared_methods(8), protocol, read_features(tmp_path / "z.npz"))


def test_field_default_weights_crops_by_norm_and_detector_score(tiny_data: Path) -> None:
    """insightface's default N1 D1 F2: a crop's weight in its media mean is its feature norm times its detector score."""
    import dataclasses

    protocol = read_ijb(tiny_data / "IJBS")
    crops = _unit_features(protocol)
    rng = np.random.default_rng(5)
    crops = FeatureSet(crops.names, crops.features, rng.uniform(0.5, 2.0, len(crops.names)).astype(np.float32))
    described = describe_protocol(compared_methods(8), protocol, crops)
    templates, descriptors = described["media_template_N1D1"]
    rows = match_crops(protocol, crops)[0]
    template = templates[0]
    in_template = protocol.template_ids == template
    weights = crops.norms[rows] * protocol.detector_scores
    expected = np.zeros(8)
    for media in np.unique(protocol.media_ids[in_template]):
        chosen = in_template & (protocol.media_ids == media)
        expected += (crops.features[rows[chosen]] * weights[chosen, None]).mean(axis=0)
    np.testing.assert_allclose(descriptors[0], expected / np.linalg.norm(expected), atol=1e-6)
    flat = dataclasses.replace(protocol, detector_scores=np.ones_like(protocol.detector_scores))
    assert not np.allclose(describe_protocol(compared_methods(8), flat, crops)["media_template_N1D1"][1], descriptors)


def test_verify_descriptors_on_described_templates_is_verify_protocol(tiny_data: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    crops, methods = _unit_features(protocol), compared_methods(8)
    expected, expected_n = verify_protocol(methods, protocol, crops, resamples=10, keep_scores=True)
    report, one_to_n = verify_descriptors(describe_protocol(methods, protocol, crops), protocol, resamples=10, keep_scores=True)
    assert json.dumps(report.to_dict()) == json.dumps(expected.to_dict()) and json.dumps(one_to_n) == json.dumps(expected_n)
    for name, result in report.methods.items():
        assert np.array_equal(result.scores, expected.methods[name].scores)


def _official_pickle(path: Path, protocol, crops: FeatureSet) -> Path:
    """``crops`` in the official FaceCoresetNet feature pickle: one row per line of name_5pts_score.txt."""
    rows = pd.Index(crops.names).get_indexer(protocol.crop_names)
    with open(path, "wb") as handle:
        pickle.dump(
            {"img_feats": crops.features[rows], "norms": crops.norms[rows, None], "faceness_scores": protocol.detector_scores},
            handle,
        )
    return path


def test_official_feature_pickle_and_checkpoint_are_evaluated(tiny_data: Path, tmp_path: Path, official_coreset_state) -> None:
    """The official IJB feature pickle gives the numbers of the same features as .npz, and the official checkpoint's
    aggregator is evaluated beside the baselines."""
    import torch

    from dmlfaces.cli import main

    protocol = read_ijb(tiny_data / "IJBS")
    crops = _unit_features(protocol, dim=64)
    crops = FeatureSet(crops.names, crops.features, np.linspace(5, 40, len(crops.names), dtype=np.float32))
    write_features(tmp_path / "f.npz", crops.names, crops.features, crops.norms)
    torch.save({"state_dict": official_coreset_state(64), "hyper_parameters": {"coreset_size": 3}}, tmp_path / "fcn.ckpt")
    pickled = _official_pickle(tmp_path / "IJBS_ir101_webface4m.pickle", protocol, crops)
    common = ["--ijb", str(tiny_data / "IJBS"), "--resamples", "10"]
    main(["verify", *common, "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "npz")])
    main(
        [
            "verify",
            *common,
            "--features",
            str(pickled),
            "--coreset-checkpoint",
            str(tmp_path / "fcn.ckpt"),
            "--out",
            str(tmp_path / "pickle"),
        ]
    )
    from_npz = json.loads((tmp_path / "npz" / "verification.json").read_text())["methods"]
    from_pickle = json.loads((tmp_path / "pickle" / "verification.json").read_text())["methods"]
    assert set(from_pickle) == set(from_npz) | {"facecoresetnet_official"}
    assert all(from_pickle[name] == from_npz[name] for name in from_npz)


def test_official_feature_pickle_of_another_structure_is_named(tiny_data: Path, tmp_path: Path) -> None:
    protocol = read_ijb(tiny_data / "IJBS")
    crops = _unit_features(protocol, dim=16)
    good = _official_pickle(tmp_path / "good.pickle", protocol, crops)
    assert read_official_feature_pickle(good, protocol.crop_names).names.tolist() == crops.names.tolist()
    with open(good, "rb") as handle:
        data = pickle.load(handle)
    cases = {
        "list": ([data["img_feats"]], "holds list"),
        "keys": ({"feats": data["img_feats"]}, "holds \\['feats'\\]"),
        "rows": ({**data, "img_feats": data["img_feats"][1:]}, "img_feats has .* rows and norms .*, but the protocol lists"),
        "repeat": ({**data, "img_feats": np.roll(data["img_feats"], 1, axis=0)}, "differs from row"),
        "unit": ({**data, "img_feats": data["img_feats"] * 2}, "key 'img_feats': row 0 .* has length 2"),
    }
    for name, (content, message) in cases.items():
        with open(tmp_path / f"{name}.pickle", "wb") as handle:
            pickle.dump(content, handle)
        with pytest.raises(DataFormatError, match=message):
            read_official_feature_pickle(tmp_path / f"{name}.pickle", protocol.crop_names)


def test_a_pickle_naming_other_code_is_refused_not_run(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    with open(tmp_path / "evil.pickle", "wb") as handle:
        pickle.dump({"img_feats": Payload()}, handle)
    with pytest.raises(DataFormatError, match="builtins.print, which is not part of a NumPy array"):
        read_official_feature_pickle(tmp_path / "evil.pickle", np.array(["1.jpg"]))


def test_change_comparisons_measure_each_change_against_the_faithful_variant() -> None:
    from dmlfaces.verify import baseline_comparisons, change_comparisons

    names = ["mean", "coreset", "faithful", "faithful_with_pick_logits", "faithful_with_schedule", "k5"]
    assert change_comparisons(names) == [
        ("faithful_with_pick_logits", "faithful"),
        ("faithful_with_schedule", "faithful"),
        ("coreset", "faithful"),
    ]
    assert change_comparisons(["mean", "coreset", "faithful_with_schedule"]) == []
    assert ("faithful", "mean") in baseline_comparisons(names)
