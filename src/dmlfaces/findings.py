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
        """In percent, ``"6.4% [3.5, 10.6]"``."""
        interval = f" [{100 * self.low:.1f}, {100 * self.high:.1f}]" if self.has_interval else ""
        return f"{100 * self.value:.1f}%{interval}"


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

    def __str__(self) -> str:
        """In points of TAR, ``"+2.1 [0.4, 3.9]"``."""
        return f"{100 * self.value:+.1f} [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"


def difference_at(report: Mapping, method: str, baseline: str, far: str) -> Difference:
    """The paired difference of ``method`` and ``baseline`` at ``far`` (exact rule) from a 1:1 report's
    ``differences`` (``OneToOneReport.to_dict``)."""
    row = report["differences"][f"{method} - {baseline}"][far]
    return Difference(row["difference"], row["ci_low"], row["ci_high"])


def comparison_phrase(difference: Difference) -> str:
    """The verdict with what stands behind it, e.g. "beats it (+2.1 points, interval [+0.4, +3.9])"."""
    interval = f"{100 * difference.value:+.1f} points, 95 % interval [{100 * difference.low:+.1f}, {100 * difference.high:+.1f}]"
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
    each FPIR as columns."""
    rows = {
        (name, gallery, probe): {
            "rank-1": result["rank_1"],
            "rank-5": result["rank_5"],
            **{f"TPIR@FPIR={fpir}": value for fpir, value in result["tpir_at_fpir"].items()},
        }
        for name, galleries in one_to_n.items()
        for gallery, probes in galleries.items()
        for probe, result in probes.items()
    }
    return pd.DataFrame(rows).T


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


# ---------------------------------------------------------------------------------------------- Study A


# Furlong et al., "Feature Recognition in Metric Learning Face Embeddings" (arXiv 2102.03176): clustering accuracy in
# percent, v2 (2023) and v1 (2021; glasses there are thick-framed), measured on the authors' network and real faces.
PUBLISHED_ATTRIBUTE_ACCURACY: dict[str, tuple[float | None, float | None]] = {
    "beard": (90.0, 95.8),
    "glasses": (76.0, 97.2),
    "expression": (None, None),
    "gender": (99.3, 99.3),
    "skin_tone": (99.3, 99.3),
    "age": (94.1, 94.1),
}
NUISANCE_HELD = "per identity, nuisance held"  # the subset of the controlled within-identity protocol
EMBEDDING_NAMES = {"trained": "trained embedding", "dlib": "dlib ResNet"}


def _attribute_row(name: str, protocol: str, subset: str, scores: Mapping) -> dict:
    """One row of :func:`attribute_table`; the floor is the majority rate, or the chance level where higher.

    ``above floor`` holds when the 95 % interval of the accuracy minus its floor (``floor_gap``, from resampling
    identities) lies above 0; a report without intervals falls back to comparing the two numbers.
    """
    floor = max(scores["majority_rate"], scores.get("chance_accuracy", 0.0))
    gap = scores.get("floor_gap")
    above = gap["low"] > 0 if gap else scores["accuracy"] > floor
    return {
        "attribute": name,
        "protocol": protocol,
        "subset": subset,
        "accuracy": scores["accuracy"],
        "majority rate": scores["majority_rate"],
        "chance": scores.get("chance_accuracy"),
        "NMI": scores["nmi"],
        "ARI": scores["ari"],
        "probe": scores["probe_accuracy"],
        "above floor interval": f"[{100 * gap['low']:+.1f}, {100 * gap['high']:+.1f}]" if gap else None,
        "above floor": above,
    }


def attribute_table(attributes: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per attribute and subset of ``attributes.json``'s ``attributes``.

    Within identities (intra) the accuracy is the mean over identities and the chance level that of
    shuffled labels in groups of the same sizes; across identities (extra) there are two subsets, all
    identities and the controlled one; within identities with ground truth, the nuisance-held subset too.
    ``above floor``: the 95 % interval of the accuracy minus its floor (the majority rate, or the chance level
    where higher) lies above 0 (see :func:`_attribute_row`). Within-identity attributes first; a skipped
    attribute keeps a row with its reason.
    """
    rows = []
    for name, result in sorted(attributes.items(), key=lambda item: item[1]["protocol"] != "intra"):
        if result["status"] != "ok":
            rows.append(
                {"attribute": name, "protocol": result["protocol"], "subset": f"skipped: {result['reason']}", "above floor": None}
            )
        elif result["protocol"] == "intra":
            rows.append(_attribute_row(name, "intra", "per identity", {**result, "accuracy": result["accuracy"]["mean"]}))
            controlled = result.get("controlled", {})
            if controlled.get("status") == "ok":
                rows.append(
                    _attribute_row(name, "intra", NUISANCE_HELD, {**controlled, "accuracy": controlled["accuracy"]["mean"]})
                )
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


