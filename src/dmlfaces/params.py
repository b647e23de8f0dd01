"""Stage parameters: a section of ``params.yaml`` read into a validated dataclass.

A section's keys must be fields of its dataclass, each value of the field's type (checked here, from the
annotations), and the dataclass's ``__post_init__`` checks ranges and choices.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
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
    try:
        check_types(config_class, section, values)
        return config_class(**values)
    except ValueError as error:
        raise ValueError(f"{params_path}: {error}") from None


def check_types(config_class: type, section: str, values: Mapping[str, object]) -> None:
    """Raise ValueError naming ``section.key``, its value and the expected type for the first mistyped value.

    An int is accepted where a float is expected (YAML writes ``16`` for 16.0); a bool is never a number.
    """
    hints = typing.get_type_hints(config_class)
    for key, value in values.items():
        expected = _accepted_types(hints[key])
        if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in expected)
            raise ValueError(f"{section}.{key} = {value!r}; it must be {names}")


def _accepted_types(annotation: object) -> tuple[type, ...]:
    """The runtime types a value of ``annotation`` may have (``float | None`` -> float, int, NoneType)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for arg in typing.get_args(annotation) for t in _accepted_types(arg))
    origin = typing.get_origin(annotation) or annotation
    if origin is float:
        return (float, int)
    if origin in (Mapping, dict):
        return (dict,)
    return (origin,)
