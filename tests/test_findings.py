"""The words the book's summary pages use are chosen from the numbers: verdicts, clauses and tables."""

from __future__ import annotations

from pathlib import Path

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
    assert str(tar) == "5% [1, 11]"  # an interval 10 points wide: whole points
    assert str(Tar(0.123)) == "12.3%"
    nearest = findings.tar_at(_report(), "coreset", "0.0001", rule="nearest")
    assert nearest == Tar(*(_report()["methods"]["coreset"]["0.0001"][key] for key in ("tar_nearest", "ci_low", "ci_high")))


def test_a_shown_tar_keeps_the_digits_its_interval_supports() -> None:
    assert [findings.shown_decimals(low, high) for low, high in ((17.2, 22.6), (42.5, 43.5), (43.0, 43.1), (5.0, 5.0))] == [
        0,
        1,
        2,
        2,
    ]
    assert str(Tar(0.431, 0.425, 0.435)) == "43.1% [42.5, 43.5]" and str(Tar(0.197, 0.172, 0.226)) == "20% [17, 23]"


@pytest.mark.parametrize(
    ("difference", "word", "phrase"),
    [
        (Difference(0.02, 0.001, 0.04), "beats", "beats it (+2.0 points, 95 % interval [+0.1, +4.0])"),
        (Difference(-0.02, -0.04, -0.001), "loses to", "loses to it (-2.0 points, 95 % interval [-4.0, -0.1])"),
        (Difference(0.01, -0.01, 0.03), "ties", "ties with it (+1 points, 95 % interval [-1, +3])"),
        (Difference(0.0, 0.0, 0.0), "ties", "ties with it (+0.00 points, 95 % interval [+0.00, +0.00])"),
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
    assert table.loc["mean", "TAR"] == "20% [15, 25]" and table.loc["mean", "coreset"] == "40% [35, 45]"
    assert table.loc["mean", "difference"] == "+20 [+15, +25]"
    differences = findings.difference_table(_report(), ["coreset"], ["mean"], ["0.0001", "0.001"])
    assert differences.loc[("coreset", "mean"), "FAR=1e-3"] == "+20 [+15, +25] beats"


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
    assert table.loc["k5", "TAR@1e-4"] == "10% [0, 20]"
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
    assert table.iloc[0]["difference@1e-4"] == "+2 [+1, +3] helps"
    assert table.iloc[1]["difference@1e-4"] == "-2 [-3, -1] hurts"
    assert table.iloc[2]["difference@1e-3"] == "+0 [-1, +1] no clear effect"
    assert table.iloc[0]["official code"] == CHANGES[0].official_does


def test_lowest_reported_fars_skip_what_the_protocol_cannot_measure() -> None:
    assert findings.lowest_reported_fars({"measurable_fars": ["0.1", "1e-06", "0.001", "0.01"]}) == ("0.001", "0.01")


def test_the_identification_table_has_a_row_per_method_gallery_and_probe_list() -> None:
    result = {"rank_1": 0.5, "rank_5": 0.8, "tpir_at_fpir": {"0.01": 0.3, "0.1": 0.6}}
    table = findings.identification_table(
        {"mean": {"1N_gallery_G1": {"1N_probe_mixed": result}}, "coreset": {"1N_gallery_G1": {"1N_probe_mixed": result}}}
    )
    assert list(table.index) == [("mean", "G1", "mixed"), ("coreset", "G1", "mixed")]
    assert list(table.columns) == ["rank-1", "rank-5", "TPIR@0.01", "TPIR@0.1"] and table.index.names == [
        "method",
        "gallery",
        "probes",
    ]


def test_chapter_04s_sentences_and_tables_come_from_the_report() -> None:
    report = {
        **_report(),
        "subjects": 7,
        "seed_variants": ["coreset", "coreset_seed1"],
        "burst_shift": {"coreset": {"mean": 0.01, "median": 0.0, "copies": 5}, "mean": {"mean": 0.2, "median": 0.1, "copies": 5}},
    }
    texts = findings.verification_texts(report)
    assert (
        texts["pairs"] == "10 genuine and 20000 impostor"
        and texts["lowest_far"] == "0.0001"
        and texts["lowest_far_impostors"] == 2
    )
    assert texts["best_1e3"] == "coreset" and texts["tar_1e3_mean"] == "20.0%" and texts["headline_far"] == "1e-4"
    assert texts["coreset_width"] == "10.0" and texts["seed_tars"] == "5.0%, 3.0%" and texts["seed_range"] == "2.0"
    assert texts["burst_copies"] == 5 and texts["genuine_subjects"] == 7 and texts["methods"] == 4
    assert findings.trained_methods(report, ["mean", "media_template"]) == ["coreset", "coreset_seed1"]
    verdicts = findings.verdict_table(report, report["seed_variants"], ["mean", "media_template"], ["0.0001", "0.001"])
    assert verdicts.loc["mean", "FAR=1e-3"] == "beats" and verdicts.loc["mean", "FAR=1e-4"].startswith(
        "no verdict (seeds disagree"
    )
    assert verdicts.loc["media_template", "FAR=1e-4"] == "loses to" and verdicts.index.name == "coreset, every seed, against"
    bursts = findings.burst_table(report)
    assert bursts.loc["mean", "mean shift"] == 0.2 and list(bursts.columns) == ["mean shift", "median shift"]
    nearest = findings.tar_table(report, ["0.001"], rule="nearest")
    assert nearest.loc["mean", "FAR=1e-3"] == "20% [15, 25]"


def test_the_introductions_study_s_figures_and_the_summarys_verdicts() -> None:
    report = {
        **_report(),
        "subjects": 7,
        "seed_variants": ["coreset", "coreset_seed1"],
        "burst_shift": {"coreset": {"mean": 0.01, "median": 0.0, "copies": 5}, "mean": {"mean": 0.2, "median": 0.1, "copies": 5}},
    }
    aggregator = {"picked_quality": 0.61, "template_quality": 0.5, "gamma": {"coreset": 0.02}}
    texts = findings.introduction_texts(report, aggregator, ["mean", "media_template"])
    assert texts["s_far"] == "1e-4" and texts["s_tar_coreset"] == "5% [1, 11]" and texts["s_comparisons"] == 4
    assert texts["s_verdict_media_template"] == "loses to" and texts["s_wins"] == 0 and texts["s_losses_all"] == 1
    assert texts["s_tar_mean"] == findings.comparisons(report, report["seed_variants"], ["mean"], "0.0001").loc["mean", "TAR"]
    assert findings.best_methods(report, ["coreset", "media_template", "mean"], "0.001") == "coreset and media_template"
