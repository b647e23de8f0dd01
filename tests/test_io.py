"""Output ownership: the final name holds the whole new output or the old one, and nothing else is deleted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dmlfaces import io
from dmlfaces.errors import OutputPathError
from dmlfaces.io import atomic_directory, atomic_path, atomic_write_text, recover_directory, write_json


def _anything(final: Path, new: Path) -> None:
    """A ``may_replace`` that allows every replacement (the tests' outputs are all the tests' own)."""


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _write_tree(path: Path, files: dict[str, str]) -> None:
    with atomic_directory(path, _anything) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text)


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


def test_an_existing_directory_given_for_a_file_is_refused_and_kept(tmp_path: Path) -> None:
    mine = tmp_path / "results"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputPathError, match="is a directory, but this output is a file"):
        write_json(mine, {"a": 1})
    assert _tree(mine) == {"sub/thesis.tex": "precious"}


def test_temporaries_carry_the_package_marker(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.json") as tmp:
        assert tmp.name.startswith(".x.json.dmlfaces-") and tmp.name.endswith(".tmp")
        tmp.write_text("1")


def test_directories_are_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    _write_tree(target, {"x": "1"})
    _write_tree(target, {"y": "2"})
    assert _tree(target) == {"y": "2"}
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]


def test_replacing_asks_may_replace_first_and_a_refusal_keeps_the_old_output(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    _write_tree(target, {"x": "1"})

    def refuse(final: Path, new: Path) -> None:
        assert _tree(new) == {"y": "2"}  # asked with the finished new output beside it
        raise OutputPathError(f"{final} holds a user's file")

    with pytest.raises(OutputPathError, match="user's file"):
        with atomic_directory(target, refuse) as tmp:
            (tmp / "y").write_text("2")
    assert _tree(target) == {"x": "1"}
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]


def test_lookalike_directories_of_a_user_are_never_removed(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    lookalikes = [
        tmp_path / ".tree.backup.tmp",
        tmp_path / ".tree.dmlfaces-0123456789ab.tmp",
        tmp_path / ".tree.dmlfaces-ffffffffffff.tmp",
    ]
    for directory in lookalikes:
        directory.mkdir()
        (directory / "mine.txt").write_text("keep")
    # A record that does not name its own temporary proves nothing.
    (tmp_path / ".tree.dmlfaces-ffffffffffff.owner").write_text(json.dumps({"pid": 1 << 30, "directory": "tree"}))
    _write_tree(target, {"x": "1"})
    _write_tree(target, {"y": "2"})
    for directory in lookalikes:
        assert _tree(directory) == {"mine.txt": "keep"}


def test_a_killed_run_is_cleaned_up_by_the_next_only_when_its_process_is_gone(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    dead, live = "aaaaaaaaaaaa", "bbbbbbbbbbbb"
    for token, pid in ((dead, 1 << 30), (live, os.getppid())):
        (tmp_path / f".tree.dmlfaces-{token}.tmp").mkdir()
        (tmp_path / f".tree.dmlfaces-{token}.tmp" / "half").write_text("")
        (tmp_path / f".tree.dmlfaces-{token}.owner").write_text(
            json.dumps({"pid": pid, "directory": f".tree.dmlfaces-{token}.tmp"})
        )
    _write_tree(target, {"x": "1"})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f".tree.dmlfaces-{live}.owner", f".tree.dmlfaces-{live}.tmp", "tree"]  # another run's, in progress


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic-exchange", "three-renames"])
@pytest.mark.parametrize("interrupt_at", range(4))
def test_an_interrupt_anywhere_in_the_replace_step_leaves_the_old_or_the_new_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool, interrupt_at: int
) -> None:
    """Interrupt the n-th file system step of the replacement (a rename, the exchange, or the removal of the
    old output); the final name then holds one complete output, or the next run restores the old one."""
    target = tmp_path / "tree"
    old, new = {"a": "old", "b": "old"}, {"c": "new"}
    _write_tree(target, old)
    steps = {"n": 0}

    def step(real):
        def wrapped(*args, **kwargs):
            steps["n"] += 1
            if steps["n"] == interrupt_at + 1:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        return wrapped

    if not exchange:
        monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    else:
        monkeypatch.setattr(io, "_exchange", step(io._exchange))
    monkeypatch.setattr(io.os, "rename", step(os.rename))
    monkeypatch.setattr(io.shutil, "rmtree", step(shutil.rmtree))
    try:
        _write_tree(target, new)
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    assert _tree(target) in (old, new)
    recover_directory(target)  # what the next run does first (removes an old output left half-deleted)
    assert _tree(target) in (old, new)
    _write_tree(target, {"d": "next"})
    assert _tree(target) == {"d": "next"}
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]


def test_a_run_killed_between_two_renames_gets_its_old_output_back_from_the_next(tmp_path: Path) -> None:
    """SIGKILL after the three-rename swap moved the old output aside (no ``finally`` ran)."""
    target, token = tmp_path / "tree", "cccccccccccc"
    aside = tmp_path / f".tree.dmlfaces-{token}.old"
    aside.mkdir()
    (aside / "a").write_text("old")
    (tmp_path / f".tree.dmlfaces-{token}.tmp").mkdir()  # the new output, not yet renamed
    (tmp_path / f".tree.dmlfaces-{token}.owner").write_text(json.dumps({"pid": 1 << 30, "directory": aside.name}))
    recover_directory(target)
    assert _tree(target) == {"a": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]


def test_records_of_another_output_with_a_lookalike_name_are_not_this_ones(tmp_path: Path) -> None:
    """``tree[1]`` globs like ``tree1``, and ``tree.dmlfaces-x``'s records start like ``tree``'s."""
    for other, token in (("tree1", "dddddddddddd"), ("tree.dmlfaces-x", "eeeeeeeeeeee")):
        aside = tmp_path / f".{other}.dmlfaces-{token}.old"
        aside.mkdir()
        (aside / "a").write_text("theirs")
        (tmp_path / f".{other}.dmlfaces-{token}.owner").write_text(json.dumps({"pid": 1 << 30, "directory": aside.name}))
    for name in ("tree[1]", "tree"):
        _write_tree(tmp_path / name, {"x": "1"})
    assert not (tmp_path / "tree1").exists()
    assert _tree(tmp_path / ".tree1.dmlfaces-dddddddddddd.old") == {"a": "theirs"}
    assert _tree(tmp_path / ".tree.dmlfaces-x.dmlfaces-eeeeeeeeeeee.old") == {"a": "theirs"}
