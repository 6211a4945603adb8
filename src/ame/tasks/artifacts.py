"""Which files a task run keeps: ``artifacts.paths`` globs and ``saveChangedFiles``.

Changed files are found by comparing a snapshot of the project's files (size
and modification time) taken just before the task starts with one taken after
it ends. That works with or without git, sees untracked outputs, and ignores
ame's own state and the usual tool directories.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

# Directories never walked: ame's store and caches, VCS data, virtualenvs.
SKIP_DIRS = frozenset(
    {
        ".ame",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
    }
)

Snapshot = dict[str, tuple[int, int]]


def snapshot(root: Path) -> Snapshot:
    """Size and mtime (ns) of every regular file under ``root``, keyed by relative POSIX path.

    Only regular files count: a named pipe or a socket a task leaves behind
    cannot be uploaded (opening a pipe with no writer would block ame forever).
    """
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            found[Path(path).relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


def changed_files(root: Path, before: Snapshot) -> list[str]:
    """Files under ``root`` created or modified since ``before`` was taken."""
    after = snapshot(root)
    return sorted(rel for rel, stat in after.items() if before.get(rel) != stat)


@dataclass(frozen=True)
class ArtifactFile:
    """A local file to upload, and the run-artifact directory it goes to (None = root)."""

    local: Path
    artifact_dir: str | None


def glob_paths(root: Path, patterns: list[str]) -> list[ArtifactFile]:
    """Files matched by ``patterns`` (relative globs, ``**`` allowed), keeping their layout."""
    seen: set[Path] = set()
    files: list[ArtifactFile] = []
    for pattern in patterns:
        for match in sorted(root.glob(pattern)):
            candidates = [p for p in match.rglob("*") if p.is_file()] if match.is_dir() else [match]
            for path in candidates:
                if path in seen or not path.is_file():
                    continue
                seen.add(path)
                rel = path.relative_to(root)
                parent = rel.parent.as_posix()
                files.append(ArtifactFile(path, None if parent == "." else parent))
    return files
