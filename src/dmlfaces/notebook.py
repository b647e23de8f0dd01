"""Run a study notebook with papermill so that a killed or failed run never leaves a notebook under its name.

Papermill saves its output notebook after every cell. A stage killed mid-run would leave a half-executed
notebook where the book expects a finished one, so the run writes to a hidden sibling
(``.NAME.dmlfaces-part.ipynb``: hidden, so the book's ``exclude_patterns`` skip it, and marked as the package's
own, so removing a failed run's leftover never removes a user's file) and renames it over the output only when every cell has run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dmlfaces.io import MARKER


class NotebookFailed(RuntimeError):
    """Papermill exited with an error; the output is left as it was."""


def part_path(out: str | os.PathLike[str]) -> Path:
    """The hidden file a run of ``out`` writes to until it completes."""
    out = Path(out)
    return out.with_name(f".{out.stem}.{MARKER}part{out.suffix}")


def execute_notebook(
    notebook: str | os.PathLike[str], out: str | os.PathLike[str], parameters: Sequence[tuple[str, str]] = ()
) -> Path:
    """Execute ``notebook`` with papermill's ``-p NAME VALUE`` parameters (typed as papermill types them).

    The kernel runs in the current directory (the repository root, for a pipeline stage), which the
    notebooks' relative paths assume. Returns ``out``. Raises ``NotebookFailed``, naming the partial notebook
    with the traceback when a cell raised; an interrupted run (Ctrl-C) removes its partial notebook.
    """
    out, part = Path(out), part_path(out)
    part.unlink(missing_ok=True)  # a failed run's leftover must not be taken for this run's
    command = [sys.executable, "-m", "papermill", "--no-progress-bar", "--cwd", ".", str(notebook), str(part)]
    for name, value in parameters:
        command += ["-p", name, value]
    try:
        returncode = subprocess.run(command).returncode
    except KeyboardInterrupt:  # subprocess.run has stopped papermill: its half-run notebook is nobody's
        part.unlink(missing_ok=True)
        raise
    if returncode != 0:
        where = (
            f"the executed cells and the traceback are in {part} (a hidden file; open it with Jupyter)"
            if part.exists()
            else "papermill's message above says why"
        )
        raise NotebookFailed(f"{notebook} failed; {out} is left as it was; {where}")
    os.replace(part, out)
    return out


def at_repository_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Move this process to the repository holding ``dvc.yaml`` (the nearest one at or above ``start``, the
    current directory by default) and return it.

    A chapter's relative paths (params.yaml, data/, results/) are the repository's: papermill runs it there, but
    JupyterLab starts a notebook's kernel in the notebook's own folder (notebooks/), so each chapter calls this
    first. Raises FileNotFoundError when no folder on the way up holds ``dvc.yaml``.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            os.chdir(folder)
            return folder
    raise FileNotFoundError(
        f"{here}: neither this folder nor one above it holds dvc.yaml; open the chapter inside "
        "a dmlfaces repository (its notebooks/ folder)"
    )


def glue_texts(texts: Mapping[str, object]) -> None:
    """Glue each value under its key for the chapter's prose (``{glue:text}`key```), without displaying it."""
    from myst_nb import glue

    for key, value in texts.items():
        glue(key, value, display=False)
