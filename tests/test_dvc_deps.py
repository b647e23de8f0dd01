"""dvc.yaml's stage ``deps`` cover everything the stages really read, derived from the code, not kept by hand.

For every stage of the resolved pipeline (``dvc.repo.Repo(...).index.stages``: ``${...}`` and ``foreach`` resolved
by DVC itself) the test derives what its command runs and reads:

* each ``&&``-separated command whose program is a ``[project.scripts]`` entry of pyproject.toml (``dmlfaces``)
  runs the entry module (``dmlfaces.cli``): its module-level imports, the functions ``main`` and the parser builder,
  and the handler its sub-command sets with ``set_defaults(run=...)`` (found with ``ast`` in the entry module, with
  the module-level functions that handler calls and the imports inside them);
* every ``pathlib.Path``-typed argument of that sub-command (from the real parser, so options, defaults and
  positionals parse exactly as the program parses them), other than ``out`` and the stage's outs, is a path the
  command reads; an input that is a notebook (``.ipynb``) is code the command runs: the ``import`` statements of its
  code cells are imported, and paths built in its code cells from its papermill parameters
  (``Path(results_dir) / "features" / "ijbs.npz"``, with the values the command's ``-p`` gives or the
  parameters cell's defaults), from the params.yaml sections it loads (``data_dir = Path(data.dir)`` after
  ``load_sections``) and with the package's string constants (``data_dir / GROUND_TRUTH_FILE``) are read;
* the transitive closure of those imports within the ``dmlfaces`` package, every import anywhere in a module's file
  (lazy ones inside functions too, except ``if TYPE_CHECKING:`` blocks), relative imports resolved,
  ``from pkg import name`` counted as importing ``pkg.name`` when that is a module, and every parent package's
  ``__init__.py`` counted as imported with its submodule.

Every module file and read path must be covered by one of the stage's deps (a directory dep covers everything under
it). ``params.yaml`` is tracked by the stages' ``params``, not by ``deps``, and is not required here. What a module
reads from a directory it is handed (``dataset_summary(data_dir)``) is not followed: such directories are covered
only as far as the paths above name them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import shlex
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "dmlfaces"
PARAMS_FILE = "params.yaml"  # DVC's default params file: tracked through `params`, never a dep
SEPARATORS = {"&&", "||", ";", "|", "&"}


# --- the package's modules and their imports -------------------------------------------------------------------


def package_modules() -> dict[str, Path]:
    """Module name -> source file of every module of the package (packages map to their ``__init__.py``)."""
    modules = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = package_modules()


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def walk_runtime(node: ast.AST, *, into_functions: bool = True) -> Iterator[ast.AST]:
    """``ast.walk`` without ``if TYPE_CHECKING:`` bodies (and, when asked, without function bodies)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if isinstance(current, ast.If) and _is_type_checking(current.test) and child in current.body:
                continue
            if not into_functions and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            stack.append(child)


def _package_of(module: str) -> str:
    return module if MODULES.get(module, Path()).name == "__init__.py" else module.rpartition(".")[0]


def imported_modules(node: ast.AST, importer: str | None, *, into_functions: bool = True) -> list[tuple[str, int]]:
    """(package module, line) of every import under ``node``; ``importer`` resolves relative imports."""
    found = []
    for item in walk_runtime(node, into_functions=into_functions):
        if isinstance(item, ast.Import):
            found += [(alias.name, item.lineno) for alias in item.names]
        elif isinstance(item, ast.ImportFrom):
            base = item.module or ""
            if item.level:
                assert importer is not None, "a relative import outside the package"
                package = _package_of(importer).split(".")
                anchor = package[: len(package) - (item.level - 1)]
                base = ".".join(anchor + ([item.module] if item.module else []))
            found.append((base, item.lineno))
            found += [(f"{base}.{alias.name}", item.lineno) for alias in item.names if f"{base}.{alias.name}" in MODULES]
    return [(name, line) for name, line in found if name in MODULES or name.split(".")[0] == PACKAGE and _nearest(name)]


