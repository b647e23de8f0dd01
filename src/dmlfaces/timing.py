"""Wall time of each dmlfaces command a DVC stage runs, recorded in ``results/timings/<stage>.json``.

DVC names the running stage in ``DVC_STAGE`` (``train_aggregator@k5``) for every command of it, and a stage
chains several dmlfaces commands with ``&&``. Every stage starts with ``dmlfaces check-params``, so that
command starts the stage's record afresh, replacing the previous run's, and each later command adds its
seconds and exit status (a failed run shows where it stopped). The stage's total is the sum of its commands.

Timings are neither DVC outputs nor metrics: they vary from run to run, while metrics compare byte for byte.
Git keeps them, so the book shows the committed run's times, each stage with the host it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dmlfaces.errors import UserError
from dmlfaces.io import write_json

if TYPE_CHECKING:
    import pandas as pd

STAGE_VARIABLE = "DVC_STAGE"
ROOT_VARIABLE = "DVC_ROOT"  # the repository root: DVC runs a stage's commands in its working directory
FIRST_COMMAND = "check-params"
DIRECTORY = Path("results") / "timings"


@dataclass
class Clock:
    """One command's wall clock, started before any of its work, and the images it reports having processed."""

    started: float = field(default_factory=time.perf_counter)
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    numerics: str = "not pinned"  # what dmlfaces.numerics.pin_numerics returned
    counts: dict[str, float] = field(default_factory=dict)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def throughput(self, images: int) -> dict[str, float]:
        """Note that ``images`` were processed, and their rate since the command started; return both."""
        self.counts = {"images": images, "images_per_s": round(images / self.seconds(), 2)}
        return dict(self.counts)


def cpu_model() -> str:
    """The processor's name (``/proc/cpuinfo``'s model name where there is one)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def record(clock: Clock, argv: Sequence[str], exit_status: int, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Add the finished command ``argv`` to its DVC stage's record (a new record when it is ``check-params``).

    Does nothing outside DVC, and under torchrun in any process but rank 0, which speaks for the whole command.
    Returns the record's path.
    """
    stage = environ.get(STAGE_VARIABLE)
    if not stage or environ.get("RANK", "0") != "0":
        return None
    path = Path(environ.get(ROOT_VARIABLE, ".")) / DIRECTORY / f"{stage.replace('/', '_')}.json"
    command = {"argv": list(argv), "seconds": round(clock.seconds(), 3), "exit": exit_status, **clock.counts}
    previous = None if argv[:1] == [FIRST_COMMAND] or not path.exists() else _previous(path)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # usable, not installed
    host = {"cpu": cpu_model(), "cpus": cpus, "numerics": clock.numerics}
    commands = [*previous["commands"], command] if previous else [command]
    write_json(
        path,
        {
            "stage": stage,
            "started": previous["started"] if previous else clock.started_at,
            "host": host,
            "commands": commands,
            "seconds": round(sum(c["seconds"] for c in commands), 3),
        },
    )
    return path


def _previous(path: Path) -> dict | None:
    """The record this stage run has written so far; None (and a warning) if the file is not one."""
    try:
        return read_record(path)
    except UserError as error:
        print(f"dmlfaces: {error}; starting the stage's record afresh", file=sys.stderr)
        return None


def read_record(path: Path) -> dict:
    """The timing record at ``path``; a ``UserError`` naming it if it is not one that ``record`` wrote."""
    keys = {"stage", "started", "host", "commands", "seconds"}
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # not JSON, or not UTF-8
        entry = None
    if not isinstance(entry, dict) or not keys <= set(entry) or not isinstance(entry["commands"], list):
        raise UserError(
            f"{path} is not a stage timing record (a JSON object with the keys {sorted(keys)}); delete it "
            "and rerun its stage (dvc repro -f STAGE) to record it again"
        )
    return entry


def read_records(results_dir: str | os.PathLike[str]) -> dict[str, dict]:
    """Stage name -> its timing record, of every record under ``results_dir``/timings (none: an empty dict)."""
    records = [read_record(path) for path in sorted((Path(results_dir) / "timings").glob("*.json"))]
    return {entry["stage"]: entry for entry in records}


def untimed_stages(records: Mapping[str, dict], order: Sequence[str]) -> str:
    """The stages of ``order`` without a record, comma-separated, or "none"."""
    return ", ".join(name for name in order if name not in records) or "none"


def stage_table(records: Mapping[str, dict], order: Sequence[str], running: str | None = None) -> pd.DataFrame:
    """One row per stage of ``order`` that has a record: its seconds, commands, images/s (extraction) and host.

    ``running`` is the stage executing now: its record holds only the commands that have finished.
    """
    import pandas as pd  # here, not above: the command line imports this module before numpy may load

    rows = []
    for name in order:
        if name not in records:
            continue
        entry, host = records[name], records[name]["host"]
        rates = [c["images_per_s"] for c in entry["commands"] if "images_per_s" in c]
        rows.append(
            {
                "stage": f"{name} (so far)" if name == running else name,
                "seconds": entry["seconds"],
                "commands": len(entry["commands"]),
                "images_per_s": rates[-1] if rates else float("nan"),
                "host": f"{host['cpu']}, {host['cpus']} CPUs, {host['numerics']} numerics",
                "started": entry["started"],
            }
        )
    return pd.DataFrame(rows, columns=["stage", "seconds", "commands", "images_per_s", "host", "started"])
