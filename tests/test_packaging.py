"""The pinned dependency set is the same in pyproject.toml, environment.yml and requirements.lock."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return set(project["dependencies"]) | {d for extra in project["optional-dependencies"].values() for d in extra}


def test_environment_yml_pins_the_same_set_as_pyproject() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in env["dependencies"]
    assert {d for d in pip_section if d != "-e ."} == _pyproject_pins()


def test_every_direct_dependency_is_pinned_and_agrees_with_the_lock() -> None:
    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, version = line.split("==")
        lock[name.lower().replace("_", "-")] = version
    for pin in _pyproject_pins():
        name, _, version = pin.partition("==")
        assert version, f"{pin} is not pinned with =="
        assert lock[name.lower()] == version, pin
    assert lock["torch"] == "2.14.1" and lock["torchvision"] == "0.29.1"


def test_dvc_analytics_and_update_checks_are_off() -> None:
    config = (REPO / ".dvc" / "config").read_text()
    assert "analytics = false" in config and "check_update = false" in config
