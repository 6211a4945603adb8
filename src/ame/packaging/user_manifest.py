"""The user's own ``manifest.json`` (MLSteam's *manifest* tab), kept inside the package.

MLSteam makes a ``packaged-encrypted`` version from three inputs taken from a
folder: model files, hook files and a manifest file. ame keeps that manifest
byte for byte as its own member, ``meta/manifest.json``, encrypted and
digest-checked like every other file (so it is authenticated with the rest),
and reads only a few fields from it; everything else is the user's and is
kept as given. ame's own ``manifest.json`` (the package's table of contents,
authenticated by HMAC) is a different file and stays as it is.

Fields ame reads (all optional):

- ``entry_point``: ``"module:function"``, the loader for files that are not an
  MLflow model; ``function(files_dir)`` returns the model. ``module`` is a
  ``.py`` among the model files, named from the folders given (``"models.loader:load"``
  for ``loader.py`` in ``--files models/``, ``"loader:load"`` for ``--files loader.py``).
- ``requirements``: pip requirement strings the model needs.
- ``files``: paths the package must hold, as the user's folder shows them
  (``models/model.pkl`` for a file of ``--files models/``, ``hooks/pre.py`` for
  one of ``--hooks``); a build that lacks one is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ame.boundedio import InputLimitError, loads_json, read_regular_file
from ame.errors import PackageError

# Where the user's manifest lives in the package, and how large it may be: a
# manifest describes files, it does not carry them.
MEMBER = "meta/manifest.json"
LIMIT = 1 << 20


@dataclass(frozen=True)
class UserManifest:
    """The bytes of the user's manifest and the fields ame acts on."""

    raw: bytes
    data: dict[str, Any]
    entry_point: Optional[str] = None
    requirements: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _strings(data: dict[str, Any], key: str, shown: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PackageError(f"manifest {shown}: '{key}' must be a list of non-empty strings")
    return list(value)


def read_user_manifest(path: Path) -> UserManifest:
    """Read and check ``path``: a regular JSON file of at most ``LIMIT`` bytes, an object."""
    shown = str(path)
    try:
        raw = read_regular_file(path, LIMIT, what="manifest")
        data = loads_json(raw)
    except InputLimitError as exc:
        raise PackageError(f"manifest {shown}: {exc}") from None
    if not isinstance(data, dict):
        raise PackageError(f"manifest {shown}: expected a JSON object, got {type(data).__name__}")
    entry_point = data.get("entry_point")
    if entry_point is not None:
        from ame.registry.files import check_loader

        if not isinstance(entry_point, str):
            raise PackageError(f"manifest {shown}: 'entry_point' must be a string")
        try:
            check_loader(entry_point)
        except Exception as exc:
            raise PackageError(f"manifest {shown}: 'entry_point': {exc}") from None
    return UserManifest(
        raw=raw,
        data=data,
        entry_point=entry_point,
        requirements=_strings(data, "requirements", shown),
        files=_strings(data, "files", shown),
    )


def check_named_files(
    manifest: UserManifest, model_files: Iterable[str], hook_files: Iterable[str], shown: str
) -> None:
    """Refuse a manifest that names a file the package will not hold (listing every one).

    ``model_files`` and ``hook_files`` are the names as the user's folders show
    them (``models/model.pkl``, ``hooks/pre.py``). The entry point's module must
    be among the model files, where the loader imports it from.
    """
    models = set(model_files)
    have = models | set(hook_files)
    missing = [name for name in manifest.files if name.strip("/") not in have]
    if manifest.entry_point:
        module_file = manifest.entry_point.partition(":")[0].replace(".", "/") + ".py"
        if module_file not in models:
            missing.append(f"{module_file} (the entry point {manifest.entry_point})")
    if missing:
        raise PackageError(
            f"manifest {shown} names files the package would not hold: {', '.join(missing)}"
        )