def _nearest(name: str) -> str | None:
    """``import dmlfaces.x.y`` of a name that is not a module (cannot happen, but never drop a package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@dataclass
class Closure:
    """Modules reached, each with the shortest chain of imports that reached it."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    dispatchers: set[str] = field(default_factory=set)  # entry modules: what they import is added per sub-command

    def add(self, module: str, chain: list[str]) -> None:
        module = module if module in MODULES else _nearest(module)
        queue = [(module, chain)]
        while queue:
            current, how = queue.pop(0)
            if current in self.chains:
                continue
            self.chains[current] = how
            parent = current.rpartition(".")[0]
            while parent:  # importing a submodule runs every parent package's __init__.py first
                if parent not in self.chains:
                    queue.append((parent, [*how, f"{parent} (parent package of {current})"]))
                parent = parent.rpartition(".")[0]
            source = MODULES[current]
            if current in self.dispatchers:
                continue
            for name, line in imported_modules(ast.parse(source.read_text(), str(source)), current):
                target = name if name in MODULES else _nearest(name)
                queue.append((target, [*how, f"{target} ({rel(source)}:{line})"]))


# --- the entry module: sub-command -> handler -> imports -----------------------------------------------------------


def console_scripts() -> dict[str, str]:
    """Program name -> ``module:function`` from pyproject.toml's ``[project.scripts]``."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("scripts", {})


@dataclass
class EntryModule:
    """What ``ast`` finds in an entry module that dispatches sub-commands with ``set_defaults(run=handler)``."""

    module: str
    tree: ast.Module
    functions: dict[str, ast.FunctionDef]
    handlers: dict[str, str]  # sub-command -> handler function
    builder: str  # the function that builds the argparse parser

    @classmethod
    def parse(cls, module: str) -> EntryModule:
        source = MODULES[module]
        tree = ast.parse(source.read_text(), str(source))
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        handlers: dict[str, str] = {}
        builder = ""
        for name, function in functions.items():
            parsers: dict[str, list[str]] = {}  # variable -> the sub-command names it holds
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_subparsers":
                    builder = name
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Attribute)
                    and node.value.func.attr == "add_parser"
                    and node.value.args
                    and isinstance(node.value.args[0], ast.Constant)
                ):
                    names = [node.value.args[0].value]
                    for keyword in node.value.keywords:
                        if keyword.arg == "aliases":
                            names += list(ast.literal_eval(keyword.value))
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            parsers[target.id] = names
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "set_defaults"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in parsers
                ):
                    for keyword in node.keywords:
                        if keyword.arg == "run" and isinstance(keyword.value, ast.Name):
                            for command in parsers[node.func.value.id]:
                                handlers[command] = keyword.value.id
        assert builder, f"{module}: no function calls add_subparsers"
        assert handlers, f"{module}: no sub-command sets a run= handler"
        return cls(module, tree, functions, handlers, builder)

    def local_calls(self, function: str, handler: str | None = None) -> list[str]:
        """``function`` and the module-level functions it calls or refers to, transitively; the parser builder
        refers to every handler (``set_defaults(run=...)``) but runs none, so handlers other than ``handler``
        are not followed."""
        others = set(self.handlers.values()) - {handler}
        seen, queue = [], [function]
        while queue:
            current = queue.pop(0)
            if current in seen:
                continue
            seen.append(current)
            for node in walk_runtime(self.functions[current]):
                if isinstance(node, ast.Name) and node.id in self.functions and node.id not in seen and node.id not in others:
                    queue.append(node.id)
        return seen

    def imports_for(self, command: str, closure: Closure, how: str, main: str = "main") -> None:
        """Add to ``closure`` what running sub-command ``command`` through function ``main`` imports."""
        entry = rel(MODULES[self.module])
        closure.dispatchers.add(self.module)
        closure.add(self.module, [f"{how} runs {self.module}"])
        for name, line in imported_modules(self.tree, self.module, into_functions=False):
            closure.add(name, [f"{how} runs {self.module}", f"{name} ({entry}:{line}, module level)"])
        handler = self.handlers[command]
        run = [*self.local_calls(main, handler), *self.local_calls(self.builder, handler), *self.local_calls(handler, handler)]
        for function in dict.fromkeys(run):
            step = f"{self.module}.{function}" + (f" (the handler of {command!r})" if function == handler else "")
            for name, line in imported_modules(self.functions[function], self.module):
                closure.add(name, [f"{how} runs {step}", f"{name} ({entry}:{line})"])

    def parser(self) -> argparse.ArgumentParser:
        return getattr(importlib.import_module(self.module), self.builder)()


def path_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> list[tuple[str, str]]:
    """(argument, value) of every Path-typed argument of the sub-command ``argv`` selects, defaults included."""
    namespace = parser.parse_args(argv)
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    subparser = subparsers.choices[argv[0]]
    found = []
    for action in subparser._actions:
        if action.type is not Path:
            continue
        values = getattr(namespace, action.dest, None)
        for value in values if isinstance(values, list) else [values]:
            if value is not None:
                label = "/".join(action.option_strings) or action.dest
                found.append((label if action.option_strings else f"{action.dest} (positional)", Path(value).as_posix()))
    return found


# --- notebooks: imports and parameter-built paths ----------------------------------------------------------------


def code_cells(notebook: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(cell number, source without IPython magics, tags) of every code cell."""
    cells = json.loads(notebook.read_text())["cells"]
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
        yield number, "\n".join(lines), cell.get("metadata", {}).get("tags", [])


