"""The pipeline described from a real (tiny) DVC project: stages as DVC resolves them, current parameter values,
hashes from the lock file, and the stages downstream of one."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from dmlfaces.provenance import NOT_YET, downstream, pinned_versions, read_pipeline, stage_listing

DVC_YAML = """
stages:
  make:
    cmd: echo ${a.x} > one.txt
    params: [a]
    outs: [one.txt]
  each:
    foreach: [p, q]
    do:
      cmd: cat one.txt > ${item}.txt
      deps: [one.txt]
      outs: ["${item}.txt"]
  report:
    cmd: cat p.txt > m.json
    deps: [p.txt]
    params: [b.y]
    metrics:
      - m.json:
          cache: false
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project of four stages (one foreach of two), reproduced once."""
    root = tmp_path_factory.mktemp("dvc")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(yaml.safe_dump({"a": {"x": 1}, "b": {"y": 2, "z": 3}}))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    for command in (["dvc", "init", "--no-scm", "-q"], ["dvc", "repro", "-q"]):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    return root


def test_every_stage_is_read_as_dvc_resolves_it(project: Path) -> None:
    stages = {stage.name: stage for stage in read_pipeline(project)}
    assert list(stages) == ["make", "each@p", "each@q", "report"]
    assert stages["make"].command == "echo 1 > one.txt" and stages["each@q"].command == "cat one.txt > q.txt"
    assert stages["each@p"].deps == ("one.txt",) and stages["each@p"].needs == ("make",)
    assert stages["report"].params == {"b": {"y": 2}} and stages["report"].metrics == {"m.json"}
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    assert stages["each@q"].outs == {"q.txt": lock["each@q"]["outs"][0]["md5"]}


def test_parameters_are_current_and_hashes_those_of_the_lock(project: Path) -> None:
    params = project / "params.yaml"
    before = params.read_text()
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    try:
        params.write_text(yaml.safe_dump({"a": {"x": 7}, "b": {"y": 2, "z": 3}}))
        make = read_pipeline(project)[0]
    finally:
        params.write_text(before)
    assert make.params == {"a": {"x": 7}} and make.outs == {"one.txt": lock["make"]["outs"][0]["md5"]}


def test_downstream_follows_the_outputs(project: Path) -> None:
    stages = read_pipeline(project)
    assert downstream(stages, "make") == {"make", "each@p", "each@q", "report"}
    assert downstream(stages, "each@p") == {"each@p", "report"}
    assert downstream(stages, "each@q") == {"each@q"}


def test_the_listing_is_yaml_and_leaves_pending_hashes_open(project: Path) -> None:
    stages = read_pipeline(project)
    listing = yaml.safe_load(stage_listing(stages, pending={"report"}))
    assert list(listing) == ["make", "each@p", "each@q", "report"]
    assert listing["make"]["parameters"] == {"a": {"x": 1}} and "dependencies" not in listing["make"]
    assert listing["each@p"]["outputs"] == [f"p.txt  {stages[1].outs['p.txt']}"]
    assert listing["report"]["metrics"] == [f"m.json  {NOT_YET}"] and "outputs" not in listing["report"]


def test_pinned_versions_set_the_pin_beside_what_is_installed(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["PyYAML==0.1", "pandas==0.2"]\n')
    table = pinned_versions(pyproject)
    assert table.loc["PyYAML", "pinned"] == "0.1" and table.loc["PyYAML", "installed"] == metadata.version("PyYAML")
    assert list(table.index) == ["PyYAML", "pandas"]