def attribute_tables(embeddings: Mapping[str, Mapping]) -> pd.DataFrame:
    """:func:`attribute_table` of each embedding of ``attributes.json``'s ``embeddings``, an ``embedding`` column first."""
    tables = [attribute_table(report["attributes"]) for report in embeddings.values()]
    return pd.concat(
        [table.assign(embedding=name)[["embedding", *table.columns]] for name, table in zip(embeddings, tables)],
        ignore_index=True,
    )


# The ground-truth factor each attribute is, where its name differs: CelebA's Smiling is one of three expressions.
ATTRIBUTE_FACTORS = {"expression": "smiling"}


def nuisance_text(held: Mapping[str, object]) -> str:
    """The controlled within-identity protocol's thresholds (``AttributeStudyParams.nuisance_held``) in words."""
    parts = [
        f"|yaw| at most {held['max_yaw_deg']:g} degrees",
        f"|pitch| at most {held['max_pitch_deg']:g}",
        f"light strength at most {held['max_light_strength']:g} (0 flat, 1 strong side light)",
        f"blur at most {held['max_blur']:g} pixels",
    ]
    parts += ["no occluder"] * bool(held["no_occlusion"]) + ["full resolution"] * bool(held["full_resolution"])
    return ", ".join(parts)


def _strength(factors: Mapping, factor: str) -> float | None:
    """How strongly a split follows ``factor``: within identities its share of the identities' top factors in
    excess of random splits', across identities its NMI beyond chance; None where it is no factor there."""
    if "excess_share" in factors:
        return factors["excess_share"].get(factor, {}).get("difference")
    return factors["scores"].get(factor, {}).get("excess_nmi")


def followed_table(embeddings: Mapping[str, Mapping]) -> pd.DataFrame:
    """Per attribute, embedding and subset: the factor its splits follow (``none`` when no factor does beyond
    what splits that follow nothing give it, see :mod:`dmlfaces.eval.factors`), and how strongly.

    ``strength``: within identities the share of identities whose split that factor tops, minus the share for
    random splits of the same sizes (``by luck`` holds the latter); across identities the split's NMI beyond
    chance. ``own`` is the same figure for the attribute's own factor (``ATTRIBUTE_FACTORS``).
    """
    rows = []
    for embedding, report in embeddings.items():
        for name, result in report["attributes"].items():
            if result.get("status") != "ok":
                continue
            subsets = (
                {"per identity": result, NUISANCE_HELD: result.get("controlled", {})}
                if result["protocol"] == "intra"
                else {"all identities": result["uncontrolled"], "controlled": result["controlled"]}
            )
            for subset, scores in subsets.items():
                factors = scores.get("factors") if scores.get("status", "ok") == "ok" else None
                if not factors:
                    continue
                top = factors["most_followed"]
                rows.append(
                    {
                        "embedding": embedding,
                        "attribute": name,
                        "subset": subset,
                        "most followed": top,
                        "strength": _strength(factors, top),
                        "by luck": factors["null_top_share"].get(top) if "null_top_share" in factors else None,
                        "own": _strength(factors, ATTRIBUTE_FACTORS.get(name, name)),
                    }
                )
    return pd.DataFrame(rows)


