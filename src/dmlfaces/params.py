"""Stage parameters: a section of ``params.yaml`` read into a validated dataclass.

A section's keys must be fields of its dataclass, each value of the field's type (checked here, from the
annotations), and the dataclass's ``__post_init__`` checks ranges and choices with the helpers here. Every
fault is a ``ParameterError`` naming the file, the key and its value, and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import yaml

from dmlfaces.errors import ParameterError

Config = TypeVar("Config")


def check_choice(section: str, key: str, value: object, choices: Sequence[object]) -> None:
    """Raise ParameterError naming ``section.key``, its value and the allowed values unless ``value`` is one of them."""
    if value not in choices:
        raise ParameterError(f"{section}.{key} = {value!r}; choose one of {list(choices)}")


def check_positive_ints(config: object, section: str, keys: Sequence[str]) -> None:
    """Raise ParameterError naming the first of ``keys`` whose value on ``config`` is not a positive integer."""
    for key in keys:
        value = getattr(config, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{section}.{key} = {value!r}; it must be a positive integer")


def check_range(
    section: str,
    key: str,
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ParameterError unless ``low <= value <= high`` (``<`` at an open end); None passes (an unset option)."""
    if value is None:
        return
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{left}, {right}{')' if high_open or high is None else ']'}"
        raise ParameterError(f"{section}.{key} = {value!r}; it must lie in {interval}")


PARAMS_FILE = Path("params.yaml")  # every stage's, in the repository root (DVC's default params file)
AUTO_DEVICE = "auto"  # the default everywhere: the first CUDA GPU (the local rank's under torchrun), else the CPU
DEVICE = re.compile(rf"{AUTO_DEVICE}|cpu|cuda(:\d+)?|mps")
DEVICE_CHOICES = f"{AUTO_DEVICE}, cpu, cuda, cuda:N (a GPU index) or mps"


def check_device(section: str, key: str, value: str) -> None:
    """Raise ParameterError unless ``value`` names a device: auto, cpu, cuda, cuda:N or mps."""
    if not DEVICE.fullmatch(value):
        raise ParameterError(f"{section}.{key} = {value!r}; choose {DEVICE_CHOICES}")


def read_params(params_path: str | Path) -> dict:
    """The whole parameters file as a dict; a missing file or a YAML syntax error is named with its line."""
    path = Path(params_path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"{path}: no such parameters file; pass --params PATH, or run from the repository root") from None
    except UnicodeDecodeError as error:
        raise ParameterError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise ParameterError(
            f"{where}: YAML syntax error: {problem}; fix the line (indentation, a missing ':' or an unclosed quote or bracket)"
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ParameterError(
            f"{path}: the file must be a mapping of sections (section: {{key: value}}), not a {type(document).__name__}"
        )
    return document


def load_section(config_class: type[Config], params_path: str | Path, section: str) -> Config:
    """``params_path``'s ``section`` as ``config_class`` (whose ``__post_init__`` checks the values).

    Raises:
        ParameterError: the section is missing or holds keys the class does not know (named, with the allowed
            ones), or a value of the wrong type or out of its range.
    """
    document = read_params(params_path)
    if section not in document:
        raise ParameterError(f"{params_path}: no section {section!r}; sections found: {sorted(document)}")
    return build_config(config_class, params_path, section, document[section])


def build_config(config_class: type[Config], params_path: str | Path, section: str, values: object) -> Config:
    """``values`` (one section's mapping) as ``config_class``; every fault a ParameterError naming ``params_path``."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ParameterError(f"{params_path}: section {section!r} must be a mapping of keys to values, not {values!r}")
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParameterError(f"{params_path}: unknown keys {unknown} in section {section!r}; allowed: {sorted(known)}")
    try:
        check_types(config_class, section, values)
        return config_class(**values)
    except ValueError as error:
        raise ParameterError(f"{params_path}: {error}") from None


def check_types(config_class: type, section: str, values: Mapping[str, object]) -> None:
    """Raise ParameterError naming ``section.key``, its value and the expected type for the first mistyped value.

    An int is accepted where a float is expected (YAML writes ``16`` for 16.0); a bool is never a number, and
    a number is never NaN or infinite.
    """
    hints = typing.get_type_hints(config_class)
    for key, value in values.items():
        expected = _accepted_types(hints[key])
        if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in expected)
            hint = ""
            if isinstance(value, str) and float in expected and _is_number(value):
                # YAML 1.1, which PyYAML reads, takes 1e-3 for a string: a float needs a dot (1.0e-3).
                hint = (
                    f" (YAML reads {value} as a string: a float in exponent form needs a dot and a signed "
                    f"exponent, e.g. 1.0e-3, or write it out, e.g. 0.001)"
                )
            raise ParameterError(f"{section}.{key} = {value!r}; it must be {names}{hint}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"{section}.{key} = {value!r}; it must be a finite number")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
