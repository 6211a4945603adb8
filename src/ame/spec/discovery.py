"""Finding the ame.yml a command should read, the way git finds its repository."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ame.errors import ProjectNotFoundError

PROJECT_FILE_NAMES = ("ame.yml", "ame.yaml")


def find_project_file(start: Optional[Path] = None) -> Path:
    """Return ``ame.yml`` (else ``ame.yaml``) in ``start`` or the nearest parent.

    Searching upwards lets every command work from any subdirectory of a
    project, as git does; the error names the directory the search began in.
    """
    origin = (start or Path.cwd()).resolve()
    for directory in (origin, *origin.parents):
        for name in PROJECT_FILE_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    raise ProjectNotFoundError(
        f"no ame.yml or ame.yaml in {origin} or any parent directory (use -f FILE)"
    )


def find_project_root(start: Optional[Path] = None) -> Optional[Path]:
    """The directory of the nearest ame.yml, or None when there is none."""
    try:
        return find_project_file(start).parent
    except ProjectNotFoundError:
        return None


def project_file_in_dir(directory: Path) -> Path:
    """The ame.yml (else ame.yaml) directly inside ``directory``, without searching upwards."""
    for name in PROJECT_FILE_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise ProjectNotFoundError(f"no ame.yml or ame.yaml in {directory}")