def followed_sentence(table: pd.DataFrame, embedding: str, attribute: str, subset: str) -> str:
    """What the splits of one row of :func:`followed_table` follow, in words."""
    row = table[(table["embedding"] == embedding) & (table["attribute"] == attribute) & (table["subset"] == subset)]
    if row.empty:
        return "no split to describe"
    row = row.iloc[0]
    top, own_factor = row["most followed"], ATTRIBUTE_FACTORS.get(attribute, attribute)
    within = subset.startswith("per identity")
    own_name = own_factor.replace("_", " ")

    def own_text(value: float) -> str:
        if within:
            return f"{own_name} tops {100 * value:+.0f} points of the identities against random splits"
        return f"{own_name}: NMI {value:+.2f} beyond chance"

    if top == "none":
        luck = "random splits of the same sizes" if within else "its states shuffled"
        own = f"; {own_text(row['own'])}" if pd.notna(row["own"]) else ""
        return f"no factor beyond what {luck} give it{own}"
    what = f"{own_name} itself" if top == own_factor else top.replace("_", " ")
    own = f"; {own_text(row['own'])}" if pd.notna(row["own"]) and top != own_factor else ""
    if within:
        return (
            f"{what} (the top factor of {row['strength'] + row['by luck']:.0%} of the identities against "
            f"{row['by luck']:.0%} for random splits{own})"
        )
    return f"{what} (NMI {row['strength']:.2f} beyond chance{own})"


def followed_sentences(
    table: pd.DataFrame, embeddings: Sequence[str], intra: Sequence[str], extra: Sequence[str]
) -> dict[str, str]:
    """``{"follows_<embedding>_<attribute>_<all|held>": sentence}`` for every attribute studied, skipped ones
    included ("no split to describe"), so a page can name each one whatever the data."""
    subsets = {"intra": ("per identity", NUISANCE_HELD), "extra": ("all identities", "controlled")}
    return {
        f"follows_{embedding}_{name}_{key}": followed_sentence(table, embedding, name, subset)
        for embedding in embeddings
        for protocol, names in (("intra", intra), ("extra", extra))
        for name in names
        for key, subset in zip(("all", "held"), subsets[protocol])
    }


def paper_comparison(embeddings: Mapping[str, Mapping]) -> pd.DataFrame:
    """Per attribute: the paper's accuracies beside each embedding's, uncontrolled and controlled, with the floor.

    The within-identity ``floor`` is the higher of the majority rate and the chance level, the across-identity
    one the majority rate; accuracies in percent, rounded to one decimal.
    """
    table = attribute_tables(embeddings)
    rows: dict[str, dict] = {}
    for name, (v2, v1) in PUBLISHED_ATTRIBUTE_ACCURACY.items():
        row: dict = {"paper v2": v2, "paper v1": v1}
        for embedding in embeddings:
            mine = table[(table["embedding"] == embedding) & (table["attribute"] == name)]
            for subset, label in ((("per identity", "all identities"), ""), ((NUISANCE_HELD, "controlled"), " controlled")):
                hit = mine[mine["subset"].isin(subset)]
                if hit.empty or hit["above floor"].isna().all():
                    continue
                scores = hit.iloc[0]
                floor = max(scores["majority rate"], scores["chance"] if pd.notna(scores["chance"]) else 0.0)
                row[f"{embedding}{label}"] = round(100 * scores["accuracy"], 1)
                row[f"{embedding}{label} floor"] = round(100 * floor, 1)
        rows[name] = row
    return pd.DataFrame(rows).T.rename_axis("attribute")


def factor_matrix(embeddings: Mapping[str, Mapping], protocol: str) -> pd.DataFrame:
    """(factors, problems) agreement of every split of ``protocol`` ("intra" or "extra") with every factor.

    Within identities the value is the share of identities whose split follows the factor most, minus that
    share for random splits of the same sizes (where the report holds it); across identities the split's NMI
    beyond chance. Columns are "attribute, embedding, subset"; rows are sorted by their mean, the most
    followed factor first.
    """
    columns = {}
    for embedding, report in embeddings.items():
        for name, result in report["attributes"].items():
            if result.get("status") != "ok" or result["protocol"] != protocol:
                continue
            subsets = (
                {"all": result, "nuisance held": result.get("controlled", {})}
                if protocol == "intra"
                else {"all": result["uncontrolled"], "controlled": result["controlled"]}
            )
            for subset, scores in subsets.items():
                factors = scores.get("factors") if scores.get("status", "ok") == "ok" else None
                if not factors:
                    continue
                label = f"{name.replace('_', ' ')}, {EMBEDDING_NAMES.get(embedding, embedding)}, {subset}"
                if protocol == "intra":
                    luck = pd.Series(factors.get("null_top_share", {}), dtype=float)
                    columns[label] = (pd.Series(factors["top_share"]) - luck.reindex(factors["top_share"]).fillna(0)).drop("none")
                else:
                    columns[label] = pd.Series({f: v["excess_nmi"] for f, v in factors["scores"].items()})
    matrix = pd.DataFrame(columns)
    return matrix.loc[matrix.mean(axis=1).sort_values(ascending=False).index] if len(matrix) else matrix


