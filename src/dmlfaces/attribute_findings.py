"""Study A's answers, chosen from ``attributes.json``: which attributes clustering recovers within and across
identities, what each split follows instead (SynthFaces' ground truth), and the published figures beside ours.

As in :mod:`dmlfaces.findings`, the words ("rises above its floor", "follows") are chosen here from the numbers;
an accuracy rises above its floor when the 95 % interval of its difference to the majority rate (or the chance
level, where higher) lies above 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

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


def recovered_texts(table: pd.DataFrame) -> dict[str, str]:
    """``<embedding>_<subset key>`` -> ``recovered`` clause for each embedding of an ``attribute_tables`` table and
    each of its subsets (intra: per identity; intra_held: nuisance held; extra: all identities; extra_held: controlled)."""
    subsets = {"intra": "per identity", "intra_held": NUISANCE_HELD, "extra": "all identities", "extra_held": "controlled"}
    return {
        f"{embedding}_{key}": recovered(table[table["embedding"] == embedding], subset)
        for embedding in table["embedding"].unique()
        for key, subset in subsets.items()
    }


def introduction_texts(embeddings: Mapping[str, Mapping]) -> dict[str, str]:
    """The introduction's Study A clauses (keys ``a_*``, ``a_dlib_*``): what clustering recovers of the trained
    embedding and of dlib's per subset, and what the trained and dlib splits of beard follow."""
    trained, dlib = (attribute_table(embeddings[name]["attributes"]) for name in ("trained", "dlib"))
    followed = followed_table(embeddings)
    subsets = {"intra": "per identity", "intra_held": NUISANCE_HELD, "all": "all identities", "controlled": "controlled"}
    return {
        **{f"a_{key}": recovered(trained, subset) for key, subset in subsets.items()},
        **{f"a_dlib_{key}": recovered(dlib, subset) for key, subset in subsets.items()},
        "a_beard_follows": followed_sentence(followed, "trained", "beard", "per identity"),
        "a_dlib_beard_follows": followed_sentence(followed, "dlib", "beard", "per identity"),
    }
