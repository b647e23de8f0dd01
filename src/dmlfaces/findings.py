"""The study's answers, chosen from the metrics files the pipeline writes (``results/metrics/*.json``).

The book's introduction and results summary state what was found in words ("beats", "does not beat",
"rises above its floor"). The words are chosen here from the numbers, so no page can say more than the
metrics it quotes; the notebooks only glue them into the prose.

Verification comparisons use the exact-threshold rule (the largest TAR whose FAR does not exceed the
target) and its subject-bootstrap interval, as chapters 03 and 04 do. One method *beats* another only
when their 95 % intervals do not overlap, a conservative reading of two marginal intervals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from dmlfaces.params import read_params
from dmlfaces.train.aggregator import load_config

METRICS_FILES = ("data", "embedding", "aggregator", "verification", "attributes")
HEADLINE_FAR = "0.0001"  # the operating point FaceCoresetNet and AdaFace report first (key as written: f"{far:g}")


def read_metrics(results_dir: str | Path) -> dict[str, dict]:
    """The five metrics files of ``results_dir/metrics``, by name (``data``, ``embedding``, ...)."""
    return {name: json.loads((Path(results_dir) / "metrics" / f"{name}.json").read_text()) for name in METRICS_FILES}


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
        """In percent, ``"6.4% [3.5, 10.6]"``."""
        interval = f" [{100 * self.low:.1f}, {100 * self.high:.1f}]" if self.has_interval else ""
        return f"{100 * self.value:.1f}%{interval}"


def tar_at(report: Mapping, method: str, far: str) -> Tar:
    """TAR of ``method`` at ``far`` (a key such as ``"0.0001"``), exact-threshold rule, with its interval.

    ``report`` is a 1:1 report as ``OneToOneReport.to_dict`` writes it: ``verification.json``, or the
    ``verification`` entry of ``aggregator.json``.
    """
    row = report["methods"][method][far]
    return Tar(row["tar_exact"], row["ci_low_exact"], row["ci_high_exact"])


def verdict(method: Tar, baseline: Tar) -> str:
    """"beats" when ``method``'s interval lies wholly above ``baseline``'s, "is beaten by" when wholly
    below, "does not beat" otherwise: overlapping intervals, or none to compare, claim no difference."""
    if method.has_interval and baseline.has_interval:
        if method.low > baseline.high:
            return "beats"
        if method.high < baseline.low:
            return "is beaten by"
    return "does not beat"


def comparison_phrase(method: Tar, baseline: Tar) -> str:
    """The verdict with what stands behind it, e.g. "does not beat it (higher, but the intervals overlap)"."""
    word = verdict(method, baseline)
    if word != "does not beat":
        return f"{word} it (the intervals lie apart)"
    if not (method.has_interval and baseline.has_interval):
        return "does not beat it (there are no intervals to compare)"
    if method.value == baseline.value:
        return "does not beat it (level)"
    side = "higher, but" if method.value > baseline.value else "lower, and"
    return f"does not beat it ({side} the intervals overlap)"


def far_text(far: str) -> str:
    """A FAR key such as ``"0.0001"`` as prose writes it: ``"1e-4"``."""
    mantissa, exponent = f"{float(far):e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def headline_far(verification: Mapping) -> str:
    """``HEADLINE_FAR`` when the protocol has impostor pairs enough to measure it, else its lowest measurable FAR."""
    measurable = verification["measurable_fars"]
    return HEADLINE_FAR if HEADLINE_FAR in measurable else min(measurable, key=float)


def comparisons(report: Mapping, method: str, baselines: Sequence[str], far: str) -> pd.DataFrame:
    """One row per baseline: its TAR at ``far``, the method's, the verdict and the phrase of the method against it."""
    ours = tar_at(report, method, far)
    theirs = {name: tar_at(report, name, far) for name in baselines}
    rows = {name: {"TAR": str(tar), method: str(ours), "verdict": verdict(ours, tar), "phrase": comparison_phrase(ours, tar)}
            for name, tar in theirs.items()}
    return pd.DataFrame(rows).T.rename_axis("baseline")


def tar_table(report: Mapping, fars: Sequence[str], methods: Sequence[str] | None = None) -> pd.DataFrame:
    """TAR with interval of every method (rows) at every FAR (columns), as text."""
    methods = list(report["methods"]) if methods is None else methods
    return pd.DataFrame({f"FAR={far_text(far)}": {name: str(tar_at(report, name, far)) for name in methods} for far in fars})


