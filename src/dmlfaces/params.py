"""Stage parameters: a section of ``params.yaml`` read into a validated dataclass."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml

Config = TypeVar("Config")


def check_choice(section: str, key: str, value: object, choices: Sequence[object]) -> None:
    """Raise ValueError naming ``section.key``, its value and the allowed values unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"{section}.{key} = {value!r}; choose one of {list(choices)}")


def check_positive_ints(config: object, section: str, keys: Sequence[str]) -> None:
    """Raise ValueError naming the first of ``keys`` whose value on ``config`` is not a positive integer."""
    for key in keys:
        value = getattr(config, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{section}.{key} = {value!r}; it must be a positive integer")


def read_params(params_path: str | Path) -> dict:
    """The whole parameters file as a dict."""
    return yaml.safe_load(Path(params_path).read_text()) or {}


def load_section(config_class: type[Config], params_path: str | Path, section: str) -> Config:
    """``params_path``'s ``section`` as ``config_class`` (whose ``__post_init__`` checks the values).

    Raises:
        ValueError: the section is missing or holds keys the class does not know (named, with the allowed ones).
    """
    document = read_params(params_path)
    if section not in document:
        raise ValueError(f"{params_path}: no section {section!r}; sections found: {sorted(document)}")
    values = document[section] or {}
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{params_path}: unknown keys {unknown} in section {section!r}; allowed: {sorted(known)}")
    return config_class(**values)
