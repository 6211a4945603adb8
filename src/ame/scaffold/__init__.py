"""``ame init``: write a golden-path project that trains, validates and serves at once.

The files live in ``template/`` as real, lint-clean files; ``$name``
placeholders (``string.Template``) are filled in when they are written.
"""

from __future__ import annotations

import os
import string
from importlib import resources
from pathlib import Path

from ame.errors import AmeError

# Files whose text has placeholders; everything else is copied byte for byte.
_TEMPLATED = {"ame.yml", "requirements.txt", "README.md"}
# Stored without their leading dot so packaging tools never skip them.
_RENAMES = {"gitignore": ".gitignore"}


class ScaffoldError(AmeError):
    """The target directory cannot take a new project."""


def _identifier(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in text.strip()).strip("_").lower()
    return cleaned or "project"


def scaffold_values(directory: Path, project: str | None = None) -> dict[str, str]:
    """The placeholder values for a project written to ``directory``."""
    from importlib.metadata import version

    name = _identifier(project or directory.resolve().name)
    return {"project": name, "model": f"{name}_model", "mlflow_version": version("mlflow")}


def init_project(directory: Path, project: str | None = None, *, force: bool = False) -> list[Path]:
    """Write the golden-path project into ``directory``; return the files written.

    Refuses a directory that already holds an ame.yml (or any of the files it
    would write) unless ``force``, so an existing project is never overwritten.
    """
    directory = directory.resolve()
    values = scaffold_values(directory, project)
    root = resources.files("ame.scaffold") / "template"
    plan: list[tuple[Path, bytes]] = []

    def walk(node: resources.abc.Traversable, rel: Path) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name == "__pycache__":
                continue
            target_rel = rel / _RENAMES.get(child.name, child.name)
            if child.is_dir():
                walk(child, target_rel)
                continue
            data = child.read_bytes()
            if child.name in _TEMPLATED:
                data = string.Template(data.decode()).substitute(values).encode()
            plan.append((directory / target_rel, data))

    walk(root, Path())
    clashes = [path for path, _ in plan if path.exists()]
    if clashes and not force:
        shown = ", ".join(str(p.relative_to(directory)) for p in clashes[:3])
        raise ScaffoldError(f"{directory} already has {shown}; use --force to overwrite")
    for path, data in plan:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return [path for path, _ in plan]
