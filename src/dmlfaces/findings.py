"""The study's answers, chosen from the metrics files the pipeline writes (``results/metrics/*.json``).

The book's introduction and results summary state what was found in words ("beats", "does not beat",
"rises above its floor"). The words are chosen here from the numbers, so no page can say more than the
metrics it quotes; the notebooks only glue them into the prose.

Verification comparisons use the exact-threshold rule (the largest TAR whose FAR does not exceed the
target). A method *beats* a baseline when the 95 % subject-bootstrap interval of the paired difference
TAR(method) - TAR(baseline) (both measured on the same resamples of subjects) lies above 0, *loses to* it
when below, and *ties* with it when the interval holds 0. A trained method's verdict stands only when every
training seed of it gives the same one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from dmlfaces.eval.roc import REPORTED_FARS, far_key
from dmlfaces.models.coreset_changes import CHANGES, FAITHFUL_VARIANT, change_variant, change_variants
from dmlfaces.params import read_params
from dmlfaces.train.aggregator_config import load_config

HEADLINE_FAR = "0.0001"  # the operating point FaceCoresetNet and AdaFace report first (key as written: f"{far:g}")


@dataclass(frozen=True)
class Tar:
    """TAR at one FAR and its bootstrap interval (None when the run had no bootstrap)."""

    value: float
    low: float | None = None
    high: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def __str__(self) -> str:
        """In percent, rounded to what the interval supports (``shown_decimals``): ``"6% [4, 11]"``, ``"6.4%"``."""
        if not self.has_interval:
            return f"{100 * self.value:.1f}%"
        digits = shown_decimals(100 * self.low, 100 * self.high)
        return f"{100 * self.value:.{digits}f}% [{100 * self.low:.{digits}f}, {100 * self.high:.{digits}f}]"


def shown_decimals(low: float, high: float) -> int:
    """Decimals that show one significant digit of the interval [low, high]'s half-width and no more (0 to 2):
    a figure whose 95 % interval spans several points is not known to a tenth of a point."""
    half = (high - low) / 2
    if not half > 0:
        return 2
    return int(min(2, max(0, -math.floor(math.log10(half)))))


def tar_at(report: Mapping, method: str, far: str, rule: str = "exact") -> Tar:
    """TAR of ``method`` at ``far`` (a key such as ``"0.0001"``) by the ``rule`` "exact" (the largest TAR whose
    FAR does not exceed the target) or "nearest" (the public evaluators'), with its interval.

    ``report`` is a 1:1 report as ``OneToOneReport.to_dict`` writes it (``verification.json``).
    """
    row = report["methods"][method][far]
    if rule == "nearest":
        return Tar(row["tar_nearest"], row["ci_low"], row["ci_high"])
    return Tar(row["tar_exact"], row["ci_low_exact"], row["ci_high_exact"])


@dataclass(frozen=True)
class Difference:
    """TAR(method) - TAR(baseline) at one FAR and the bootstrap interval of the paired differences."""

    value: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """ "beats", "loses to" or "ties": whether the interval lies above 0, below it, or holds it."""
        return "beats" if self.low > 0 else "loses to" if self.high < 0 else "ties"

    @property
    def decimals(self) -> int:
        """``shown_decimals`` of the interval in points, or more (up to 2) where a bound other than 0 would
        round to 0: the side of 0 each bound lies on is what the verdict reads."""
        low, high = 100 * self.low, 100 * self.high
        digits = shown_decimals(low, high)
        while digits < 2 and any(bound != 0 and round(bound, digits) == 0 for bound in (low, high)):
            digits += 1
        return digits

    def __str__(self) -> str:
        """In points of TAR, rounded as ``decimals`` says: ``"+2 [+1, +4]"``, ``"+1.7 [-0.5, +4.4]"``."""
        d = self.decimals
        return f"{100 * self.value:+.{d}f} [{100 * self.low:+.{d}f}, {100 * self.high:+.{d}f}]"


def difference_at(report: Mapping, method: str, baseline: str, far: str) -> Difference:
    """The paired difference of ``method`` and ``baseline`` at ``far`` (exact rule) from a 1:1 report's
    ``differences`` (``OneToOneReport.to_dict``)."""
    row = report["differences"][f"{method} - {baseline}"][far]
    return Difference(row["difference"], row["ci_low"], row["ci_high"])


def comparison_phrase(difference: Difference) -> str:
    """The verdict with what stands behind it, e.g. "beats it (+2.1 points, interval [+0.4, +3.9])"."""
    d = difference.decimals
    interval = (
        f"{100 * difference.value:+.{d}f} points, 95 % interval [{100 * difference.low:+.{d}f}, {100 * difference.high:+.{d}f}]"
    )
    return {"beats": "beats it", "loses to": "loses to it", "ties": "ties with it"}[difference.verdict] + f" ({interval})"


def seed_verdict(report: Mapping, seeds: Sequence[str], baseline: str, far: str) -> str:
    """The verdict of every seed variant in ``seeds`` against ``baseline`` when they agree; otherwise
    "no verdict (seeds disagree: ...)", naming each seed's."""
    verdicts = [difference_at(report, name, baseline, far).verdict for name in seeds]
    if len(set(verdicts)) == 1:
        return verdicts[0]
    return "no verdict (seeds disagree: " + ", ".join(f"{name} {word}" for name, word in zip(seeds, verdicts)) + ")"


def seed_spread(report: Mapping, seeds: Sequence[str], far: str) -> dict[str, float]:
    """TAR at ``far`` of each seed variant, with their min, max and range (max - min)."""
    values = {name: tar_at(report, name, far).value for name in seeds}
    return {
        **values,
        "min": min(values.values()),
        "max": max(values.values()),
        "range": max(values.values()) - min(values.values()),
    }


def seed_variants(params_path: str | Path, method: str = "coreset") -> list[str]:
    """``method`` and every ``aggregator_variants`` entry that changes only its training seed, in params order."""
    variants = {name: dict(change or {}) for name, change in (read_params(params_path).get("aggregator_variants") or {}).items()}
    base = {key: value for key, value in variants.get(method, {}).items() if key != "seed"}
    return [method] + [
        name
        for name, change in variants.items()
        if name != method and "seed" in change and {k: v for k, v in change.items() if k != "seed"} == base
    ]


def far_text(far: str) -> str:
    """A FAR key such as ``"0.0001"`` as prose writes it: ``"1e-4"``."""
    mantissa, exponent = f"{float(far):e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def lowest_reported_fars(verification: Mapping, count: int = 2) -> tuple[str, ...]:
    """The ``count`` lowest FARs of the chapters' tables (1e-4 to 1e-1) that the protocol can measure."""
    measurable = sorted(verification["measurable_fars"], key=float)
    reported = {far_key(far) for far in REPORTED_FARS}
    return tuple(far for far in measurable if far in reported)[:count]


def headline_far(verification: Mapping) -> str:
    """``HEADLINE_FAR`` when the protocol has impostor pairs enough to measure it, else its lowest measurable FAR."""
    measurable = verification["measurable_fars"]
    return HEADLINE_FAR if HEADLINE_FAR in measurable else min(measurable, key=float)


def comparisons(report: Mapping, seeds: Sequence[str], baselines: Sequence[str], far: str) -> pd.DataFrame:
    """One row per baseline: its TAR at ``far``, the first seed's TAR and paired difference, the verdict over
    every seed in ``seeds`` (``seed_verdict``) and the first seed's phrase."""
    method = seeds[0]
    rows = {}
    for name in baselines:
        difference = difference_at(report, method, name, far)
        rows[name] = {
            "TAR": str(tar_at(report, name, far)),
            method: str(tar_at(report, method, far)),
            "difference": str(difference),
            "verdict": seed_verdict(report, seeds, name, far),
            "phrase": comparison_phrase(difference),
        }
    return pd.DataFrame(rows).T.rename_axis("baseline")


def difference_table(report: Mapping, methods: Sequence[str], baselines: Sequence[str], fars: Sequence[str]) -> pd.DataFrame:
    """Paired difference with interval and verdict, rows (method, baseline), columns FARs, as text."""
    return pd.DataFrame(
        {
            f"FAR={far_text(far)}": {
                (method, baseline): f"{difference_at(report, method, baseline, far)} "
                f"{difference_at(report, method, baseline, far).verdict}"
                for method in methods
                for baseline in baselines
            }
            for far in fars
        }
    ).rename_axis(["method", "baseline"])


def tar_table(report: Mapping, fars: Sequence[str], methods: Sequence[str] | None = None, rule: str = "exact") -> pd.DataFrame:
    """TAR with interval of every method (rows) at every FAR (columns), as text, by ``rule`` (see ``tar_at``)."""
    methods = list(report["methods"]) if methods is None else methods
    return pd.DataFrame(
        {f"FAR={far_text(far)}": {name: str(tar_at(report, name, far, rule)) for name in methods} for far in fars}
    )


def trained_methods(report: Mapping, baselines: Sequence[str]) -> list[str]:
    """The methods of a 1:1 report that are not ``baselines`` (the trained aggregators), in report order."""
    return [name for name in report["methods"] if name not in baselines]


def verdict_table(report: Mapping, seeds: Sequence[str], baselines: Sequence[str], fars: Sequence[str]) -> pd.DataFrame:
    """The coreset's verdict against each baseline (rows) at each FAR (columns) where every seed agrees
    (``seed_verdict``)."""
    return pd.DataFrame(
        {f"FAR={far_text(far)}": {baseline: seed_verdict(report, seeds, baseline, far) for baseline in baselines} for far in fars}
    ).rename_axis("coreset, every seed, against")


def verification_texts(verification: Mapping) -> dict[str, str]:
    """Chapter 04's sentences' figures from ``verification.json``: the pairs, the lowest measurable FAR and the
    impostors it allows, the subjects, the methods, the best method at 1e-3 and each method's TAR there, the
    coreset's interval width and its seeds' spread at the headline FAR, and the burst size."""
    fars = verification["measurable_fars"]
    lowest = min(fars, key=float)
    headline = headline_far(verification)
    seeds = verification["seed_variants"]
    spread = seed_spread(verification, seeds, headline)
    coreset = tar_at(verification, "coreset", headline)
    best = max(verification["methods"], key=lambda name: tar_at(verification, name, "0.001").value)
    return {
        "pairs": f"{verification['genuine_pairs']} genuine and {verification['impostor_pairs']} impostor",
        "lowest_far": f"{float(lowest):g}",
        "lowest_far_impostors": round(float(lowest) * verification["impostor_pairs"]),
        "genuine_subjects": verification["subjects"],
        "methods": len(verification["methods"]),
        "best_1e3": best,
        **{f"tar_1e3_{name}": f"{100 * tar_at(verification, name, '0.001').value:.1f}%" for name in verification["methods"]},
        "headline_far": far_text(headline),
        "coreset_width": f"{100 * (coreset.high - coreset.low):.1f}",
        "seed_count": len(seeds),
        "seed_tars": ", ".join(f"{100 * spread[name]:.1f}%" for name in seeds),
        "seed_range": f"{100 * spread['range']:.1f}",
        "burst_copies": verification["burst_shift"]["coreset"]["copies"],
    }


def identification_table(one_to_n: Mapping[str, Mapping]) -> pd.DataFrame:
    """1:N results of ``verification.json``: a row per (method, gallery, probe list), rank-1, rank-5 and TPIR at
    each FPIR as columns (``TPIR@0.01``: TPIR at FPIR 0.01); galleries and probe lists by their short names
    (``G1``, ``mixed``: the protocol's files are ``1N_gallery_G1``, ``1N_probe_mixed``)."""
    rows = {
        (name, gallery.removeprefix("1N_gallery_"), probe.removeprefix("1N_probe_")): {
            "rank-1": result["rank_1"],
            "rank-5": result["rank_5"],
            **{f"TPIR@{fpir}": value for fpir, value in result["tpir_at_fpir"].items()},
        }
        for name, galleries in one_to_n.items()
        for gallery, probes in galleries.items()
        for probe, result in probes.items()
    }
    return pd.DataFrame(rows).T.rename_axis(["method", "gallery", "probes"])


def burst_table(verification: Mapping) -> pd.DataFrame:
    """How far the bursts of chapter 04's stress move each method's descriptor: mean and median ``1 - cos``."""
    return pd.DataFrame(
        {
            name: {"mean shift": shift["mean"], "median shift": shift["median"]}
            for name, shift in verification["burst_shift"].items()
        }
    ).T


def _gamma_text(gamma: float, learned: bool) -> str:
    """Gamma after training, and whether training moved it."""
    return f"{gamma:.3f}, learned" if learned else f"{gamma:g}, fixed"


def ablation_table(
    aggregator: Mapping, verification: Mapping, params_path: str | Path, fars: Sequence[str] = (HEADLINE_FAR, "0.001")
) -> pd.DataFrame:
    """One row per trained aggregator variant of ``aggregator.json``, its TARs and burst shift from ``verification.json``.

    Columns: what the variant changes in ``params.yaml``'s ``aggregator`` section, its K and quality exponent
    gamma after training (learned, or fixed: with one pick gamma plays no part), TAR with interval at
    ``fars``, the mean burst shift and the final training loss. Rows: the coreset variants by K, then those
    with gamma fixed, then the other methods.
    """
    changes = read_params(params_path).get("aggregator_variants") or {}
    # The faithful variant and its one-change variants have their own table (coreset_changes_table).
    configs = {name: load_config(params_path, name) for name in aggregator["gamma"] if name not in change_variants()}
    order = sorted(configs, key=lambda name: (configs[name].method != "coreset", not configs[name].learn_gamma, configs[name].k))
    rows = {}
    for name in order:
        config, coreset = configs[name], configs[name].method == "coreset"
        rows[name] = {
            "changes": yaml.safe_dump(dict(changes.get(name) or {}), default_flow_style=True, sort_keys=False).strip(),
            "K": config.k if coreset else None,
            "gamma": _gamma_text(aggregator["gamma"][name], config.learn_gamma and config.k > 1) if coreset else None,
            **{f"TAR@{far_text(far)}": str(tar_at(verification, name, far)) for far in fars},
            "burst shift": verification["burst_shift"][name]["mean"],
            "training loss": aggregator["final_training_loss"][name],
        }
    return pd.DataFrame(rows).T.rename_axis("variant")


def coreset_changes_table(verification: Mapping, fars: Sequence[str] = (HEADLINE_FAR, "0.001")) -> pd.DataFrame:
    """One row per difference between our coreset and the official FaceCoresetNet code (``coreset_changes.CHANGES``):
    what each does and why, and at each of ``fars`` the paired difference TAR(faithful with this change) -
    TAR(faithful) with its interval and effect (helps: the interval lies above 0; hurts: below; no clear effect:
    it holds 0); a last row for every change at once (the coreset)."""
    rows = {}
    for change in CHANGES:
        rows[change.point] = {
            "official code": change.official_does,
            "ours": change.ours_does,
            "why": change.why,
            "variant": change_variant(change),
        }
    rows["Every change (our coreset)"] = {"official code": "", "ours": "", "why": "", "variant": "coreset"}
    for row in rows.values():
        variant = row.pop("variant")
        for far in fars:
            if f"{variant} - {FAITHFUL_VARIANT}" not in verification["differences"]:
                row[f"difference@{far_text(far)}"] = f"not measured ({variant} is not in aggregator_variants)"
                continue
            difference = difference_at(verification, variant, FAITHFUL_VARIANT, far)
            effect = {"beats": "helps", "ties": "no clear effect", "loses to": "hurts"}[difference.verdict]
            row[f"difference@{far_text(far)}"] = f"{difference} {effect}"
    return pd.DataFrame(rows).T.rename_axis("point")


INTRODUCTION_COLUMNS = {"tar": "TAR", "phrase": "phrase", "verdict": "verdict"}  # glue key part -> comparisons column


def introduction_texts(verification: Mapping, aggregator: Mapping, baselines: Sequence[str]) -> dict[str, object]:
    """The introduction's Study S figures (keys ``s_*``): the protocol, the coreset's TAR and its verdict against
    each of ``baselines`` at the headline FAR, how many comparisons it wins or loses over every measurable FAR,
    the seeds' spread, the bursts' shift and the picks' quality."""
    far, seeds = headline_far(verification), verification["seed_variants"]
    headline = comparisons(verification, seeds, baselines, far)
    every = [
        verdict for f in verification["measurable_fars"] for verdict in comparisons(verification, seeds, baselines, f)["verdict"]
    ]
    shifts = verification["burst_shift"]
    return {
        "s_baselines": len(baselines),
        "s_subjects": verification["subjects"],
        "s_seeds": len(seeds),
        "s_seed_range": f"{100 * seed_spread(verification, seeds, far)['range']:.1f}",
        "s_pairs": f"{verification['genuine_pairs']} genuine and {verification['impostor_pairs']} impostor",
        "s_far": far_text(far),
        "s_tar_coreset": str(tar_at(verification, "coreset", far)),
        **{f"s_{key}_{name}": row[column] for name, row in headline.iterrows() for key, column in INTRODUCTION_COLUMNS.items()},
        "s_wins": int((headline["verdict"] == "beats").sum()),
        "s_far_count": len(verification["measurable_fars"]),
        "s_comparisons": len(every),
        "s_wins_all": every.count("beats"),
        "s_losses_all": every.count("loses to"),
        "s_burst_copies": shifts["coreset"]["copies"],
        "s_burst_coreset": f"{shifts['coreset']['mean']:.3f}",
        "s_burst_mean": f"{shifts['mean']['mean']:.3f}",
        "s_picked_quality": f"{aggregator['picked_quality']:.3f}",
        "s_template_quality": f"{aggregator['template_quality']:.3f}",
        "s_gamma": f"{aggregator['gamma']['coreset']:.3f}",
    }


def best_methods(verification: Mapping, methods: Sequence[str], far: str) -> str:
    """The method(s) of ``methods`` with the highest TAR at ``far``, joined with "and" when tied."""
    tars = {name: tar_at(verification, name, far).value for name in methods}
    return " and ".join(name for name, value in tars.items() if value == max(tars.values()))
