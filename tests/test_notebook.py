"""`dmlfaces notebook`: papermill runs for real; the output appears only when every cell has run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from dmlfaces.cli import main
from dmlfaces.notebook import part_path


def _notebook(path: Path, body: str) -> Path:
    """A notebook with a papermill parameters cell (``count = 1``, ``label = 'x'``) and ``body`` after it."""
    parameters = nbformat.v4.new_code_cell("count = 1\nlabel = 'x'", metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_a_completed_run_is_renamed_into_place_with_typed_parameters(tmp_path: Path) -> None:
    source = _notebook(tmp_path / "in.ipynb", "import json\nprint(json.dumps([count * 2, label]))")
    out = tmp_path / "book" / "01_x.ipynb"
    out.parent.mkdir()
    assert main(["notebook", str(source), str(out), "-p", "count", "21", "-p", "label", "y"]) == 0
    outputs = nbformat.read(out, as_version=4).cells[-1].outputs
    assert json.loads(outputs[0]["text"]) == [42, "y"]  # papermill typed 21 as an int
    assert not part_path(out).exists()
    assert part_path(out).name == ".01_x.dmlfaces-part.ipynb"


def test_a_failing_cell_leaves_the_previous_output_and_names_the_partial_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _notebook(tmp_path / "in.ipynb", "raise ValueError('bad data in cell two')")
    out = tmp_path / "02_x.ipynb"
    out.write_text("previous run")
    with pytest.raises(SystemExit) as failure:
        main(["notebook", str(source), str(out)])
    assert str(part_path(out)) in str(failure.value) and "failed" in str(failure.value)
    assert out.read_text() == "previous run"
    assert "bad data in cell two" in part_path(out).read_text()


def test_a_missing_notebook_is_reported_without_pointing_at_a_stale_partial_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "03_x.ipynb"
    part_path(out).write_text("left by an earlier failed run")
    with pytest.raises(SystemExit) as failure:
        main(["notebook", str(tmp_path / "absent.ipynb"), str(out)])
    assert "absent.ipynb failed" in str(failure.value) and str(part_path(out)) not in str(failure.value)
    assert not out.exists() and not part_path(out).exists()


def test_ctrl_c_mid_run_leaves_the_previous_output_and_no_partial_notebook(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group (dmlfaces, papermill, the kernel) while a cell runs."""
    started = tmp_path / "started"
    source = _notebook(tmp_path / "in.ipynb", f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(120)")
    out = tmp_path / "04_x.ipynb"
    out.write_text("previous run")
    run = subprocess.Popen(
        [sys.executable, "-m", "dmlfaces", "notebook", str(source), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, signalled as a terminal signals its foreground job
    )
    deadline = time.monotonic() + 120
    while not started.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert started.exists(), "the notebook's cell never started"
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("dmlfaces notebook: interrupted; each output file is complete or untouched")
    assert "dmlfaces/cli.py" not in stderr  # no traceback of ours (the interrupted kernel may log its own)
    assert out.read_text() == "previous run" and not part_path(out).exists()


def test_a_chapter_moves_to_the_repository_holding_dvc_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmlfaces.notebook import at_repository_root

    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert at_repository_root() == tmp_path.resolve() and Path.cwd() == tmp_path.resolve()
    (tmp_path / "outside").mkdir()
    (tmp_path / "dvc.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="holds dvc.yaml"):
        at_repository_root(tmp_path / "outside")
