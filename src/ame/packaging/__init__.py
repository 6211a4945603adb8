"""Model packages: one file holding a model's files, hooks and a manifest, optionally encrypted.

Public API (imported lazily, so ``import ame.packaging`` stays light):

- ``build_package(model, output, *, hooks_dir=None, key=None, passphrase=None, ...)``
- ``open(path, *, key=None, key_file=None, passphrase=None)`` -> ``PackagedModel``
- ``inspect_package(path)`` -> the manifest, no key needed
- ``verify_package(path, *, key=None, key_file=None, passphrase=None)`` -> per-file checks
- ``register_package(path, name, ...)`` -> a ``packaged-encrypted`` model version
- ``generate_key_file(path)``, ``read_key_file(path)``

See docs/packaging.md for the format and its threat model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ame.packaging.build import BuildResult, build_package
    from ame.packaging.inspect import inspect_package, verify_package
    from ame.packaging.keys import generate_key_file, read_key_file
    from ame.packaging.opener import PackagedModel
    from ame.packaging.opener import open_package as open
    from ame.packaging.register import RegisteredPackage, register_package

_LAZY = {
    "BuildResult": ("ame.packaging.build", "BuildResult"),
    "build_package": ("ame.packaging.build", "build_package"),
    "inspect_package": ("ame.packaging.inspect", "inspect_package"),
    "verify_package": ("ame.packaging.inspect", "verify_package"),
    "generate_key_file": ("ame.packaging.keys", "generate_key_file"),
    "read_key_file": ("ame.packaging.keys", "read_key_file"),
    "PackagedModel": ("ame.packaging.opener", "PackagedModel"),
    "open": ("ame.packaging.opener", "open_package"),
    "RegisteredPackage": ("ame.packaging.register", "RegisteredPackage"),
    "register_package": ("ame.packaging.register", "register_package"),
}

__all__ = [
    "BuildResult",
    "PackagedModel",
    "RegisteredPackage",
    "build_package",
    "generate_key_file",
    "inspect_package",
    "open",
    "read_key_file",
    "register_package",
    "verify_package",
]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'ame.packaging' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attr)