def papermill_value(text: str) -> object:
    """A ``-p`` value typed as papermill types it (numbers, booleans, None; anything else is a string)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


@dataclass(frozen=True)
class Built:
    """A path built from a parameter; ``partial`` when a part of it is not a constant (the prefix is kept)."""

    path: PurePosixPath
    partial: bool = False
    depth: int = 0  # constant parts joined onto the parameter's value


def _evaluate(node: ast.expr, env: dict[str, Built], constants: dict[str, str] | None = None) -> Built | None:
    """The path ``node`` builds from ``env``'s paths and string literals or ``constants`` (names imported from the
    package that hold strings: ``data_dir / GROUND_TRUTH_FILE``)."""
    constants = constants or {}
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):  # a loaded section's key: data.dir
        return env.get(f"{node.value.id}.{node.attr}")
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)) and len(node.args) == 1:
        name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        if name in {"Path", "PurePath", "PurePosixPath", "str", "fspath"}:
            return _evaluate(node.args[0], env, constants)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left = _evaluate(node.left, env, constants)
        if left is None:
            return None
        if left.partial:
            return left
        if isinstance(node.right, ast.Constant) and isinstance(node.right.value, str):
            return Built(left.path / node.right.value, False, left.depth + 1)
        if isinstance(node.right, ast.Name) and node.right.id in constants:
            return Built(left.path / constants[node.right.id], False, left.depth + 1)
        return Built(left.path, True, left.depth)
    return None


def string_constants(tree: ast.Module) -> dict[str, str]:
    """Names a notebook imports from the package that hold strings (``GROUND_TRUTH_FILE``), with their values."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(f"{PACKAGE}."):
            module = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if isinstance(value, str):
                    found[alias.asname or alias.name] = value
    return found


def loaded_sections(statement: ast.Assign, parameters: dict[str, object]) -> dict[str, Built]:
    """``data, report = load_sections(params_file, "data", "data_report")``: each string value of the sections
    named, read from the parameters file, bound as ``data.dir`` -> its path (the chapter's paths start there)."""
    call = statement.value
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "load_sections"
        and call.args
        and isinstance(call.args[0], ast.Name)
        and isinstance(parameters.get(call.args[0].id), str)
    ):
        return {}
    target = statement.targets[0]
    names = [element.id for element in target.elts] if isinstance(target, ast.Tuple) else [target.id]
    sections = [argument.value for argument in call.args[1:]]
    params = yaml.safe_load((REPO / str(parameters[call.args[0].id])).read_text())
    return {
        f"{name}.{key}": Built(PurePosixPath(value))
        for name, section in zip(names, sections)
        for key, value in (params.get(section) or {}).items()
        if isinstance(value, str) and value
    }


