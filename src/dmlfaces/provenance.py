"""The DVC pipeline described from its own files, for the book's reproducibility page.

Stages, commands and dependencies come from ``dvc.yaml`` as DVC itself resolves it (``foreach`` entries
expanded, ``${...}`` interpolated); parameter values from ``params.yaml`` as they are now; output hashes
from ``dvc.lock`` (and ``data.dvc`` for the tracked data); package versions from ``pyproject.toml`` and the
environment. Nothing on that page is typed by hand.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo
from dvc.stage import PipelineStage, Stage

NOT_YET = "(recorded after this page is written)"


@dataclass(frozen=True)
class StageRecord:
    """One stage: ``name`` as DVC addresses it (``train_aggregator@k5``; ``data.dvc`` for tracked data).

    ``params``: the declared parameters and their current values, nested as in ``params.yaml``;
    ``outs``: path -> hash recorded in the lock file (None when it records none); ``metrics``: the outs
    that are metrics files; ``needs``: the stages whose outputs this one reads.
    """

    name: str
    command: str
    deps: tuple[str, ...]
    params: dict[str, object]
    outs: dict[str, str | None]
    metrics: frozenset[str]
    needs: tuple[str, ...]


def _address(stage: Stage, root: str) -> str:
    """A stage's name in ``dvc.yaml`` (``train_aggregator@k5``), or a ``.dvc`` file's path from the project root."""
    return stage.name if isinstance(stage, PipelineStage) else os.path.relpath(stage.path, root)


def read_pipeline(root: str | Path = ".") -> list[StageRecord]:
    """Every stage of the DVC project at ``root``, in the order DVC lists them (tracked data first)."""
    with Repo(os.fspath(root)) as repo:
        graph = repo.index.graph  # an edge (a, b): stage a reads an output of stage b
        records = []
        for stage in repo.index.stages:
            params: dict[str, object] = {}
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    params.update(dep.read_params(flatten=False))
            records.append(
                StageRecord(
                    name=_address(stage, repo.root_dir),
                    command=stage.cmd or "",
                    deps=tuple(dep.def_path for dep in stage.deps if not isinstance(dep, ParamsDependency)),
                    params=params,
                    outs={out.def_path: out.hash_info.value for out in stage.outs},
                    metrics=frozenset(out.def_path for out in stage.outs if out.metric),
                    needs=tuple(_address(before, repo.root_dir) for before in graph.successors(stage)),
                )
            )
        return records


def downstream(stages: Sequence[StageRecord], name: str) -> set[str]:
    """``name`` and every stage that reads its outputs, directly or through others."""
    found = {name}
    while True:
        more = {stage.name for stage in stages if found.intersection(stage.needs)} - found
        if not more:
            return found
        found |= more


class _ListingDumper(yaml.SafeDumper):
    """YAML with lists in block style (one path a line) and mappings of scalars in flow style (one line)."""

    def represent_list(self, data: list) -> yaml.SequenceNode:
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=False)


_ListingDumper.add_representer(list, _ListingDumper.represent_list)


def _hashes(stage: StageRecord, paths: Sequence[str], pending: bool) -> list[str]:
    """ "path  md5" of some of ``stage``'s outputs, as recorded."""
    return [f"{path}  {NOT_YET if pending else stage.outs[path] or '(none recorded)'}" for path in paths]


def stage_listing(stages: Sequence[StageRecord], pending: Collection[str] = ()) -> str:
    """Every stage as YAML: command, dependencies, parameters with their current values, and the md5 of each
    output and metrics file; empty entries are left out.

    Stages named in ``pending`` run after the page that shows this listing, so their hashes are not yet known.
    """
    listing = {}
    for stage in stages:
        outputs = [path for path in stage.outs if path not in stage.metrics]
        entry = {
            "command": stage.command,
            "dependencies": list(stage.deps),
            "parameters": stage.params,
            "outputs": _hashes(stage, outputs, stage.name in pending),
            "metrics": _hashes(stage, sorted(stage.metrics), stage.name in pending),
        }
        listing[stage.name] = {key: value for key, value in entry.items() if value}
    return yaml.dump(listing, Dumper=_ListingDumper, default_flow_style=None, sort_keys=False, width=76)


def pinned_versions(pyproject: str | Path) -> pd.DataFrame:
    """The direct dependencies of ``pyproject.toml`` (``name==version``): version pinned and version installed."""
    pins = tomllib.loads(Path(pyproject).read_text())["project"]["dependencies"]
    rows = {}
    for pin in pins:
        name, _, pinned = pin.partition("==")
        rows[name] = {"pinned": pinned, "installed": metadata.version(name)}
    return pd.DataFrame(rows).T.rename_axis("package")
