"""Verification: the names older code imports from here, and the one-call 1:1 evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from dmlfaces.eval.verification import (
    all_pairs_tar_at_far,
    evaluate_one_to_one,
    mean_template_descriptors,
    pair_scores,
    tar_at_far,
    unit_rows,
)


def test_mean_template_descriptors_average_unit_features() -> None:
    features = np.array([[2.0, 0.0], [0.0, 5.0], [0.0, -1.0], [3.0, 4.0]])
    templates, descriptors = mean_template_descriptors(features, np.array([7, 7, 3, 7]))
    assert templates.tolist() == [3, 7]
    assert np.allclose(descriptors[0], [0.0, -1.0])
    expected = unit_rows(np.array([[1.0 + 0.6, 1.0 + 0.8]]))[0]
    assert np.allclose(descriptors[1], expected)


def test_pair_scores_are_cosines_and_unknown_templates_fail() -> None:
    templates = np.array([1, 5])
    descriptors = unit_rows(np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert np.allclose(pair_scores(templates, descriptors, np.array([[1, 5], [5, 5]])), [np.sqrt(0.5), 1.0])
    with pytest.raises(KeyError, match="template 4 is unknown"):
        pair_scores(templates, descriptors, np.array([[1, 4]]))


def test_tar_at_far_exact_rule_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    genuine = rng.normal(1.0, 1.0, 3000)
    impostor = rng.normal(-1.0, 1.0, 20000)
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(3000), np.zeros(20000)])
    fars = [1e-4, 1e-3, 1e-2, 1e-1]
    result = tar_at_far(scores, labels, fars)
    fpr, tpr, _ = roc_curve(labels, scores)
    for far in fars:
        # Brute force: the best TAR among ROC points whose FAR does not exceed the target.
        assert result[far] == pytest.approx(tpr[fpr <= far].max(), abs=1e-12)


def test_tar_at_far_with_ties_never_exceeds_the_target() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.5])
    labels = np.array([1, 1, 0, 0, 0, 0])
    # Four impostors; FAR 0.25 allows one false accept, but three impostors tie at 0.5.
    assert tar_at_far(scores, labels, [0.25])[0.25] == 0.5


def test_tar_at_far_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        tar_at_far(np.array([0.1, 0.2]), np.array([1, 1]), [0.1])


def test_evaluate_one_to_one_report_is_json_ready(small_protocol) -> None:
    p = small_protocol
    noisy = unit_rows(p.descriptors + np.random.default_rng(0).normal(scale=0.5, size=p.descriptors.shape))
    report = evaluate_one_to_one(
        {"clean": (p.templates, p.descriptors), "noisy": (p.templates, noisy)},
        p.pairs,
        p.labels,
        fars=(1e-3, 1e-2),
        template_subjects=(p.templates, p.subjects),
        resamples=50,
        seed=1,
        keep_scores=True,
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data["methods"]) == {"clean", "noisy"} and set(data["methods"]["clean"]) == {"0.001", "0.01"}
    row = data["methods"]["clean"]["0.01"]
    assert set(row) == {"tar_nearest", "tar_exact", "ci_low", "ci_high", "ci_low_exact", "ci_high_exact"}
    assert row["ci_low"] <= row["tar_nearest"] <= row["ci_high"]
    assert row["ci_low_exact"] <= row["tar_exact"] <= row["ci_high_exact"]
    assert data["bootstrap"] == {"unit": "subject", "resamples": 50, "confidence": 0.95, "interval": "percentile", "seed": 1}
    assert (data["genuine_pairs"], data["impostor_pairs"]) == (int(p.labels.sum()), len(p.labels) - int(p.labels.sum()))
    assert data["methods"]["clean"]["0.01"]["tar_nearest"] > data["methods"]["noisy"]["0.01"]["tar_nearest"]
    scores = report.methods["clean"].scores
    assert report.methods["clean"].tar_exact == tar_at_far(scores, p.labels, (1e-3, 1e-2))


def test_evaluate_one_to_one_without_bootstrap_and_with_missing_templates(small_protocol) -> None:
    p = small_protocol
    report = evaluate_one_to_one({"m": (p.templates, p.descriptors)}, p.pairs, p.labels)
    assert list(report.fars) == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1] and report.methods["m"].scores is None
    assert report.to_dict()["methods"]["m"]["0.1"]["ci_low"] is None
    with pytest.raises(KeyError, match=f"template {p.templates[0]} is unknown"):
        evaluate_one_to_one({"m": (p.templates[1:], p.descriptors[1:])}, p.pairs, p.labels)
    with pytest.raises(ValueError, match="need template_subjects"):
        evaluate_one_to_one({"m": (p.templates, p.descriptors)}, p.pairs, p.labels, resamples=10)


def test_paired_differences_use_the_same_resamples_and_are_narrower(small_protocol) -> None:
    p = small_protocol
    rng = np.random.default_rng(0)
    noisy = unit_rows(p.descriptors + rng.normal(scale=0.5, size=p.descriptors.shape))
    # Almost the same method as "clean": the paired difference is near 0 with a narrow interval, while
    # each method's own interval is wide (subject noise is common to both and cancels).
    twin = unit_rows(p.descriptors + rng.normal(scale=0.02, size=p.descriptors.shape))
    described = {"clean": (p.templates, p.descriptors), "noisy": (p.templates, noisy), "twin": (p.templates, twin)}
    report = evaluate_one_to_one(
        described,
        p.pairs,
        p.labels,
        fars=(1e-2, 1e-1),
        template_subjects=(p.templates, p.subjects),
        resamples=100,
        seed=3,
        comparisons=[("clean", "noisy"), ("twin", "clean")],
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data["differences"]) == {"clean - noisy", "twin - clean"}
    for far in ("0.01", "0.1"):
        row = data["differences"]["clean - noisy"][far]
        clean, noisy_row = data["methods"]["clean"][far], data["methods"]["noisy"][far]
        assert row["difference"] == pytest.approx(clean["tar_exact"] - noisy_row["tar_exact"])
        assert row["difference_nearest"] == pytest.approx(clean["tar_nearest"] - noisy_row["tar_nearest"])
        assert row["ci_low"] > 0  # the clean descriptors beat the noisy ones on every resample's pairs
    twin_row, clean_row = data["differences"]["twin - clean"]["0.1"], data["methods"]["clean"]["0.1"]
    assert twin_row["ci_high"] - twin_row["ci_low"] < 0.5 * (clean_row["ci_high_exact"] - clean_row["ci_low_exact"])
    # The interval is that of the per-resample differences of the two methods' bootstrap TARs.
    from dmlfaces.eval.bootstrap import bootstrap_tar_at_far, pair_subjects

    subjects = pair_subjects(p.pairs, p.templates, p.subjects)
    scores = {
        name: report_scores
        for name, report_scores in (
            (n, evaluate_one_to_one({n: d}, p.pairs, p.labels, fars=(0.1,), keep_scores=True).methods[n].scores)
            for n, d in described.items()
        )
    }
    samples = {
        n: bootstrap_tar_at_far(s, p.labels, subjects, (0.1,), resamples=100, seed=3).exact[:, 0] for n, s in scores.items()
    }
    low, high = np.nanpercentile(samples["twin"] - samples["clean"], [2.5, 97.5])
    assert (twin_row["ci_low"], twin_row["ci_high"]) == pytest.approx((low, high))


def test_paired_differences_need_known_methods_and_the_bootstrap(small_protocol) -> None:
    p = small_protocol
    described = {"m": (p.templates, p.descriptors)}
    with pytest.raises(ValueError, match=r"comparisons name methods \['x'\]"):
        evaluate_one_to_one(
            described, p.pairs, p.labels, template_subjects=(p.templates, p.subjects), resamples=5, comparisons=[("m", "x")]
        )
    with pytest.raises(ValueError, match="paired differences need the bootstrap"):
        evaluate_one_to_one(described | {"n": described["m"]}, p.pairs, p.labels, comparisons=[("m", "n")])


def test_methods_evaluated_side_by_side_give_the_sequential_report(small_protocol, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmlfaces.eval import verification

    p = small_protocol
    rng = np.random.default_rng(5)
    described = {
        name: (p.templates, unit_rows(p.descriptors + rng.normal(scale=scale, size=p.descriptors.shape)))
        for name, scale in (("c", 0.3), ("a", 0.8), ("d", 0.1), ("b", 1.5), ("e", 0.5))
    }

    def report():
        return evaluate_one_to_one(
            described,
            p.pairs,
            p.labels,
            fars=(1e-2, 1e-1),
            template_subjects=(p.templates, p.subjects),
            resamples=30,
            seed=2,
            keep_scores=True,
            comparisons=[("c", "a"), ("e", "b")],
        )

    side_by_side = report()
    monkeypatch.setattr(verification, "_METHODS_AT_ONCE", 1)
    one_by_one = report()
    assert list(side_by_side.methods) == list(described)  # the callers' order, not the order threads finish in
    assert json.dumps(side_by_side.to_dict()) == json.dumps(one_by_one.to_dict())
    for name in described:
        assert np.array_equal(side_by_side.methods[name].scores, one_by_one.methods[name].scores)


def _at_degrees(*angles: float) -> np.ndarray:
    radians = np.deg2rad(angles)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def test_all_pairs_tar_at_far_on_a_case_worked_by_hand() -> None:
    # Five unit vectors at these angles (degrees), so a pair's score is the cosine of their angle apart.
    # Identity 0: 0, 10, 45; identity 1: 25, 100. Genuine pairs are 10, 45, 35 and 75 degrees apart; the six
    # impostor pairs 25, 100, 15, 90, 20 and 55. FAR 0.1 of 6 impostors allows no false accept: only pairs closer
    # than 15 degrees are accepted (the genuine 10): TAR 1/4. FAR 0.5 allows 3 (15, 20, 25): genuine 10, 35 and 45
    # lie above the fourth impostor (55): TAR 3/4. FAR 1 accepts all.
    features = _at_degrees(0, 10, 45, 25, 100)
    identities = np.array(["a", "a", "a", "b", "b"])
    expected = {0.1: 0.25, 0.5: 0.75, 1.0: 1.0}
    for block_rows in (1, 2, 512):  # tiles of one row, of two (the last one short) and of all
        result = all_pairs_tar_at_far(features, identities, (0.1, 0.5, 1.0), block_rows=block_rows)
        assert result.tar == expected and (result.genuine_pairs, result.impostor_pairs) == (4, 6)
    # Features that are not unit rows are scored by their cosine all the same.
    assert all_pairs_tar_at_far(features * np.array([[2.0], [1], [3], [0.5], [1]]), identities, (0.1, 0.5, 1.0)).tar == expected
    assert result.to_dict() == {
        "tar_at_far": {"0.1": 0.25, "0.5": 0.75, "1": 1.0},
        "rule": "exact",
        "genuine_pairs": 4,
        "impostor_pairs": 6,
    }


def test_all_pairs_tar_at_far_scores_each_pair_once_as_the_pair_list_does() -> None:
    rng = np.random.default_rng(3)
    features = unit_rows(rng.normal(size=(37, 8)))
    identities = rng.integers(0, 6, 37)
    first, second = np.triu_indices(37, 1)
    scores = np.einsum("pd,pd->p", features[first], features[second])
    labels = identities[first] == identities[second]
    fars = (1e-2, 0.1, 0.3)
    result = all_pairs_tar_at_far(features, identities, fars, block_rows=5)
    assert result.tar == tar_at_far(scores, labels, fars)
    assert (result.genuine_pairs, result.impostor_pairs) == (int(labels.sum()), int((~labels).sum()))


def test_all_pairs_tar_at_far_refuses_what_it_cannot_score() -> None:
    features = _at_degrees(0, 10, 45)
    with pytest.raises(ValueError, match=r"\(N, D\) features and \(N,\) identities, got \(3, 2\) and \(2,\)"):
        all_pairs_tar_at_far(features, np.array([0, 1]))
    with pytest.raises(ValueError, match="1 images make no pair"):
        all_pairs_tar_at_far(features[:1], np.array([0]))
    with pytest.raises(ValueError, match="both genuine and impostor pairs"):
        all_pairs_tar_at_far(features, np.array([0, 1, 2]))
    broken = features.copy()
    broken[1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        all_pairs_tar_at_far(broken, np.array([0, 0, 1]))
