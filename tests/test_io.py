"""Atomic writes: the final name holds the whole new content or the old one, never a fragment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmlfaces.io import atomic_path, atomic_write_text, write_json


def test_atomic_write_replaces_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a" / "metrics.json"
    write_json(target, {"b": 1, "a": 2})
    write_json(target, {"b": 3})
    assert json.loads(target.read_text()) == {"b": 3}
    assert target.read_text() == '{\n  "b": 3\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_failure_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_directories_are_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("1")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "y").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["y"]
