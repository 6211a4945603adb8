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

from typing import TYPE_CHECKING

from ame._lazy import lazy_exports

if TYPE_CHECKING:
    from ame.packaging.build import BuildResult, build_package
    from ame.packaging.inspect import inspect_package, verify_package
    from ame.packaging.keys import generate_key_file, read_key_file
    from ame.packaging.opener import PackagedModel
    from ame.packaging.opener import open_package as open
    from ame.packaging.register import RegisteredPackage, register_package

_HOMES = {
    "BuildResult": "ame.packaging.build",
    "build_package": "ame.packaging.build",
    "inspect_package": "ame.packaging.inspect",
    "verify_package": "ame.packaging.inspect",
    "generate_key_file": "ame.packaging.keys",
    "read_key_file": "ame.packaging.keys",
    "PackagedModel": "ame.packaging.opener",
    "open": "ame.packaging.opener:open_package",
    "RegisteredPackage": "ame.packaging.register",
    "register_package": "ame.packaging.register",
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

__getattr__ = lazy_exports(__name__, _HOMES)
