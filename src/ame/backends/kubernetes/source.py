"""How a task's pod gets the project's files: its git remote at the current commit, or an archive.

Rendering must stay offline and deterministic, so the choice and the names
are made from what is on disk:

* **git**: the project is in a git work tree with an ``origin`` remote and no
  uncommitted change under the project's directory. The pod clones the remote
  and checks out ``HEAD``'s commit.
* **archive**: otherwise. The project's files (and those of projects its
  templates come from) go in a gzip'd tar whose bytes depend only on the
  files' names and contents; it is named by its SHA-256 in the tracking
  server's artifact store (``mlflow-artifacts:/ame-sources/<sha256>.tar.gz``).
  ``render`` only computes the name; ``apply`` uploads it; the pod downloads
  and checks the hash (``ame.backends.kubernetes.fetch``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from ame.spec.model import Project

SourceMode = Literal["auto", "git", "archive"]
ARCHIVE_PREFIX = "mlflow-artifacts:/ame-sources"
# Never part of a project's source: ame's own state, environments, caches, VCS data.
_SKIP_DIRS = {".ame", ".git", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
              ".ruff_cache", "node_modules", "mlruns"}  # fmt: skip
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class ProjectSource:
    """Where a pod fetches the project from, and the directory of the ame.yml inside it."""

    kind: Literal["git", "archive"]
    url: str
    revision: str
    subdir: str

    @property
    def short(self) -> str:
        """The revision as a label value: 12 hex digits."""
        return self.revision[:12]


def _git(root: Path, *args: str) -> Optional[str]:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_source(project: Project) -> Optional[ProjectSource]:
    """The git source of ``project``, or None when it is not committed to a repo with a remote."""
    root = Path(project.root)
    top = _git(root, "rev-parse", "--show-toplevel")
    url = _git(root, "remote", "get-url", "origin")
    commit = _git(root, "rev-parse", "HEAD")
    if not top or not url or not commit:
        return None
    if _git(root, "status", "--porcelain", "--", ".") != "":
        return None  # uncommitted changes: the commit is not what is on disk
    subdir = os.path.relpath(root.resolve(), Path(top).resolve())
    return ProjectSource("git", url, commit, "" if subdir == "." else subdir)


def _referenced_roots(project: Project) -> list[Path]:
    """The directories of other projects whose templates ``project``'s tasks use."""
    from ame.spec import locate

    roots: dict[Path, None] = {}
    for task in [*project.all_tasks(), *project.templates]:
        ref = task.from_template
        if ref is None or ref.project in (None, project.name):
            continue
        found, _ = locate.find_project(ref.project, project.file, project.template_sources)
        if found is not None:
            roots[found.resolve().parent] = None
    return sorted(roots)


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(_SKIP_SUFFIXES):
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    yield path


def archive_members(project: Project) -> list[tuple[str, Path]]:
    """(name in the archive, file) for the project and the template projects it uses, sorted.

    Each project sits in the archive under its directory's name, so the
    sibling-directory search for templates works in the pod as it does here.
    """
    members: dict[str, Path] = {}
    for root in [Path(project.root).resolve(), *_referenced_roots(project)]:
        for path in _walk(root):
            members[f"{root.name}/{path.relative_to(root).as_posix()}"] = path
    return sorted(members.items())


def build_archive(project: Project) -> bytes:
    """The project's source archive: same files in, same bytes out (no times, owners, order)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in archive_members(project):
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def archive_source(project: Project) -> tuple[ProjectSource, bytes]:
    """The archive source of ``project`` and the archive's bytes."""
    data = build_archive(project)
    digest = hashlib.sha256(data).hexdigest()
    source = ProjectSource(
        "archive", f"{ARCHIVE_PREFIX}/{digest}.tar.gz", digest, Path(project.root).resolve().name
    )
    return source, data


def project_source(project: Project, mode: SourceMode = "auto") -> ProjectSource:
    """The source ``project``'s pods use: git when it can be, else (or when asked) the archive."""
    from ame.backends.kubernetes.errors import KubernetesError

    if mode in ("auto", "git"):
        found = git_source(project)
        if found is not None:
            return found
        if mode == "git":
            raise KubernetesError(
                f"{project.root} is not committed to a git repository with an 'origin' remote "
                "(or has uncommitted changes); use --source archive"
            )
    return archive_source(project)[0]
