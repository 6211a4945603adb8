"""autoTrain's trigger: a fingerprint of what a training depends on, compared between polls.

A model with ``deployment.autoTrain`` retrains when the project's git commit
changes or when the content of a dataset its training task reads (one with a
``path`` on disk) changes. AME re-applied the training on every reconcile; here
a training runs only when the fingerprint differs from the one the last
training fired for, so an idle project costs one ``git rev-parse`` and a few
hashes per poll. The validation gate is ``ame train``'s own: a retrained
version that fails validation is never promoted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ame.spec.model import Project

# Files hashed per dataset directory at most; a dataset larger than that is
# fingerprinted by its names, sizes and modification times instead.
MAX_HASHED_BYTES = 256 * 1024 * 1024


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return []


def content_hash(path: Path) -> str:
    """A hash of a file's or a directory's content (names and bytes); ``missing`` if absent."""
    files = _files(path)
    if not files and not path.exists():
        return "missing"
    digest = hashlib.sha256()
    total = sum(f.stat().st_size for f in files)
    for f in files:
        digest.update(str(f.relative_to(path) if f != path else f.name).encode() + b"\0")
        if total > MAX_HASHED_BYTES:
            st = f.stat()
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            continue
        with f.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def training_data_paths(project: Project, model_name: str) -> dict[str, Path]:
    """The on-disk datasets ``model_name``'s training task reads, by name."""
    model = project.model(model_name)
    if model.training is None:
        return {}
    out: dict[str, Path] = {}
    for ref in model.training.task.data_sets:
        if ref.project not in (None, project.name):
            continue
        try:
            ds = project.data_set(ref.name)
        except KeyError:
            continue
        if ds.path:
            path = Path(ds.path)
            out[ds.name] = path if path.is_absolute() else project.root / path
    return out


def fingerprint(project: Project, model_name: str) -> dict[str, Any]:
    """What a retraining depends on now: ``{"commit": sha|None, "data": {name: hash}}``."""
    # The task runner's own reader: the commit autoTrain compares is the one runs are tagged with.
    from ame._system import git_commit

    paths = training_data_paths(project, model_name)
    data = {name: content_hash(path) for name, path in paths.items()}
    return {"commit": git_commit(project.root), "data": data}


def describe_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Why autoTrain fires, in words: ``commit 1a2b3c4 -> 5d6e7f8``, ``dataset reviews changed``."""
    reasons = []
    if before.get("commit") != after.get("commit"):
        old, new = (
            str(c)[:7] if c else "none" for c in (before.get("commit"), after.get("commit"))
        )
        reasons.append(f"commit {old} -> {new}")
    old_data, new_data = before.get("data") or {}, after.get("data") or {}
    for name in sorted(set(old_data) | set(new_data)):
        if old_data.get(name) != new_data.get(name):
            reasons.append(f"dataset {name} changed")
    return ", ".join(reasons) or "changed"
