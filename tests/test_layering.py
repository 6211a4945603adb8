"""The layer table of docs/architecture.md, held to the code.

Every module under ``src/ame`` is parsed (``ast``, never imported) and each of
its imports checked: module-level, function-level (the lazy imports that keep
``import ame`` cheap) and ``TYPE_CHECKING`` ones alike, since a lazy import
reaching up is still a layer reaching up. A module may import its own unit and
the units of lower ranks, never a unit of its own rank or above; a module in no
unit fails too, so a new package has to be placed in the table first.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "ame"

# Rank -> units, bottom first: the table of docs/architecture.md (and DESIGN.md's).
LAYERS: list[tuple[str, ...]] = [
    ("ame", "ame.errors", "ame._system"),
    ("ame._lazy", "ame._logging", "ame._owner", "ame.boundedio", "ame.scaffold"),
    ("ame.spec",),
    ("ame.secrets",),
    ("ame.registry",),
    ("ame.packaging", "ame.llm"),
    ("ame.tasks",),
    ("ame.monitoring",),
    ("ame.serving",),
    ("ame.batch",),
    ("ame.backends",),
    ("ame.lifecycle", "ame.reconcile", "ame.batch_section"),
    ("ame.schedule",),
    ("ame.ui",),
    ("ame.cli",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

# Pairs the ranks allow but the design rules out: the inference server runs
# where no task runner is installed (a serving image), and what both need
# (process trees, RSS, byte sizes) lives in ``ame._system``.
FORBIDDEN = {("ame.serving", "ame.tasks")}

# Modules that are one unit with another: ``reconcile`` ends what an interrupted
# lifecycle left (pending versions, runs still RUNNING) and reads the lifecycle's
# tags, while the lifecycle calls it before it starts; one idea in two files.
SAME_UNIT = {"ame.reconcile": "ame.lifecycle"}

# The bottom of the table imports nothing of ame's (``ame`` itself only names the version).
NO_AME_IMPORTS = ("ame.errors", "ame._system", "ame")


def module_name(path: Path) -> str:
    """``src/ame/tasks/runner.py`` -> ``ame.tasks.runner``; ``__init__`` is its package."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    """The table's unit a module belongs to: the longest listed prefix of its dotted name."""
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        candidate = ".".join(parts[:end])
        if candidate in RANK:
            return SAME_UNIT.get(candidate, candidate)
    return "ame" if module == "ame" else None  # ``ame`` is its ``__init__`` alone


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every module ``source`` imports, with the line, wherever in the file it sits.

    ``from ame import x`` names the module ``ame.x`` when that is a module or
    package, else the package ``ame`` itself (``from ame import __version__``);
    relative imports are resolved against ``module``.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if _is_module(sub) else target), node.lineno


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    return (SRC / relative).with_suffix(".py").is_file() or (
        SRC / relative / "__init__.py"
    ).is_file()


def check(module: str, source: str, *, is_package: bool = False, where: str = "") -> list[str]:
    """One line per import of ``module`` against the table: ``where:line: why``."""
    where = where or module
    here = unit_of(module)
    if here is None:
        return [f"{where}: {module} is in no layer of docs/architecture.md"]
    found: list[str] = []
    seen: set[tuple[str, int]] = set()
    for target, line in imported_modules(source, module, is_package):
        if (target != "ame" and not target.startswith("ame.")) or (target, line) in seen:
            continue
        seen.add((target, line))
        there = unit_of(target)
        if there is None:
            found.append(f"{where}:{line}: {module} imports {target}, which is in no layer")
        elif there == here:
            continue
        elif here in NO_AME_IMPORTS and there != "ame":
            found.append(f"{where}:{line}: {here} imports {there} (it imports nothing of ame)")
        elif RANK[there] >= RANK[here]:
            found.append(
                f"{where}:{line}: {here} (layer {RANK[here]}) imports {there} "
                f"(layer {RANK[there]}): only lower layers may be imported"
            )
        elif (here, there) in FORBIDDEN:
            found.append(f"{where}:{line}: {here} must not import {there}")
    return found


def test_every_import_follows_the_layer_table() -> None:
    found: list[str] = []
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 100, "src/ame was not found"
    for path in paths:
        found += check(
            module_name(path),
            path.read_text(encoding="utf-8"),
            is_package=path.name == "__init__.py",
            where=str(path.relative_to(SRC.parent)),
        )
    assert not found, "imports against docs/architecture.md:\n" + "\n".join(found)


def test_the_table_is_the_documented_one() -> None:
    """docs/architecture.md names every unit of the table, bottom first, in the same order."""
    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    positions = []
    for units in LAYERS:
        for unit in units:
            path = unit.replace(".", "/")
            # A package is written ``ame/x/``, a module ``ame/x.py`` (``ame`` is its __init__).
            spellings = ["`ame/__init__.py`"] if unit == "ame" else [f"`{path}/`", f"`{path}.py`"]
            found = [doc.index(s) for s in spellings if s in doc]
            assert found, f"docs/architecture.md does not list {' or '.join(spellings)}"
            positions.append(found[0])
    assert positions == sorted(positions), "docs/architecture.md lists the layers in another order"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "ame.serving.probe",
            "from ame.tasks.runner import run_task\n",
            "ame.serving must not import ame.tasks",  # allowed by rank, not by rule
        ),
        ("ame.serving.probe", "def f():\n    from ame.cli import main\n", "imports ame.cli"),
        (
            "ame.registry.probe",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ame.llm.model\n",
            "ame.registry (layer 4) imports ame.llm (layer 5)",
        ),
        ("ame.llm.probe", "from .. import packaging\n", "ame.llm (layer 5) imports ame.packaging"),
        ("ame._system", "from ame.errors import AmeError\n", "imports nothing of ame"),
        ("ame.newthing", "import os\n", "in no layer"),
    ],
)
def test_a_reaching_import_is_reported(module: str, source: str, expected: str) -> None:
    """The checker itself: upward imports, lazy, type-only or relative, and unplaced modules."""
    found = check(module, source)
    assert found and all(expected in line for line in found[:1]), found


def test_downward_and_stdlib_imports_pass() -> None:
    source = "import os\nfrom ame._system import tree_rss\nfrom ame.registry import Store\n"
    assert check("ame.serving.probe", source) == []
    assert check("ame.tasks", "from ame.tasks.runner import run_task\n", is_package=True) == []
