"""What of a project travels to the cluster as a Ray job's ``working_dir``.

ame builds the package itself rather than handing Ray the directory, so that
what is left out is decided here, listed, and checked: Ray's own packaging
also honours ``.gitignore``, which would silently drop a dataset file a team
keeps out of git. Left out are ``.ame/`` (the embedded store, caches, logs),
``.git``, every virtual environment (a directory holding ``pyvenv.cfg``, or
``__pypackages__``), ``__pycache__``, and any file larger than the limit
(``AME_RAY_MAX_FILE_SIZE``, default 100M): big files belong in a dataset's
storage, not in every job's upload. A dataset the task declares with a
``path:`` that would be left out refuses the run instead of failing on the node.

The zip is deterministic (sorted names, fixed timestamps), and its name is the
hash of its bytes, so an unchanged project is uploaded once and reused.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ame.backends.ray.errors import WorkdirError

ENV_MAX_FILE_SIZE = "AME_RAY_MAX_FILE_SIZE"
DEFAULT_MAX_FILE_SIZE = "100M"
SKIPPED_DIRS = frozenset(
    {".ame", ".git", "__pycache__", "__pypackages__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
)
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Workdir:
    """A built working_dir package: its bytes, its content-addressed URI and what it left out."""

    uri: str
    data: bytes
    files: int
    left_out: list[tuple[str, int]] = field(default_factory=list)  # (relative path, bytes)
    skipped_dirs: list[str] = field(default_factory=list)


def max_file_size(env: Optional[Mapping[str, str]] = None) -> int:
    """The per-file limit in bytes: ``AME_RAY_MAX_FILE_SIZE`` (``20M``, ``1Gi``...) or 100M."""
    from ame.spec.units import parse_bytes

    env = os.environ if env is None else env
    text = env.get(ENV_MAX_FILE_SIZE, "").strip() or DEFAULT_MAX_FILE_SIZE
    try:
        return parse_bytes(text)
    except (ValueError, TypeError) as exc:
        raise WorkdirError(f"{ENV_MAX_FILE_SIZE}={text!r} is not a size ({exc})") from None


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _walk(root: Path) -> Iterable[tuple[str, Path, Optional[str]]]:
    """``(relative path, path, None)`` per file; ``(relative dir, path, "dir")`` per skipped dir."""
    for current, dirs, files in os.walk(root):
        here = Path(current)
        kept = []
        for name in sorted(dirs):
            sub = here / name
            if name in SKIPPED_DIRS or _is_venv(sub) or sub.is_symlink():
                yield sub.relative_to(root).as_posix(), sub, "dir"
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            yield path.relative_to(root).as_posix(), path, None


def build_workdir(root: Path, limit: int) -> Workdir:
    """Zip ``root`` as the job's working_dir, leaving out what the module docstring lists."""
    buffer = io.BytesIO()
    left_out: list[tuple[str, int]] = []
    skipped: list[str] = []
    count = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel, path, kind in _walk(root):
            if kind == "dir":
                skipped.append(rel)
                continue
            try:
                info = path.stat()
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if info.st_size > limit:
                left_out.append((rel, info.st_size))
                continue
            entry = zipfile.ZipInfo(rel, date_time=_EPOCH)
            entry.external_attr = (stat.S_IMODE(info.st_mode) | stat.S_IFREG) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as handle:
                zf.writestr(entry, handle.read())
            count += 1
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:32]
    return Workdir(f"gcs://_ame_pkg_{digest}.zip", data, count, left_out, skipped)


def check_paths(root: Path, workdir: Workdir, needed: Mapping[str, Path], limit: int) -> None:
    """Refuse the run when a declared dataset path would not reach the node.

    ``needed`` maps a dataset's name to its resolved path. A path outside the
    task's directory, inside a skipped directory, or holding a file over the
    limit would be missing on the node, so the task would fail there, later and
    less clearly.
    """
    from ame.tasks.resources import format_bytes

    big = dict(workdir.left_out)
    for name, path in needed.items():
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            raise WorkdirError(
                f"dataset '{name}' is at {path}, outside the task's directory {root}, "
                "so it would not reach the Ray node; move it under the project "
                "or make it a dataset produced by a task"
            ) from None
        for skipped in workdir.skipped_dirs:
            if rel == skipped or rel.startswith(skipped + "/"):
                raise WorkdirError(
                    f"dataset '{name}' is at {rel}, inside {skipped}/, which is never "
                    "sent to a Ray node; move the data elsewhere in the project"
                )
        too_big = [
            (r, s) for r, s in big.items() if r == rel or r.startswith(rel.rstrip("/") + "/")
        ]
        if too_big:
            first, size = too_big[0]
            more = f" and {len(too_big) - 1} more" if len(too_big) > 1 else ""
            raise WorkdirError(
                f"dataset '{name}': {first} ({format_bytes(size)}){more} is over the "
                f"{format_bytes(limit)} limit for files sent to a Ray job; raise "
                f"{ENV_MAX_FILE_SIZE} or keep the data in a dataset produced by a task"
            )
