"""Imports flow one way: base -> data -> models -> train / eval / extraction -> verification -> book helpers -> cli.

A module may import from its own layer or any below it. An import that points back up (a model importing the
trainer for a device helper, the book's text helpers importing torch through a trainer) fails here, naming the
file and line; a new top-level module must be given its layer below.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dmlfaces"
LAYERS = {
    "base": ("__init__", "errors", "io", "params", "numerics", "timing", "devices"),
    "data": ("data",),
    "models": ("models",),
    "compute": ("train", "eval", "features"),
    "verification": ("verify", "stress", "metrics", "reproduction", "stage_params", "provenance"),
    "book": ("findings", "attribute_findings", "data_findings", "figures", "notebook"),
    "cli": ("cli", "__main__"),
}
LEVEL = {name: level for level, names in enumerate(LAYERS.values()) for name in names}
LAYER_NAMES = list(LAYERS)


def imported_modules(path: Path, package: Path = PACKAGE) -> list[tuple[str, int]]:
    """(dmlfaces module, line) of every import in ``path``, at any depth (imports inside functions count).
    Relative imports are resolved, and ``from dmlfaces import findings`` names the module ``dmlfaces.findings``
    (a name that is no module, ``from dmlfaces import __version__``, names the package's ``__init__``)."""
    here = path.relative_to(package.parent).with_suffix("").parts[:-1]  # the package a relative import starts from
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module.split(".") if node.module else ())))
            if module == "dmlfaces" or module.startswith("dmlfaces."):
                found += [(_submodule(module, alias.name, package), node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("dmlfaces.")]
    return found


def _submodule(module: str, name: str, package: Path) -> str:
    """``module.name`` where that is a module or package of ``package``, else ``module`` itself."""
    candidate = package.parent.joinpath(*module.split("."), name)
    if candidate.is_dir() or candidate.with_suffix(".py").is_file():
        return f"{module}.{name}"
    return module if module != "dmlfaces" else "dmlfaces.__init__"


def upward_imports(package: Path) -> list[str]:
    """Every import of ``package``'s modules that points to a higher layer, as 'file:line: a (layer) -> b (layer)'."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        own = path.relative_to(package).with_suffix("").parts[0]
        for module, line in imported_modules(path, package):
            target = module.split(".")[1]
            if LEVEL[target] > LEVEL[own]:
                problems.append(
                    f"{path.relative_to(package.parent)}:{line}: {own} ({LAYER_NAMES[LEVEL[own]]}) imports "
                    f"{module} ({LAYER_NAMES[LEVEL[target]]})"
                )
    return problems


def test_every_top_level_module_has_a_layer() -> None:
    names = {path.relative_to(PACKAGE).with_suffix("").parts[0] for path in PACKAGE.rglob("*.py")}
    assert sorted(names - set(LEVEL)) == [], "give each new module or package a layer in LAYERS"


def test_no_import_points_back_up() -> None:
    assert upward_imports(PACKAGE) == []


def test_an_upward_import_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    package = tmp_path / "dmlfaces"
    (package / "models").mkdir(parents=True)
    (package / "models" / "templates.py").write_text("import math\n\n\ndef f():\n    from dmlfaces.train.distributed import x\n")
    assert upward_imports(package) == [
        "dmlfaces/models/templates.py:5: models (models) imports dmlfaces.train.distributed (compute)"
    ]


def test_package_and_relative_imports_are_resolved(tmp_path: Path) -> None:
    package = tmp_path / "dmlfaces"
    (package / "data").mkdir(parents=True)
    (package / "models").mkdir()
    for name in ("__init__.py", "findings.py", "verify.py", "models/__init__.py", "models/coreset.py"):
        (package / name).write_text("x = 1\n")
    (package / "data" / "faces.py").write_text(
        "from dmlfaces import findings, x\nfrom .. import verify\nfrom ..models.coreset import x\nfrom . import y\n"
    )
    (package / "data" / "__init__.py").write_text("from . import faces\nfrom .faces import y\n")
    assert imported_modules(package / "data" / "faces.py", package) == [
        ("dmlfaces.findings", 1),
        ("dmlfaces.__init__", 1),
        ("dmlfaces.verify", 2),
        ("dmlfaces.models.coreset", 3),
        ("dmlfaces.data", 4),
    ]
    assert imported_modules(package / "data" / "__init__.py", package) == [("dmlfaces.data.faces", 1), ("dmlfaces.data.faces", 2)]
    assert [problem.split(": ", 1)[0] for problem in upward_imports(package)] == [
        "dmlfaces/data/faces.py:1",
        "dmlfaces/data/faces.py:2",
        "dmlfaces/data/faces.py:3",
    ]


def test_a_module_over_400_lines_says_why_in_its_docstring() -> None:
    """Long modules are split by concept; one that stays long says why ("Its length ...") where a reader looks first."""
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > 400 and "Its length" not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{path.relative_to(PACKAGE.parent)}: {lines} lines")
    assert unexplained == []