def _gamma_text(gamma: float, learned: bool) -> str:
    """Gamma after training, and whether training moved it."""
    return f"{gamma:.3f}, learned" if learned else f"{gamma:g}, fixed"


def ablation_table(aggregator: Mapping, params_path: str | Path, fars: Sequence[str] = (HEADLINE_FAR, "0.001")) -> pd.DataFrame:
    """One row per trained aggregator variant of ``aggregator.json``.

    Columns: what the variant changes in ``params.yaml``'s ``aggregator`` section, its K and quality exponent
    gamma after training (learned, or fixed: with one pick gamma plays no part), TAR with interval at
    ``fars``, the mean burst shift and the final training loss. Rows: the coreset variants by K, then those
    with gamma fixed, then the other methods.
    """
    changes = read_params(params_path).get("aggregator_variants") or {}
    configs = {name: load_config(params_path, name) for name in aggregator["gamma"]}
    order = sorted(configs, key=lambda name: (configs[name].method != "coreset", not configs[name].learn_gamma, configs[name].k))
    rows = {}
    for name in order:
        config, coreset = configs[name], configs[name].method == "coreset"
        rows[name] = {
            "changes": yaml.safe_dump(dict(changes.get(name) or {}), default_flow_style=True, sort_keys=False).strip(),
            "K": config.k if coreset else None,
            "gamma": _gamma_text(aggregator["gamma"][name], config.learn_gamma and config.k > 1) if coreset else None,
            **{f"TAR@{far_text(far)}": str(tar_at(aggregator["verification"], name, far)) for far in fars},
            "burst shift": aggregator["burst_shift"][name]["mean"],
            "training loss": aggregator["final_training_loss"][name],
        }
    return pd.DataFrame(rows).T.rename_axis("variant")


# ---------------------------------------------------------------------------------------------- Study A


def _attribute_row(name: str, protocol: str, subset: str, scores: Mapping) -> dict:
    """One row of :func:`attribute_table`; the floor is the majority rate, or the chance level where higher."""
    floor = max(scores["majority_rate"], scores.get("chance_accuracy", 0.0))
    return {"attribute": name, "protocol": protocol, "subset": subset, "accuracy": scores["accuracy"],
            "majority rate": scores["majority_rate"], "chance": scores.get("chance_accuracy"), "NMI": scores["nmi"],
            "ARI": scores["ari"], "probe": scores["probe_accuracy"], "above floor": scores["accuracy"] > floor}


def attribute_table(attributes: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per attribute and subset of ``attributes.json``'s ``attributes``.

    Within identities (intra) the accuracy is the mean over identities and the chance level that of
    shuffled labels in groups of the same sizes; across identities (extra) there are two subsets, all
    identities and the controlled one. ``above floor``: the accuracy exceeds the majority rate (and the
    chance level where there is one). Within-identity attributes first; a skipped attribute keeps a row
    with its reason.
    """
    rows = []
    for name, result in sorted(attributes.items(), key=lambda item: item[1]["protocol"] != "intra"):
        if result["status"] != "ok":
            rows.append({"attribute": name, "protocol": result["protocol"], "subset": f"skipped: {result['reason']}",
                         "above floor": None})
        elif result["protocol"] == "intra":
            rows.append(_attribute_row(name, "intra", "per identity", {**result, "accuracy": result["accuracy"]["mean"]}))
        else:
            rows.append(_attribute_row(name, "extra", "all identities", result["uncontrolled"]))
            rows.append(_attribute_row(name, "extra", "controlled", result["controlled"]))
    return pd.DataFrame(rows)


def _names(table: pd.DataFrame, subset: str, found: bool) -> str:
    """The attributes of ``subset`` whose accuracy is (``found``) or is not above its floor, as words."""
    names = [name.replace("_", " ") for name in table[(table["subset"] == subset) & (table["above floor"] == found)]["attribute"]]
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def recovered(table: pd.DataFrame, subset: str) -> str:
    """Which attributes of ``subset`` (a :func:`attribute_table` subset) clustering recovers, as a clause:
    "rises above its floor for beard, and not for expression and glasses"."""
    found, missed = _names(table, subset, True), _names(table, subset, False)
    if not missed:
        return f"rises above its floor for every attribute ({found})" if found else "has no attribute to score"
    if not found:
        return f"rises above its floor for none of the attributes ({missed})"
    return f"rises above its floor for {found}, and not for {missed}"
