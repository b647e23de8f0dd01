"""Run a study notebook with papermill so that a killed or failed run never leaves a notebook under its name.

Papermill saves its output notebook after every cell. A stage killed mid-run would leave a half-executed
notebook where the book expects a finished one, so the run writes to a hidden sibling (``.NAME.part.ipynb``,
which the book's ``exclude_patterns`` skip) and renames it over the output only when every cell has run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class NotebookFailed(RuntimeError):
    """A notebook cell raised; the partial notebook with the traceback is kept for reading."""


def part_path(out: str | os.PathLike[str]) -> Path:
    """The hidden file a run of ``out`` writes to until it completes."""
    out = Path(out)
    return out.with_name(f".{out.stem}.part{out.suffix}")


def execute_notebook(notebook: str | os.PathLike[str], out: str | os.PathLike[str],
                     parameters: Sequence[tuple[str, str]] = (), cwd: str | os.PathLike[str] = ".") -> Path:
    """Execute ``notebook`` with papermill's ``-p NAME VALUE`` parameters (typed as papermill types them).

    Returns ``out``. Raises ``NotebookFailed`` naming the partial notebook that holds the traceback.
    """
    out, part = Path(out), part_path(out)
    command = [sys.executable, "-m", "papermill", "--no-progress-bar", "--cwd", str(cwd), str(notebook), str(part)]
    for name, value in parameters:
        command += ["-p", name, value]
    if subprocess.run(command).returncode != 0:
        raise NotebookFailed(f"{notebook} failed; {out} is left as it was. The executed cells and the "
                             f"traceback are in {part} (a hidden file; open it with Jupyter)")
    os.replace(part, out)
    return out
