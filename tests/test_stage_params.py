"""Parameter checks at stage start: every section of params.yaml, every fault named, every stage checked."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from dmlfaces.errors import ParameterError
from dmlfaces.stage_params import SECTIONS, VARIANTS, check_params, section_schema

ROOT = Path(__file__).resolve().parents[1]


def _with(tmp_path: Path, section: str, **changes: object) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params[section] = {**(params[section] or {}), **changes}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_the_repository_params_pass_and_every_section_has_a_schema():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params) == set(SECTIONS) | {VARIANTS}
    check_params(ROOT / "params.yaml", list(params))


@pytest.mark.parametrize(
    ("section", "changes", "message"),
    [
        ("embedding", {"epochs": 2.5}, r"embedding.epochs = 2.5; it must be int"),
        ("embedding", {"amp": "yes"}, r"embedding.amp = 'yes'; it must be bool"),
        ("embedding", {"loss": "softmax"}, r"embedding.loss = 'softmax'; choose one of \['adaface'"),
        ("embedding", {"epoch": 3}, r"unknown keys \['epoch'\] in section 'embedding'; allowed: \["),
        ("aggregator", {"k": 0}, r"aggregator.k = 0; it must be a positive integer"),
        ("aggregator", {"real_clip_rate": 1.5}, r"aggregator.real_clip_rate = 1.5; it must lie in \[0, 1\]"),
        ("data", {"preset": "huge"}, r"data.preset = 'huge'; choose one of \['default', 'tiny'\]"),
        ("verification_report", {"low_quality_fraction": 1.0}, r"low_quality_fraction = 1.0; it must lie in \(0, 1\)"),
        ("attributes", {"identity_embedding": "median"}, r"attributes.identity_embedding = 'median'; choose one of \['mean'"),
        ("attributes", {"probe_folds": 1}, r"attributes.probe_folds = 1; it must lie in \[2, inf\)"),
        ("embedding", {"scale": 0}, r"embedding.scale = 0; it must lie in \(0, inf\)"),
        ("embedding", {"momentum": 2}, r"embedding.momentum = 2; it must lie in \[0, 1\)"),
        ("embedding", {"lr": -0.1}, r"embedding.lr = -0.1; it must lie in \(0, inf\)"),
        ("embedding", {"margin": 2.0}, r"embedding.margin = 2.0; it must lie in \[0, 1.5708\)"),
        ("embedding", {"weight_decay": -1e-4}, r"embedding.weight_decay = -0.0001; it must lie in \[0, inf\)"),
        ("embedding", {"device": "gpu"}, r"embedding.device = 'gpu'; choose auto, cpu, cuda, cuda:N"),
        ("embedding", {"loader_threads": 0}, r"embedding.loader_threads = 0; it must be a positive integer"),
        ("embedding", {"scale": float("nan")}, r"embedding.scale = nan; it must be a finite number"),
        ("aggregator", {"tau": 0.0}, r"aggregator.tau = 0.0; it must lie in \(0, inf\)"),
        ("aggregator", {"gamma": -1.0}, r"aggregator.gamma = -1.0; it must lie in \[0, inf\)"),
        ("aggregator", {"h": 0}, r"aggregator.h = 0; it must lie in \(0, inf\)"),
        ("aggregator", {"device": "cuda:x"}, r"aggregator.device = 'cuda:x'; choose auto"),
        ("data", {"seed": -1}, r"data.seed = -1; it must lie in \[0, inf\)"),
        ("attributes_report", {"map_identities": -3}, r"attributes_report.map_identities = -3; it must be a positive integer"),
    ],
)
def test_a_bad_value_is_named_with_what_is_allowed(tmp_path, section, changes, message):
    path = _with(tmp_path, section, **changes)
    with pytest.raises(ValueError, match=message) as error:
        check_params(path, [section])
    assert str(path) in str(error.value)


def test_a_bad_variant_and_an_unknown_section_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"aggregator_variants.k5: aggregator.k = 'five'; it must be int"):
        check_params(_with(tmp_path, VARIANTS, k5={"k": "five"}), [VARIANTS])
    with pytest.raises(ValueError, match=r"no parameter schema for sections \['trainig'\]"):
        check_params(ROOT / "params.yaml", ["trainig"])


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  preset: tiny\nembedding:\n  lr: [0.1\n  epochs: 3\n")
    with pytest.raises(ParameterError, match=rf"{path}:5:\d+: YAML syntax error"):
        check_params(path, ["data"])


def test_a_number_yaml_reads_as_a_string_is_explained(tmp_path):
    path = tmp_path / "params.yaml"
    section = (ROOT / "params.yaml").read_text().split("\nembedding:\n", 1)
    path.write_text(section[0] + "\nembedding:\n" + re.sub(r"\n  lr: [^\n]*", "\n  lr: 1e-3", section[1], count=1))
    with pytest.raises(
        ParameterError, match=r"embedding.lr = '1e-3'; it must be float or int \(YAML reads 1e-3 as a string.*1.0e-3"
    ):
        check_params(path, ["embedding"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- data\n- embedding\n", r"must be a mapping of sections"),
        ("data: tiny\n", r"section 'data' must be a mapping of keys to values, not 'tiny'"),
        ("data:\n  preset: tiny\n", None),
    ],
)
def test_a_file_or_section_of_the_wrong_shape_is_named(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    if message is None:
        check_params(path, ["data"])
        return
    with pytest.raises(ParameterError, match=message):
        check_params(path, ["data"])


def test_a_missing_parameters_file_is_named(tmp_path):
    with pytest.raises(ParameterError, match=r"no such parameters file"):
        check_params(tmp_path / "params.yaml", ["data"])


def test_the_command_stops_with_the_message_and_a_failure_status(tmp_path):
    path = _with(tmp_path, "aggregator", method="median")
    result = subprocess.run(
        [sys.executable, "-m", "dmlfaces", "check-params", "aggregator", "--params", str(path)], capture_output=True, text=True
    )
    assert (
        result.returncode == 2 and "aggregator.method = 'median'; choose one of ['coreset', 'attention_pooling']" in result.stderr
    )
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_every_stage_checks_the_sections_it_reads_before_its_work():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        read = {entry.split(".")[0] if isinstance(entry, str) else next(iter(entry)) for entry in stage.get("params", [])}
        if "${data." in stage["cmd"]:
            read.add("data")
        if not read:
            continue
        first = stage["cmd"].split("&&")[0].split()
        assert first[:2] == ["dmlfaces", "check-params"], f"stage {name} does not start with dmlfaces check-params"
        assert read <= set(first[2:]), f"stage {name} reads {sorted(read)} but checks {first[2:]}"


def test_every_dataclass_default_is_the_value_params_yaml_runs_with():
    """One source of each default: a dataclass built without arguments is params.yaml's section, key for key."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section in SECTIONS:
        defaults = dataclasses.asdict(section_schema(section)())
        assert defaults == params[section], section


