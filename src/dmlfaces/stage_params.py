"""The parameters of every pipeline stage, checked when a stage starts (``dmlfaces check-params SECTION ...``).

Each ``params.yaml`` section maps onto a dataclass: the trainers' and the attribute study's own configs, and
small ones here for the data and report stages. A stage's command runs the check first, so a bad value
stops it before any work with a message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dmlfaces.errors import ParameterError
from dmlfaces.params import check_choice, check_positive_ints, check_range, load_section, read_params


@dataclass
class DataParams:
    """``data``: where the data set is and which SynthFaces set ``make data`` writes there."""

    dir: str = "data"
    preset: str = "default"
    seed: int = 0

    def __post_init__(self) -> None:
        from dmlfaces.data.synth import PRESETS  # here, not at the top: see SECTIONS

        check_choice("data", "preset", self.preset, sorted(PRESETS))
        check_range("data", "seed", self.seed, 0)


@dataclass
class DataReportParams:
    """``data_report``: chapter 01 (gallery, pixel baseline)."""

    gallery_persons: int = 6
    gallery_per_person: int = 8
    pca_dim: int = 128
    pixel_size: int = 32

    def __post_init__(self) -> None:
        check_positive_ints(self, "data_report", ("gallery_persons", "gallery_per_person", "pca_dim", "pixel_size"))


@dataclass
class EmbeddingReportParams:
    """``embedding_report``: chapter 02 (single-image pairs, 2-D map)."""

    genuine_pairs: int = 20_000
    impostor_pairs: int = 500_000
    map_identities: int = 12

    def __post_init__(self) -> None:
        check_positive_ints(self, "embedding_report", ("genuine_pairs", "impostor_pairs", "map_identities"))


@dataclass
class AggregatorViewsParams:
    """``aggregator_views``: augmented copies per training image whose features are precomputed, of our
    augmentation and of FaceCoresetNet's (``clip_views`` official)."""

    views: int = 2
    official_views: int = 6

    def __post_init__(self) -> None:
        check_range("aggregator_views", "views", self.views, 0)
        check_range("aggregator_views", "official_views", self.official_views, 1)


@dataclass
class VerificationReportParams:
    """``verification_report``: chapter 04 (intervals, burst and low-quality stress; chapter 03 reads its results)."""

    resamples: int = 200
    burst_copies: int = 50
    low_quality_fraction: float = 0.3

    def __post_init__(self) -> None:
        check_positive_ints(self, "verification_report", ("resamples", "burst_copies"))
        check_range(
            "verification_report", "low_quality_fraction", self.low_quality_fraction, 0.0, 1.0, low_open=True, high_open=True
        )


@dataclass
class AttributesReportParams:
    """``attributes_report``: chapter 05 (t-SNE maps)."""

    map_identities: int = 300

    def __post_init__(self) -> None:
        check_positive_ints(self, "attributes_report", ("map_identities",))


# Each section's schema as "module:class". The trainers' and the attribute study's configs are imported only
# when their section is checked: every stage runs check-params in a process of its own, and importing torch
# and scikit-learn for a data or report section would cost seconds per stage.
SECTIONS: dict[str, str] = {
    "data": f"{__name__}:DataParams",
    "data_report": f"{__name__}:DataReportParams",
    "embedding": "dmlfaces.train.embedding:EmbeddingConfig",
    "embedding_report": f"{__name__}:EmbeddingReportParams",
    "aggregator_views": f"{__name__}:AggregatorViewsParams",
    "aggregator": "dmlfaces.train.aggregator_config:AggregatorConfig",
    "verification_report": f"{__name__}:VerificationReportParams",
    "attributes": "dmlfaces.eval.attributes:AttributeStudyParams",
    "attributes_report": f"{__name__}:AttributesReportParams",
}
# Checked through its base section: each variant is the ``aggregator`` section with some keys changed.
VARIANTS = "aggregator_variants"


def check_params(params_path: str | Path, sections: Sequence[str]) -> None:
    """Validate ``sections`` of ``params_path`` (types, ranges, known names); raise ParameterError on the first fault."""
    unknown = sorted(set(sections) - set(SECTIONS) - {VARIANTS})
    if unknown:
        raise ParameterError(f"no parameter schema for sections {unknown}; known: {sorted([*SECTIONS, VARIANTS])}")
    for section in sections:
        if section == VARIANTS:
            from dmlfaces.train.aggregator_config import load_config

            for variant in read_params(params_path).get(VARIANTS) or {}:
                load_config(params_path, variant)
        else:
            load_section(section_schema(section), params_path, section)


def section_schema(section: str) -> type:
    """The dataclass of a ``params.yaml`` section of SECTIONS, imported on first use."""
    module, _, name = SECTIONS[section].partition(":")
    return getattr(importlib.import_module(module), name)


def load_sections(params_path: str | Path, *sections: str) -> tuple:
    """``sections`` of ``params_path``, each validated into its dataclass (SECTIONS), in the order asked.

    A chapter reads its parameters this way, so that it runs on the values the pipeline ran with, checked as
    ``check-params`` checks them: ``data, report = load_sections("params.yaml", "data", "data_report")``.
    """
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ParameterError(f"no parameter schema for sections {unknown}; known: {sorted(SECTIONS)}")
    return tuple(load_section(section_schema(section), params_path, section) for section in sections)
