"""The words the book's summary pages use are chosen from the numbers: verdicts, clauses and tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from dmlfaces import findings
from dmlfaces.findings import Difference, Tar


def _row(tar: float, low: float | None, high: float | None) -> dict:
    return {"tar_exact": tar, "ci_low_exact": low, "ci_high_exact": high, "tar_nearest": tar, "ci_low": low, "ci_high": high}


def _difference(value: float, low: float, high: float) -> dict:
    return {
        "difference": value,
        "ci_low": low,
        "ci_high": high,
        "difference_nearest": value,
        "ci_low_nearest": low,
        "ci_high_nearest": high,
    }


def _report() -> dict:
    """A 1:1 report as OneToOneReport.to_dict writes it: at 1e-3 the coreset (both seeds) beats the mean and
    ties with media_template; at 1e-4 its seeds disagree against the mean."""
    return {
        "measurable_fars": ["0.0001", "0.001"],
        "genuine_pairs": 10,
        "impostor_pairs": 20000,
        "methods": {
            "coreset": {"0.0001": _row(0.05, 0.01, 0.11), "0.001": _row(0.40, 0.35, 0.45)},
            "coreset_seed1": {"0.0001": _row(0.03, 0.01, 0.09), "0.001": _row(0.38, 0.33, 0.43)},
            "mean": {"0.0001": _row(0.02, 0.01, 0.08), "0.001": _row(0.20, 0.15, 0.25)},
            "media_template": {"0.0001": _row(0.30, 0.20, 0.40), "0.001": _row(0.40, 0.30, 0.50)},
        },
        "differences": {
            "coreset - mean": {"0.0001": _difference(0.03, 0.01, 0.05), "0.001": _difference(0.20, 0.15, 0.25)},
            "coreset - media_template": {"0.0001": _difference(-0.25, -0.3, -0.2), "0.001": _difference(0.0, -0.02, 0.02)},
            "coreset_seed1 - mean": {"0.0001": _difference(0.01, -0.01, 0.03), "0.001": _difference(0.18, 0.13, 0.23)},
            "coreset_seed1 - media_template": {
                "0.0001": _difference(-0.27, -0.3, -0.2),
                "0.001": _difference(-0.02, -0.04, 0.01),
            },
        },
    }


def test_tar_reads_the_exact_rule_with_its_interval_and_prints_percent() -> None:
    tar = findings.tar_at(_report(), "coreset", "0.0001")
    assert tar == Tar(0.05, 0.01, 0.11)
    assert str(tar) == "5.0% [1.0, 11.0]"
    assert str(Tar(0.123)) == "12.3%"


@pytest.mark.parametrize(
    ("difference", "word", "phrase"),
    [
        (Difference(0.02, 0.001, 0.04), "beats", "beats it (+2.0 points, 95 % interval [+0.1, +4.0])"),
        (Difference(-0.02, -0.04, -0.001), "loses to", "loses to it (-2.0 points, 95 % interval [-4.0, -0.1])"),
        (Difference(0.01, -0.01, 0.03), "ties", "ties with it (+1.0 points, 95 % interval [-1.0, +3.0])"),
        (Difference(0.0, 0.0, 0.0), "ties", "ties with it (+0.0 points, 95 % interval [+0.0, +0.0])"),
    ],
)
def test_the_verdict_follows_the_paired_interval(difference: Difference, word: str, phrase: str) -> None:
    assert difference.verdict == word
    assert findings.comparison_phrase(difference) == phrase


def test_a_verdict_stands_only_when_every_seed_gives_it() -> None:
    report = _report()
    assert findings.seed_verdict(report, ["coreset", "coreset_seed1"], "mean", "0.001") == "beats"
    assert findings.seed_verdict(report, ["coreset", "coreset_seed1"], "media_template", "0.0001") == "loses to"
    assert findings.seed_verdict(report, ["coreset", "coreset_seed1"], "mean", "0.0001") == (
        "no verdict (seeds disagree: coreset beats, coreset_seed1 ties)"
    )
    spread = findings.seed_spread(report, ["coreset", "coreset_seed1"], "0.001")
    assert spread["min"] == 0.38 and spread["max"] == 0.40 and spread["range"] == pytest.approx(0.02)


def test_seed_variants_are_those_changing_only_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "aggregator_variants": {
                    "coreset": {},
                    "k1": {"k": 1},
                    "coreset_seed1": {"seed": 1},
                    "k1_seed1": {"k": 1, "seed": 1},
                    "coreset_seed2": {"seed": 2},
                }
            }
        )
    )
    assert findings.seed_variants(path) == ["coreset", "coreset_seed1", "coreset_seed2"]
    assert findings.seed_variants(path, "k1") == ["k1", "k1_seed1"]


def test_comparisons_give_one_row_per_baseline() -> None:
    table = findings.comparisons(_report(), ["coreset", "coreset_seed1"], ["mean", "media_template"], "0.001")
    assert list(table.index) == ["mean", "media_template"]
    assert list(table["verdict"]) == ["beats", "ties"]
    assert table.loc["mean", "TAR"] == "20.0% [15.0, 25.0]" and table.loc["mean", "coreset"] == "40.0% [35.0, 45.0]"
    assert table.loc["mean", "difference"] == "+20.0 [+15.0, +25.0]"
    differences = findings.difference_table(_report(), ["coreset"], ["mean"], ["0.0001", "0.001"])
    assert differences.loc[("coreset", "mean"), "FAR=1e-3"] == "+20.0 [+15.0, +25.0] beats"


def test_the_headline_far_falls_back_to_the_lowest_measurable_one() -> None:
    assert findings.headline_far({"measurable_fars": ["1e-05", "0.0001", "0.001"]}) == "0.0001"
    assert findings.headline_far({"measurable_fars": ["0.1", "0.01"]}) == "0.01"
    assert [findings.far_text(far) for far in ("1e-05", "0.0001", "0.1")] == ["1e-5", "1e-4", "1e-1"]


def test_tar_table_has_every_method_and_far() -> None:
    table = findings.tar_table(_report(), ["0.0001", "0.001"])
    assert list(table.columns) == ["FAR=1e-4", "FAR=1e-3"] and list(table.index) == [
        "coreset",
        "coreset_seed1",
        "mean",
        "media_template",
    ]


def _scores(accuracy: float, majority: float, **extra: float) -> dict:
    return {"accuracy": accuracy, "majority_rate": majority, "nmi": 0.1, "ari": 0.1, "probe_accuracy": 0.9, **extra}


def _attributes() -> dict:
    return {
        "age": {"protocol": "extra", "status": "ok", "uncontrolled": _scores(0.8, 0.5), "controlled": _scores(0.9, 0.5)},
        "beard": {"protocol": "intra", "status": "skipped", "reason": "one state only"},
        "expression": {
            "protocol": "intra",
            "status": "ok",
            **_scores(0.62, 0.67, chance_accuracy=0.61),
            "accuracy": {"mean": 0.62},
        },
        "glasses": {"protocol": "intra", "status": "ok", **_scores(0.70, 0.60, chance_accuracy=0.72), "accuracy": {"mean": 0.70}},
        "skin_tone": {"protocol": "extra", "status": "ok", "uncontrolled": _scores(0.5, 0.55), "controlled": _scores(0.6, 0.5)},
    }


def test_attribute_table_holds_each_subset_against_its_floor() -> None:
    table = findings.attribute_table(_attributes())
    assert list(table["attribute"]) == ["beard", "expression", "glasses", "age", "age", "skin_tone", "skin_tone"]
    rows = table.set_index(["attribute", "subset"])
    assert rows.loc[("beard", "skipped: one state only"), "above floor"] is None
    assert not rows.loc[("expression", "per identity"), "above floor"]  # below its majority rate
    assert not rows.loc[("glasses", "per identity"), "above floor"]  # above the majority rate, below chance
    assert rows.loc[("age", "controlled"), "accuracy"] == 0.9 and rows.loc[("age", "all identities"), "above floor"]
    assert pd.isna(rows.loc[("age", "controlled"), "chance"])


def test_recovered_names_the_attributes_above_and_below_their_floors() -> None:
    table = findings.attribute_table(_attributes())
    assert (
        findings.recovered(table, "per identity") == "rises above its floor for none of the attributes (expression and glasses)"
    )
    assert findings.recovered(table, "all identities") == "rises above its floor for age, and not for skin tone"
    assert findings.recovered(table, "controlled") == "rises above its floor for every attribute (age and skin tone)"


def test_ablation_table_describes_every_trained_variant_in_order(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    variants = {
        "coreset": {},
        "k1": {"k": 1},
        "k5": {"k": 5},
        "gamma0": {"gamma": 0.0, "learn_gamma": False},
        "attention_pooling": {"method": "attention_pooling"},
    }
    params.write_text(yaml.safe_dump({"aggregator": {"k": 3}, "aggregator_variants": variants}))
    names = ["attention_pooling", "coreset", "gamma0", "k1", "k5"]
    verification = {
        "methods": {name: {"0.0001": _row(0.1, 0.0, 0.2), "0.001": _row(0.3, 0.2, 0.4)} for name in names},
        "burst_shift": {name: {"mean": 0.01 * (i + 1)} for i, name in enumerate(names)},
    }
    aggregator = {
        "gamma": {"attention_pooling": None, "coreset": 1.5, "gamma0": 0.0, "k1": 0.01, "k5": 0.7},
        "final_training_loss": {name: 20.0 for name in names},
    }

    table = findings.ablation_table(aggregator, verification, params)

    assert list(table.index) == ["k1", "coreset", "k5", "gamma0", "attention_pooling"]
    assert table.loc["k1", "gamma"] == "0.01, fixed" and table.loc["coreset", "gamma"] == "1.500, learned"
    assert table.loc["gamma0", "changes"] == "{gamma: 0.0, learn_gamma: false}" and table.loc["coreset", "changes"] == "{}"
    assert table.loc["coreset", "K"] == 3 and table.loc["attention_pooling", "K"] is None
    assert table.loc["k5", "TAR@1e-4"] == "10.0% [0.0, 20.0]"
    assert table.loc["gamma0", "burst shift"] == 0.03 and table.loc["k5", "burst shift"] == 0.05


def test_changes_table_has_one_row_per_change_with_its_measured_effect() -> None:
    from dmlfaces.models.coreset_changes import CHANGES, change_variant

    names = [change_variant(change) for change in CHANGES] + ["coreset"]
    effects = [(0.02, 0.01, 0.03), (-0.02, -0.03, -0.01), (0.0, -0.01, 0.01)]
    differences = {
        f"{name} - faithful": {far: _difference(*effects[i % 3]) for far in ("0.0001", "0.001")} for i, name in enumerate(names)
    }
    table = findings.coreset_changes_table({"differences": differences}, ("0.0001", "0.001"))
    assert list(table.index) == [change.point for change in CHANGES] + ["Every change (our coreset)"]
    assert list(table.columns) == ["official code", "ours", "why", "difference@1e-4", "difference@1e-3"]
    assert table.iloc[0]["difference@1e-4"] == "+2.0 [+1.0, +3.0] helps"
    assert table.iloc[1]["difference@1e-4"] == "-2.0 [-3.0, -1.0] hurts"
    assert table.iloc[2]["difference@1e-3"] == "+0.0 [-1.0, +1.0] no clear effect"
    assert table.iloc[0]["official code"] == CHANGES[0].official_does


def test_lowest_reported_fars_skip_what_the_protocol_cannot_measure() -> None:
    assert findings.lowest_reported_fars({"measurable_fars": ["0.1", "1e-06", "0.001", "0.01"]}) == ("0.001", "0.01")


def _factor_report(top: str, share: float, luck: float, gap_low: float) -> dict:
    """attributes.json entries of one embedding with factor agreement: beard (within) and gender (across)."""
    shares = {"pitch": 0.0, "beard": 0.0, "none": 0.0} | {top: share}
    intra = {
        "protocol": "intra",
        "status": "ok",
        **_scores(0.65, 0.60, chance_accuracy=0.60),
        "accuracy": {"mean": 0.65, "histogram": {"range": [0, 1], "counts": [1, 2]}},
        "floor_gap": {"difference": 0.05, "low": gap_low, "high": 0.08},
        "factors": {
            "problems": 10,
            "most_followed": top,
            "top_share": shares,
            "null_top_share": {"pitch": luck, "beard": luck, "none": 0.0},
            "excess_share": {
                name: {"difference": value - (luck if name != "none" else 0.0), "low": 0.0, "high": 0.5}
                for name, value in shares.items()
            },
        },
    }
    intra["by_frame"] = {"thin": {"identities": 4, "accuracy": 0.6, "chance_accuracy": 0.55, "majority_rate": 0.7}}
    intra["controlled"] = {**intra, "status": "ok", "images_kept": 50}
    split = {
        **_scores(0.7, 0.5),
        "floor_gap": {"difference": 0.2, "low": 0.1, "high": 0.3},
        "factors": {"most_followed": "skin_tone", "scores": {"gender": {"excess_nmi": 0.01}, "skin_tone": {"excess_nmi": 0.4}}},
    }
    return {
        "attributes": {
            "beard": intra,
            "glasses": {**intra, "column": "Eyeglasses"},
            "gender": {"protocol": "extra", "status": "ok", "uncontrolled": split, "controlled": split},
        }
    }


def test_study_a_tables_say_what_the_splits_follow_and_use_the_floor_interval() -> None:
    embeddings = {
        "trained": _factor_report("pitch", 0.4, 0.1, gap_low=0.01),
        "dlib": _factor_report("beard", 0.3, 0.1, gap_low=-0.02),
    }
    table = findings.attribute_tables(embeddings)
    rows = table.set_index(["embedding", "attribute", "subset"])
    # The gap's interval decides, not the two numbers (0.65 > 0.60 in both).
    assert rows.loc[("trained", "beard", "per identity"), "above floor"]
    assert not rows.loc[("dlib", "beard", "per identity"), "above floor"]
    assert rows.loc[("dlib", "beard", findings.NUISANCE_HELD), "above floor interval"] == "[-2.0, +8.0]"
    followed = findings.followed_table(embeddings)
    assert findings.followed_sentence(followed, "trained", "beard", "per identity") == (
        "pitch (the top factor of 40% of the identities against 10% for random splits; beard tops -10 points of the identities against random splits)"
    )
    assert findings.followed_sentence(followed, "dlib", "beard", "per identity").startswith("beard itself (the top factor of 30%")
    assert findings.followed_sentence(followed, "trained", "gender", "all identities") == (
        "skin tone (NMI 0.40 beyond chance; gender: NMI +0.01 beyond chance)"
    )
    assert findings.nuisance_text(
        {
            "max_yaw_deg": 20.0,
            "max_pitch_deg": 15.0,
            "max_light_strength": 0.4,
            "max_blur": 1.5,
            "no_occlusion": True,
            "full_resolution": False,
        }
    ).endswith("blur at most 1.5 pixels, no occluder")
    within = findings.factor_matrix(embeddings, "intra")
    assert within.loc["pitch", "beard, trained embedding, all"] == pytest.approx(0.3)  # share minus random splits' share
    assert list(within.index)[0] == "pitch"  # sorted by mean
    across = findings.factor_matrix(embeddings, "extra")
    assert across.loc["skin_tone"].tolist() == [0.4] * 4
    paper = findings.paper_comparison(embeddings)
    assert paper.loc["beard", "paper v2"] == 90.0 and paper.loc["beard", "trained"] == 65.0
    assert paper.loc["gender", "dlib controlled floor"] == 50.0
    reasons = findings.difference_reasons(embeddings).set_index(["attribute", "embedding"])["why ours differs"]
    assert reasons[("beard", "dlib ResNet")].startswith("the paper: 90.0 %; per identity: 65.0 %, not above its floor of 60.0 %")
    assert "its splits following skin tone" in reasons[("gender", "trained embedding")]
    sentences = findings.followed_sentences(followed, ["trained"], ["beard", "hat"], ["gender"])
    assert sentences["follows_trained_hat_all"] == "no split to describe" and len(sentences) == 6
    assert sentences["follows_trained_gender_held"].startswith("skin tone")
    frames = findings.glasses_by_frame(embeddings)
    assert set(frames["subset"]) == {"per identity", findings.NUISANCE_HELD} and set(frames["frame"]) == {"thin"}
    assert len(findings.accuracy_histograms(embeddings)) == 4