def notebook_reads(notebook: Path, given: dict[str, object]) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """(module, cell) imported by the notebook's code cells and (path, how) built there from its parameters."""
    imports, paths = [], []
    parameters: dict[str, object] = {}
    cells = list(code_cells(notebook))
    for _, source, tags in cells:
        if "parameters" in tags:
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        parameters[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    parameters.update(given)
    constants: dict[str, str] = {}
    env = {name: Built(PurePosixPath(value)) for name, value in parameters.items() if isinstance(value, str) and value}
    for name, value in parameters.items():  # a parameter naming an existing file is read whole (params_file)
        if isinstance(value, str) and value and (REPO / value).is_file():
            paths.append((PurePosixPath(value).as_posix(), f"parameter {name}={value!r} names a file"))
    for number, source, tags in cells:
        tree = ast.parse(source)
        imports += [(name, number) for name, _ in imported_modules(tree, None)]
        constants.update(string_constants(tree))
        if "parameters" in tags:
            continue  # its values, or the command's -p values that papermill injects after it, are in env already
        for statement in tree.body:  # assignments in order, so that later cells see `data_dir = Path(data_dir)`
            inner = {id(node.left) for node in walk_runtime(statement) if isinstance(node, ast.BinOp)}
            for node in walk_runtime(statement):
                if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and id(node) not in inner:
                    built = _evaluate(node, env, constants)
                    if built is not None and built.depth > 0:
                        what = "a path starting with" if built.partial else "path"
                        paths.append((built.path.as_posix(), f"{what} {ast.unparse(node)!r} (cell {number})"))
            if isinstance(statement, ast.Assign):
                bound = {}  # name -> what the right-hand side builds, evaluated before any name is rebound
                for target in statement.targets:
                    pairs = (
                        zip(target.elts, statement.value.elts)
                        if isinstance(target, ast.Tuple) and isinstance(statement.value, ast.Tuple)
                        else [(target, statement.value)]
                    )
                    for name, value in pairs:
                        if isinstance(name, ast.Name):
                            bound[name.id] = _evaluate(value, env, constants)
                rebound = {node.id for target in statement.targets for node in ast.walk(target) if isinstance(node, ast.Name)}
                env = {key: value for key, value in env.items() if key.partition(".")[0] not in rebound}
                env.update(loaded_sections(statement, parameters))
                env.update({name: built for name, built in bound.items() if built is not None and not built.partial})
    return imports, paths


# --- per stage ---------------------------------------------------------------------------------------------------


def commands(cmd: str) -> Iterator[list[str]]:
    """The argv of every command of a stage's shell command line."""
    lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    argv: list[str] = []
    for token in lexer:
        if token in SEPARATORS:
            if argv:
                yield argv
            argv = []
        else:
            argv.append(token)
    if argv:
        yield argv


def launched(argv: list[str]) -> list[str]:
    """The command a launcher runs: ``torchrun [options] -m dmlfaces ARGS`` runs ``dmlfaces ARGS`` in each process."""
    if Path(argv[0]).name != "torchrun" or "-m" not in argv[:-1]:
        return argv
    module = argv.index("-m") + 1
    return [argv[module], *argv[module + 1 :]]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass
class Requirement:
    path: str
    why: str


@dataclass
class StageDeps:
    name: str
    cmd: str
    deps: list[str]
    params: list[str]
    outs: list[str]

    def covers(self, path: str) -> bool:
        return any(_under(path, dep) for dep in self.deps)

    def writes(self, path: str) -> bool:
        """The path is an out, inside one, or a directory holding one."""
        return any(_under(path, out) or _under(out, path) for out in self.outs)


def resolved_stages() -> list[StageDeps]:
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    repo = Repo(str(REPO))
    try:
        stages = []
        for stage in repo.index.stages:
            if not isinstance(stage, PipelineStage):
                continue  # data.dvc and other .dvc files: no command
            stages.append(
                StageDeps(
                    stage.addressing,
                    stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd),
                    [PurePosixPath(dep.def_path).as_posix() for dep in stage.deps if not isinstance(dep, ParamsDependency)],
                    [PurePosixPath(dep.def_path).as_posix() for dep in stage.deps if isinstance(dep, ParamsDependency)],
                    [PurePosixPath(out.def_path).as_posix() for out in stage.outs],
                )
            )
        return stages
    finally:
        repo.close()


