"""The list of our changes to FaceCoresetNet drives the variants in params.yaml and the book's table."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from dmlfaces.models.coreset_changes import CHANGES, FAITHFUL, change_variants
from dmlfaces.train.aggregator_config import AggregatorConfig

ROOT = Path(__file__).resolve().parents[2]


def test_our_values_are_the_params_section():
    """Every changed key is an aggregator parameter whose params.yaml value is ours."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["aggregator"]
    for change in CHANGES:
        assert set(change.official) == set(change.ours), change.name
        for key, value in change.ours.items():
            assert params[key] == value, (change.name, key)


def test_params_variants_are_the_generated_ones():
    variants = yaml.safe_load((ROOT / "params.yaml").read_text())["aggregator_variants"]
    for name, settings in change_variants().items():
        assert variants.get(name) == settings, name


def test_faithful_settings_are_valid_and_differ_from_ours_in_every_change():
    faithful = AggregatorConfig(**FAITHFUL)
    ours = AggregatorConfig()
    for change in CHANGES:
        assert any(getattr(faithful, key) != getattr(ours, key) for key in change.official), change.name
    assert len({change.name for change in CHANGES}) == len(CHANGES)
    assert {field.name for field in dataclasses.fields(AggregatorConfig)} >= set(FAITHFUL)


def test_an_invalid_official_value_is_refused():
    with pytest.raises(ValueError, match="aggregator.pick_logits = 'raw'; choose one of"):
        AggregatorConfig(pick_logits="raw")