def glasses_by_frame(embeddings: Mapping[str, Mapping]) -> pd.DataFrame:
    """Per embedding, subset and frame (thin, thick): identities and the mean per-identity glasses accuracy
    against its chance level, from the ``by_frame`` entries of the glasses results."""
    rows = []
    for embedding, report in embeddings.items():
        glasses = report["attributes"].get("glasses", {})
        for subset, result in (("per identity", glasses), (NUISANCE_HELD, glasses.get("controlled", {}))):
            for frame, scores in result.get("by_frame", {}).items():
                rows.append({"embedding": embedding, "subset": subset, "frame": frame, **scores})
    return pd.DataFrame(rows)


def accuracy_histograms(embeddings: Mapping[str, Mapping]) -> dict[str, dict]:
    """``{"attribute (embedding)": histogram}`` of every within-identity attribute scored, for ``plots.accuracy_histograms``."""
    return {
        f"{name} ({EMBEDDING_NAMES.get(embedding, embedding)})": result["accuracy"]["histogram"]
        for embedding, report in embeddings.items()
        for name, result in report["attributes"].items()
        if result["protocol"] == "intra" and result["status"] == "ok"
    }


def difference_reasons(embeddings: Mapping[str, Mapping]) -> pd.DataFrame:
    """Per attribute and embedding, why our accuracy differs from the paper's, in words from the metrics.

    The sentence gives the accuracy against its floor (above it or not, by the interval of the gap), what the
    splits follow instead of the attribute, and what holding the nuisance (or the other attributes) changes.
    """
    table, followed = attribute_tables(embeddings), followed_table(embeddings)
    rows = []
    for name, (v2, _) in PUBLISHED_ATTRIBUTE_ACCURACY.items():
        for embedding in embeddings:
            mine = table[(table["embedding"] == embedding) & (table["attribute"] == name) & table["above floor"].notna()]
            if mine.empty:
                continue
            parts = []
            for _, scores in mine.iterrows():
                floor = max(scores["majority rate"], scores["chance"] if pd.notna(scores["chance"]) else 0.0)
                verdict = "above" if scores["above floor"] else "not above"
                parts.append(
                    f"{scores['subset']}: {100 * scores['accuracy']:.1f} %, {verdict} its floor of {100 * floor:.1f} %, "
                    f"its splits following {followed_sentence(followed, embedding, name, scores['subset'])}"
                )
            paper = f"the paper: {v2:.1f} %" if v2 is not None else "no published figure"
            rows.append(
                {
                    "attribute": name,
                    "embedding": EMBEDDING_NAMES.get(embedding, embedding),
                    "why ours differs": f"{paper}; " + "; ".join(parts),
                }
            )
    return pd.DataFrame(rows)


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


def recovered_texts(table: pd.DataFrame) -> dict[str, str]:
    """``<embedding>_<subset key>`` -> ``recovered`` clause for each embedding of an ``attribute_tables`` table and
    each of its subsets (intra: per identity; intra_held: nuisance held; extra: all identities; extra_held: controlled)."""
    subsets = {"intra": "per identity", "intra_held": NUISANCE_HELD, "extra": "all identities", "extra_held": "controlled"}
    return {
        f"{embedding}_{key}": recovered(table[table["embedding"] == embedding], subset)
        for embedding in table["embedding"].unique()
        for key, subset in subsets.items()
    }