def requirements(stage: StageDeps) -> tuple[list[Requirement], list[str]]:
    """What the stage's commands run and read, and the commands that could not be analysed."""
    scripts = console_scripts()
    closure = Closure()
    needed: list[Requirement] = []
    unknown = []
    for argv in commands(stage.cmd):
        argv = launched(argv)
        program = Path(argv[0]).name
        module, main, args = None, "main", argv[1:]
        if program in scripts:
            module, _, main = scripts[program].partition(":")
        if module is None:
            unknown.append(" ".join(argv))
            continue
        entry = EntryModule.parse(module)
        how = f"`{program} {args[0]}`"
        assert args and args[0] in entry.handlers, f"{stage.name}: {how}: no such sub-command of {module}"
        entry.imports_for(args[0], closure, how, main)
        for argument, value in path_arguments(entry.parser(), args):
            if argument.startswith("out") or argument == "--out" or stage.writes(value):
                continue
            needed.append(Requirement(value, f"{how} reads it ({argument} {value})"))
            if value.endswith(".ipynb") and (REPO / value).is_file():
                given = {}
                for i, token in enumerate(args):
                    if token in {"-p", "--parameter"} and i + 2 < len(args):
                        given[args[i + 1]] = papermill_value(args[i + 2])
                imports, paths = notebook_reads(REPO / value, given)
                for name, cell in imports:
                    closure.add(name, [f"{how} runs {value}", f"{name} (cell {cell})"])
                needed += [
                    Requirement(path, f"{how} runs {value}, which reads it: {why}")
                    for path, why in paths
                    if not stage.writes(path)
                ]
    for module, chain in closure.chains.items():
        needed.append(Requirement(rel(MODULES[module]), "imported: " + " -> ".join(chain)))
    return needed, unknown


def missing(stage: StageDeps) -> list[Requirement]:
    needed, _ = requirements(stage)
    params = set(stage.params) | {PARAMS_FILE}
    seen, result = set(), []
    for requirement in needed:
        if requirement.path in params or stage.covers(requirement.path) or requirement.path in seen:
            continue
        seen.add(requirement.path)
        result.append(requirement)
    return result


STAGES = resolved_stages()


# --- the tests ---------------------------------------------------------------------------------------------------


def test_every_stage_lists_what_it_imports_and_reads() -> None:
    report = []
    for stage in STAGES:
        gaps = missing(stage)
        if gaps:
            report.append(f"stage {stage.name} does not depend on:")
            report += [f"  - {gap.path}: {gap.why}" for gap in gaps]
    assert not report, "dvc.yaml misses dependencies; `dvc repro` would keep stale results:\n" + "\n".join(report)


def test_every_dmlfaces_stage_is_analysed() -> None:
    """Only commands outside the package (jupyter-book) are left out, so a new stage cannot slip past the check."""
    scripts = set(console_scripts())
    for stage in STAGES:
        _, unknown = requirements(stage)
        assert not [argv for argv in unknown if argv.split()[0] in scripts], stage.name
    assert any(stage.cmd.startswith(tuple(scripts)) for stage in STAGES)


def test_subcommand_handlers_are_derived_from_the_parser() -> None:
    """The ast-derived sub-command -> handler map agrees with the parser the program really builds."""
    for program, target in console_scripts().items():
        entry = EntryModule.parse(target.partition(":")[0])
        parser = entry.parser()
        subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        assert set(entry.handlers) == set(subparsers.choices), program
        for command, handler in entry.handlers.items():
            assert subparsers.choices[command].get_default("run").__name__ == handler, (program, command)


def test_the_closure_follows_lazy_relative_and_submodule_imports() -> None:
    """The import analysis itself, on small sources: what it must count and what it must not."""
    tree = ast.parse(
        "import json\n"
        "from typing import TYPE_CHECKING\n"
        "from dmlfaces.data import ijb\n"
        "if TYPE_CHECKING:\n"
        "    from dmlfaces import figures\n"
        "def f():\n"
        "    from .eval.roc import roc_curve_points\n"
        "    import dmlfaces.models.templates\n"
    )
    names = {name for name, _ in imported_modules(tree, "dmlfaces.verify")}
    assert names == {"dmlfaces.data", "dmlfaces.data.ijb", "dmlfaces.eval.roc", "dmlfaces.models.templates"}
    closure = Closure()
    closure.add("dmlfaces.eval.roc", ["test"])
    assert {"dmlfaces", "dmlfaces.eval", "dmlfaces.eval.roc"} <= set(closure.chains)


def test_notebook_paths_are_built_from_parameters(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ['data_dir = "data"\n', 'results_dir = "results"']},
        {
            "cell_type": "code",
            "metadata": {},
            "source": [
                "%matplotlib inline\n",
                "from dmlfaces.features import read_features\n",
                "data_dir, results_dir = Path(data_dir), Path(results_dir)\n",
                "figures = results_dir / 'figures' / 'nb'\n",
                "crops = read_features(results_dir / 'features' / 'ijbs.npz')\n",
                "h = [(results_dir / 'aggregator' / name / 'history.json') for name in names]\n",
                "fig.savefig(figures / 'a.png')\n",
                "summary(data_dir)\n",
            ],
        },
    ]
    notebook.write_text(json.dumps({"cells": cells}))
    imports, paths = notebook_reads(notebook, {"data_dir": "elsewhere"})
    assert {name for name, _ in imports} == {"dmlfaces.features"}
    assert {path for path, _ in paths} == {
        "results/figures/nb",
        "results/features/ijbs.npz",
        "results/aggregator",
        "results/figures/nb/a.png",
    }