def test_a_chapter_loads_its_sections_validated_in_the_order_asked(tmp_path):
    from dmlfaces.stage_params import DataParams, VerificationReportParams, load_sections

    data, report = load_sections(ROOT / "params.yaml", "data", "verification_report")
    assert isinstance(data, DataParams) and isinstance(report, VerificationReportParams)
    with pytest.raises(ParameterError, match=r"verification_report.resamples = 0; it must be a positive integer"):
        load_sections(_with(tmp_path, "verification_report", resamples=0), "verification_report")
    with pytest.raises(ParameterError, match=r"no parameter schema for sections \['chapter_04'\]"):
        load_sections(ROOT / "params.yaml", "chapter_04")


PARAMS_FILE_VARIABLE = "params_file"  # every chapter's parameter naming params.yaml
SECTION_NAMES = set(yaml.safe_load((ROOT / "params.yaml").read_text()))


def helper_sections(function: object, depth: int = 3) -> set[str]:
    """The params.yaml sections a package function handed the parameters file reads: those its source names as
    string literals, and those of the package functions it calls, ``depth`` calls deep."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    found = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in SECTION_NAMES}
    if depth:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                callee = function.__globals__.get(node.func.id)
                if inspect.isfunction(callee) and callee.__module__.startswith("dmlfaces"):
                    found |= helper_sections(callee, depth - 1)
    return found


def _imported(module: str, name: str) -> object:
    """What ``from module import name`` binds: a submodule, or the module's attribute."""
    parent = importlib.import_module(module)
    if hasattr(parent, "__path__") and importlib.util.find_spec(f"{module}.{name}") is not None:
        return importlib.import_module(f"{module}.{name}")
    return getattr(parent, name)


