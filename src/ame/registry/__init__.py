"""The MLflow model registry, typed: store, savers, loaders, registers and version management.

Importing this package stays cheap: mlflow, pandas and friends are imported
inside the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ame.registry.facade import Registry
    from ame.registry.files import FilesSaver
    from ame.registry.loaders import Adapter, BuiltinLoader, CustomLoader, Loader, resolve_model
    from ame.registry.records import ModelRecord, Page, VersionRecord
    from ame.registry.registers import MlflowRegister, Register, register_version
    from ame.registry.savers import BuiltinSaver, CustomSaver, Saver
    from ame.registry.schemas import OutputMetadata, Outputs
    from ame.registry.store import Store, activate, ensure_experiment, resolve_store
    from ame.registry.uris import ModelRef, parse_model_ref

# Each public name and the module that defines it. They are imported on first
# use (PEP 562), so ``ame.registry.store`` alone, which ``ame task run`` needs,
# does not pay for the savers, loaders and facade.
_WHERE = {
    "Registry": "facade",
    "FilesSaver": "files",
    "Adapter": "loaders",
    "BuiltinLoader": "loaders",
    "CustomLoader": "loaders",
    "Loader": "loaders",
    "resolve_model": "loaders",
    "ModelRecord": "records",
    "Page": "records",
    "VersionRecord": "records",
    "MlflowRegister": "registers",
    "Register": "registers",
    "register_version": "registers",
    "BuiltinSaver": "savers",
    "CustomSaver": "savers",
    "Saver": "savers",
    "OutputMetadata": "schemas",
    "Outputs": "schemas",
    "Store": "store",
    "activate": "store",
    "ensure_experiment": "store",
    "resolve_store": "store",
    "ModelRef": "uris",
    "parse_model_ref": "uris",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ame.registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ame.registry.{module}"), name)


__all__ = [
    "Adapter",
    "BuiltinLoader",
    "BuiltinSaver",
    "CustomLoader",
    "CustomSaver",
    "FilesSaver",
    "Loader",
    "MlflowRegister",
    "ModelRecord",
    "ModelRef",
    "OutputMetadata",
    "Outputs",
    "Page",
    "Register",
    "Registry",
    "Saver",
    "Store",
    "VersionRecord",
    "activate",
    "ensure_experiment",
    "parse_model_ref",
    "register_version",
    "resolve_model",
    "resolve_store",
]
