"""Reproducible numerics: every pinned setting takes effect over the user's own, pinned training gives the same
bytes under other host-like conditions (where native training does not), and tools/compare_metrics.py tells a
rerun's metrics from the committed ones."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dmlfaces.numerics import MODE_VARIABLE, PINNED, THREADS

REPO = Path(__file__).resolve().parents[1]
X86 = pytest.mark.skipif(platform.machine() not in {"x86_64", "AMD64"}, reason="the pinned instruction sets are x86's")
TINY = {
    "backbone": "small",
    "embedding_dim": 32,
    "loss": "adaface",
    "epochs": 1,
    "batch_size": 8,
    "lr": 0.05,
    "checkpoint_every": 100,
    "seed": 0,
    "cache_images": True,
    "loader_threads": 2,
    "device": "cpu",
}
# What another host would bring: other threads, other kernels, its own settings of the pinned variables.
HOST_LIKE = {
    "user's OMP_NUM_THREADS=1": ({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, []),
    "AVX-512 and CNR preset": ({"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AUTO"}, []),
    "no vector kernels preset": ({"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}, []),
    "one core": ({}, ["taskset", "-c", "0"]),
}


def _environment(mode: str, **extra: str) -> dict[str, str]:
    """The test's environment without any pinned variable (a host's defaults), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if k not in PINNED}, MODE_VARIABLE: mode, **extra}


PROBE = """
import json, sys
from dmlfaces.numerics import pin_numerics
mode = pin_numerics()
import numpy, threadpoolctl, torch
a = torch.randn(64, 64)
a @ a  # MKL
torch.nn.functional.conv2d(torch.randn(8, 16, 28, 28), torch.randn(16, 16, 3, 3), padding=1)  # oneDNN
numpy.ones((64, 64)) @ numpy.ones((64, 64))  # OpenBLAS
blas = [pool for pool in threadpoolctl.threadpool_info() if pool["internal_api"] == "openblas"]
print(json.dumps({"mode": mode, "threads": torch.get_num_threads(), "aten": torch.backends.cpu.get_cpu_capability(),
                  "deterministic": torch.are_deterministic_algorithms_enabled(),
                  "openblas": sorted({(pool["architecture"], pool["num_threads"]) for pool in blas})}))
"""


def _probe(mode: str, **extra: str) -> tuple[dict, str]:
    verbose = {"ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1"}  # each library says what it dispatched to
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=_environment(mode, **verbose, **extra), capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout


@X86
def test_every_pinned_setting_takes_effect_over_the_users_own() -> None:
    users = {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_CBWR": "AUTO",
        "MKL_DYNAMIC": "TRUE",
        "OPENBLAS_CORETYPE": "Sandybridge",
    }
    effective, log = _probe("pinned", **users)
    assert effective == {
        "mode": "pinned",
        "threads": THREADS,
        "aten": "AVX2",
        "deterministic": True,
        "openblas": [["Haswell", THREADS]],
    }
    assert "isa:Intel AVX2\n" in log  # oneDNN
    mkl = [line for line in log.splitlines() if line.startswith("MKL_VERBOSE SGEMM")]
    assert mkl and all("CNR:COMPATIBLE Dyn:0" in line and f"NThr:{THREADS}" in line for line in mkl)


@X86
def test_native_mode_leaves_the_users_settings() -> None:
    effective, log = _probe("native", OMP_NUM_THREADS="1", ATEN_CPU_CAPABILITY="default", OPENBLAS_NUM_THREADS="1")
    assert (effective["mode"], effective["threads"], effective["aten"], effective["deterministic"]) == (
        "native",
        1,
        "DEFAULT",
        False,
    )
    assert "CNR:OFF" in log


def test_a_process_that_loaded_torch_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmlfaces.numerics import pin_numerics

    monkeypatch.delenv(MODE_VARIABLE, raising=False)
    before = dict(os.environ)
    assert pin_numerics() == "preloaded" and dict(os.environ) == before  # this test process