def chapter_reads(notebook: Path) -> set[str]:
    """What a chapter reads of params.yaml: from the sections it loads (``data, report = load_sections(params_file,
    "data", "data_report")``) ``section.key`` for each field it reads (``data.seed``), and the bare ``section`` where
    it hands the whole section on (``run_study(report)``) or calls one of its methods (which may read any field);
    and every section a package function it hands ``params_file`` to reads (``helper_sections``)."""
    source = "\n".join(
        "".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code"
    )
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.startswith("%")))
    imported = {
        alias.asname or alias.name: _imported(node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dmlfaces")
        for alias in node.names
    }
    sections: dict[str, str] = {}
    reads, attribute_of = set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not any(
            getattr(argument, "id", "") == PARAMS_FILE_VARIABLE for argument in node.args
        ):
            continue
        if getattr(node.func, "id", "") == "load_sections":
            continue
        function = imported.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            function = getattr(imported.get(node.func.value.id), node.func.attr, None)
        assert inspect.isfunction(function), (
            f"{notebook.name}: {ast.unparse(node)} hands {PARAMS_FILE_VARIABLE} to an unknown reader"
        )
        reads |= helper_sections(function)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "load_sections"
        ):
            target = node.targets[0]
            names = [element.id for element in target.elts] if isinstance(target, ast.Tuple) else [target.id]
            sections.update(zip(names, [argument.value for argument in node.value.args[1:]]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in sections:
            attribute_of.add(id(node.value))
            section = sections[node.value.id]
            fields = {field.name for field in dataclasses.fields(section_schema(section))}
            reads.add(f"{section}.{node.attr}" if node.attr in fields else section)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in sections and isinstance(node.ctx, ast.Load) and id(node) not in attribute_of:
            reads.add(sections[node.id])
    return reads


def declared_params(stage: dict) -> set[str]:
    """The params.yaml keys and sections a stage declares (``params``), interpolates (``${data.dir}``) or depends on
    whole (params.yaml among its ``deps``): a new value of any makes DVC run the stage again."""
    declared = set(SECTION_NAMES) if "params.yaml" in stage.get("deps", []) else set()
    for entry in stage.get("params", []):
        if isinstance(entry, str):
            declared.add(entry)
        elif "params.yaml" in entry:  # - params.yaml: [data.seed, ...]
            declared.update(entry["params.yaml"])
    return declared | set(re.findall(r"\$\{(\w+\.\w+)\}", json.dumps(stage)))


def undeclared_reads(stage: dict, root: Path = ROOT) -> list[str]:
    """What the stage's chapters read from params.yaml (``chapter_reads``) that it neither declares nor
    interpolates, a whole section counting as declared only when declared whole."""
    declared = declared_params(stage)
    reads = set().union(*(chapter_reads(root / path) for path in re.findall(r"dmlfaces notebook (\S+\.ipynb)", stage["cmd"])))
    return sorted(key for key in reads if key not in declared and key.split(".")[0] not in declared)


def test_every_chapter_declares_the_parameters_it_reads():
    """A chapter's stage lists as ``params`` every key it reads from a section it loads (or the whole section), or
    interpolates it (``${data.dir}/IJBS``), so that `dvc repro` reruns the chapter when one of them changes."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    chapters = [name for name, stage in stages.items() if "dmlfaces notebook" in stage.get("cmd", "")]
    assert len(chapters) == 6  # data, embedding, aggregator, verification, attributes reports; the book's pages
    for name in chapters:
        assert undeclared_reads(stages[name]) == [], f"stage {name} reads these from params.yaml but does not list them"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):  # the reader sees what each chapter reads
        assert chapter_reads(notebook) or "load_sections" not in notebook.read_text(), notebook.name
    assert {"aggregator", "aggregator_variants"} <= chapter_reads(ROOT / "notebooks" / "06_results_summary.ipynb")


def test_a_chapter_read_that_its_stage_does_not_declare_is_found(tmp_path):
    notebook = tmp_path / "nb.ipynb"
    source = [
        "%matplotlib inline\n",
        "data, report = load_sections(params_file, 'data', 'attributes_report')\n",
        "x = f(data.dir, seed=data.seed)\n",
        "run_study(report)\n",
        "from dmlfaces import findings\n",
        "seeds = findings.seed_variants(params_file)\n",
    ]
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": source}]}))
    assert chapter_reads(notebook) == {"data.dir", "data.seed", "attributes_report", "aggregator_variants"}
    stage = {
        "cmd": "dmlfaces notebook nb.ipynb out.ipynb",
        "deps": ["${data.dir}/IJBS"],
        "params": ["attributes_report.map_identities"],
    }
    assert undeclared_reads(stage, tmp_path) == ["aggregator_variants", "attributes_report", "data.seed"]
    stage["params"] = ["attributes_report", "aggregator_variants", {"params.yaml": ["data.seed"]}]
    assert undeclared_reads(stage, tmp_path) == []
    assert undeclared_reads({**stage, "params": [], "deps": ["params.yaml"]}, tmp_path) == []  # the whole file