def test_notebook_paths_start_at_the_sections_it_loads(tmp_path: Path) -> None:
    """``data_dir = Path(data.dir)`` after ``load_sections``: paths under the data set's directory of params.yaml,
    joined with literals or the package's string constants; a rebound name no longer holds the section."""
    params = tmp_path / "params.yaml"
    params.write_text("data: {dir: somewhere/faces, preset: tiny, seed: 0}\n")
    notebook = tmp_path / "nb.ipynb"
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": [f"params_file = {str(params)!r}"]},
        {
            "cell_type": "code",
            "metadata": {},
            "source": [
                "(data,) = load_sections(params_file, 'data')\n",
                "data_dir = Path(data.dir)\n",
                "protocol = read_ijb(data_dir / 'IJBS')\n",
                "train = read_folders(Path(data.dir) / 'train')\n",
                "from dmlfaces.data.ground_truth import GROUND_TRUTH_FILE\n",
                "truth = read_truth(data_dir / GROUND_TRUTH_FILE)\n",
                "data = something_else()\n",
                "stale = Path(data.dir) / 'not read'\n",
                "(data,) = load_sections(params_file, 'data')\n",
                "data = Path(data.dir)\n",
                "clips = read_clips(data / 'train_clips')\n",
            ],
        },
    ]
    notebook.write_text(json.dumps({"cells": cells}))
    _, paths = notebook_reads(notebook, {})
    assert {path for path, _ in paths} == {
        str(params),
        "somewhere/faces/IJBS",
        "somewhere/faces/train",
        "somewhere/faces/ground_truth.csv",
        "somewhere/faces/train_clips",
    }


def test_a_stage_missing_inputs_and_modules_is_reported_with_the_import_chain() -> None:
    """A made-up stage that lists none of what `dmlfaces extract` reads or imports: every gap named, with why."""
    stage = StageDeps(
        "made_up",
        "dmlfaces extract --backbone results/embedding/backbone.pt --ijb data/IJBS --out x.npz",
        deps=["src/dmlfaces/models"],
        params=[],
        outs=["x.npz"],
    )
    gaps = {gap.path: gap.why for gap in missing(stage)}
    assert "results/embedding/backbone.pt" in gaps and "--backbone" in gaps["results/embedding/backbone.pt"]
    assert "data/IJBS" in gaps and "x.npz" not in gaps
    assert (
        "src/dmlfaces/features.py" in gaps
        and "dmlfaces.cli._extract (the handler of 'extract')" in gaps["src/dmlfaces/features.py"]
    )
    assert "src/dmlfaces/data/ijb.py" in gaps and "src/dmlfaces/data/align.py" in gaps
    assert "src/dmlfaces/data/__init__.py" in gaps and not any(path.startswith("src/dmlfaces/models/") for path in gaps)
    assert (
        "src/dmlfaces/figures/__init__.py" not in gaps and "src/dmlfaces/metrics.py" not in gaps
    )  # imported by no handler `extract` runs


def test_commands_split_on_shell_operators() -> None:
    assert list(commands("a x && b 'y z' && c")) == [["a", "x"], ["b", "y z"], ["c"]]


def test_a_torchrun_command_is_analysed_as_the_command_it_launches() -> None:
    argv = "torchrun --standalone --nproc_per_node 2 -m dmlfaces extract --dlib --out x.npz".split()
    assert launched(argv) == ["dmlfaces", "extract", "--dlib", "--out", "x.npz"]
    assert launched(["dmlfaces", "extract"]) == ["dmlfaces", "extract"]
    # The pipeline's dlib stage runs under torchrun: its reads and imports are checked like any other stage's.
    stage = next(stage for stage in resolved_stages() if stage.name == "extract_celeba_dlib")
    needed, unknown = requirements(stage)
    assert not unknown and "src/dmlfaces/models/dlib_embedder.py" in {requirement.path for requirement in needed}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