def _train(tmp_path: Path, data: Path, name: str, mode: str, extra: dict[str, str], launcher: list[str]) -> Path:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"embedding": TINY}))
    out = tmp_path / name
    command = [
        *launcher,
        sys.executable,
        "-m",
        "dmlfaces",
        "train-embedding",
        "--data",
        str(data / "train"),
        "--out",
        str(out),
        "--params",
        str(params),
    ]
    result = subprocess.run(command, env=_environment(mode, **extra), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _weights(out: Path) -> bytes:
    state = torch.load(out / "backbone.pt", weights_only=False)["state_dict"]
    return b"".join(state[key].numpy().tobytes() for key in sorted(state))


@X86
def test_pinned_training_gives_the_same_bytes_under_host_like_conditions(tiny_data: Path, tmp_path: Path) -> None:
    reference = _weights(_train(tmp_path, tiny_data, "reference", "pinned", {}, []))
    for index, (condition, (extra, launcher)) in enumerate(HOST_LIKE.items()):
        if launcher and shutil.which(launcher[0]) is None:
            continue  # no taskset on this system
        assert _weights(_train(tmp_path, tiny_data, f"condition{index}", "pinned", extra, launcher)) == reference, condition


@X86
def test_native_training_depends_on_the_thread_count(tiny_data: Path, tmp_path: Path) -> None:
    """What the pin prevents: the same run with another thread count trains other weights."""
    one = _weights(_train(tmp_path, tiny_data, "one", "native", {"OMP_NUM_THREADS": "1"}, []))
    two = _weights(_train(tmp_path, tiny_data, "two", "native", {"OMP_NUM_THREADS": "2"}, []))
    assert one != two


# --- tools/compare_metrics.py ------------------------------------------------------------------------------------


def _tool():
    spec = importlib.util.spec_from_file_location("compare_metrics", REPO / "tools" / "compare_metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VERIFICATION = {"methods": {"coreset": {"tar": [0.41, 0.62]}, "mean": {"tar": [0.38, 0.6]}}, "resamples": 200}


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def _compare(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> tuple[int, str]:
    status = _tool().main([str(a) for a in arguments])
    return status, capsys.readouterr().out


def test_identical_metrics_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder in ("run", "reference"):
        _write(tmp_path / folder, "verification.json", json.dumps(VERIFICATION, indent=2))
    status, out = _compare(capsys, "--metrics", tmp_path / "run", "--reference", tmp_path / "reference")
    assert status == 0 and "verification.json: identical" in out


def test_numbers_within_the_tolerance_pass_and_say_they_are_not_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "reference", "verification.json", json.dumps(VERIFICATION))
    close = json.loads(json.dumps(VERIFICATION))
    close["methods"]["coreset"]["tar"][1] = 0.62 + 1e-9
    _write(tmp_path / "run", "verification.json", json.dumps(close))
    status, out = _compare(capsys, "--metrics", tmp_path / "run", "--reference", tmp_path / "reference")
    assert status == 0 and "verification.json: equal within the tolerance, not byte for byte" in out


def test_a_difference_beyond_the_tolerance_names_each_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "reference", "verification.json", json.dumps(VERIFICATION))
    _write(tmp_path / "reference", "data.json", "{}")
    moved = json.loads(json.dumps(VERIFICATION))
    moved["methods"]["coreset"]["tar"][1] = 0.6201
    del moved["resamples"]
    _write(tmp_path / "run", "verification.json", json.dumps(moved))
    status, out = _compare(capsys, "--metrics", tmp_path / "run", "--reference", tmp_path / "reference", "--tolerance", "1e-6")
    assert status == 1
    assert "methods.coreset.tar[1]: 0.6201, the reference 0.62" in out and "resamples: only in the reference" in out
    assert "data.json: only in the reference" in out and "methods.mean" not in out and "DIFFERENT metrics" in out


def test_cross_host_tolerances_by_kind_name_what_moved_too_far(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = {
        "methods": {"coreset": {"0.001": {"tar_exact": 0.40, "ci_low": 0.35}}},
        "genuine_pairs": 10270,
        "final_training_loss": {"coreset": 23.0},
    }
    _write(tmp_path / "reference", "verification.json", json.dumps(reference))
    _write(tmp_path / "reference", "aggregator.json", json.dumps({"gamma": {"coreset": 1.72}, "picked_quality": 0.41}))
    # Another CPU model: TAR 1.5 points off, the loss 5e-4 relative, gamma anywhere: all within the stated tolerances.
    moved = {
        "methods": {"coreset": {"0.001": {"tar_exact": 0.415, "ci_low": 0.34}}},
        "genuine_pairs": 10270,
        "final_training_loss": {"coreset": 23.0115},
    }
    _write(tmp_path / "run", "verification.json", json.dumps(moved))
    _write(tmp_path / "run", "aggregator.json", json.dumps({"gamma": {"coreset": -0.27}, "picked_quality": 0.405}))
    status, out = _compare(capsys, "--metrics", tmp_path / "run", "--reference", tmp_path / "reference", "--cross-host")
    assert status == 0 and "cross-host tolerances" in out and "the same metrics" in out
    assert _compare(capsys, "--metrics", tmp_path / "run", "--reference", tmp_path / "reference")[0] == 1  # not byte for byte
    # Beyond them: TAR 2.5 points off, the loss 9e-3 relative, one genuine pair more.
    beyond = {
        "methods": {"coreset": {"0.001": {"tar_exact": 0.425, "ci_low": 0.35}}},
        "genuine_pairs": 10271,
        "final_training_loss": {"coreset": 23.2},
    }
    _write(tmp_path / "run", "verification.json", json.dumps(beyond))
    status, out = _compare(capsys, "--metrics", tmp_path / "run", "--reference", tmp_path / "reference", "--cross-host")
    assert status == 1 and "DIFFERS beyond the tolerance in 3 values" in out
    assert "methods.coreset.0.001.tar_exact: 0.425, the reference 0.4" in out and "genuine_pairs: 10271" in out
    assert "final_training_loss.coreset: 23.2" in out and "ci_low" not in out


def test_the_committed_metrics_get_the_rule_of_their_kind() -> None:
    from dmlfaces.reproduction import _numbers, cross_host_rule

    def rules(name: str) -> dict[str, object]:
        numbers = _numbers(json.loads((REPO / "results" / "metrics" / f"{name}.json").read_text()))
        return {key: cross_host_rule(name, key, value) for key, value in numbers}

    verification, aggregator, attributes = rules("verification"), rules("aggregator"), rules("attributes")

    def of(found: dict[str, object], *endings: str) -> list:
        chosen = [rule for key, rule in found.items() if key.endswith(endings)]
        assert chosen, endings  # the metrics still hold such keys
        return chosen

    assert all(rule.absolute == 0.02 for rule in of(verification, "tar_exact", "ci_low_exact"))
    assert all(rule.absolute == 0.04 for rule in of(verification, "rank_1"))
    assert all(rule.relative == 0.06 for rule in of(verification, ".median"))
    assert all(rule.absolute == 0 for rule in of(verification, ".copies", "genuine_pairs", "bootstrap.resamples"))
    gamma = [rule for key, rule in aggregator.items() if key.startswith("gamma.")]
    assert gamma and all(rule.absolute is None and rule.relative is None and rule.why for rule in gamma)
    assert all(rule.relative == 6e-3 for rule in of(aggregator, "final_training_loss.coreset"))
    assert all(rule.absolute == 0.006 for rule in of(attributes, ".nmi"))
    counts = [rule for key, rule in attributes.items() if ".histogram.counts[" in key]
    assert counts and all(rule.why for rule in counts)


def test_the_reference_is_a_git_revisions_committed_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = _tool()
    monkeypatch.setattr(tool, "REPO", tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    _write(tmp_path / "results" / "metrics", "verification.json", json.dumps(VERIFICATION))
    subprocess.run([*git, "add", "results"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "metrics"], check=True)
    metrics = tmp_path / "results" / "metrics"
    assert tool.main(["--metrics", str(metrics)]) == 0 and "verification.json: identical" in capsys.readouterr().out
    (metrics / "verification.json").write_text(json.dumps({**VERIFICATION, "resamples": 100}))
    assert tool.main(["--metrics", str(metrics), "--reference", "HEAD"]) == 1
    assert "resamples: 100, the reference 200" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="neither a directory nor a git revision"):
        tool.main(["--metrics", str(metrics), "--reference", "no-such-revision"])


def test_the_environment_alone_is_pinned_for_a_process_without_torch_work() -> None:
    probe = (
        "import json, os, sys\nfrom dmlfaces.numerics import PINNED, pin_numerics\n"
        "mode = pin_numerics(configure_torch=False)\n"
        "print(json.dumps({'mode': mode, 'torch': 'torch' in sys.modules,"
        " 'pinned': all(os.environ[k] == v for k, v in PINNED.items())}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=_environment("pinned", OMP_NUM_THREADS="1"), capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == {"mode": "pinned", "torch": False, "pinned": True}


@pytest.mark.parametrize("sections", [["data"], ["aggregator", "aggregator_variants"]])
def test_check_params_runs_without_loading_torch(sections: list[str], tmp_path: Path) -> None:
    # The aggregator sections are checked in each of the 20 training stages: torch would cost seconds in each.
    params = tmp_path / "params.yaml"
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    params.write_text(yaml.safe_dump({**shipped, "data": {"dir": "data", "preset": "tiny", "seed": 0}}))
    probe = (
        "import runpy, sys\nsys.argv = ['dmlfaces', 'check-params', *sys.argv[2:], '--params', sys.argv[1]]\n"
        "try:\n    runpy.run_module('dmlfaces', run_name='__main__')\nexcept SystemExit as stop:\n"
        "    assert not stop.code, stop.code\nprint('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(params), *sections],
        env=_environment("pinned"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
