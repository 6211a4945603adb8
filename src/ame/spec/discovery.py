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
            if _present(candidate):
                return check_project_file(candidate)
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
        if _present(candidate):
            return check_project_file(candidate)
    raise ProjectNotFoundError(f"no ame.yml or ame.yaml in {directory}")


def _present(path: Path) -> bool:
    """Whether something (even a dangling symlink) has this name."""
    return path.is_symlink() or path.exists()


def check_project_file(path: Path) -> Path:
    """``path`` if it is a regular file (or a link to one); else say what it is.

    A directory, fifo or dangling symlink called ame.yml is the user's mistake
    to hear about, not a reason to say there is no ame.yml or to search on.
    """
    if path.is_file():
        return path
    from ame.boundedio import describe_kind

    kind = describe_kind(path)
    if kind == "missing":
        raise ProjectNotFoundError(f"{path}: no such file")
    raise ProjectNotFoundError(f"{path} is {kind}, not a regular file (ame.yml must be a file)")
