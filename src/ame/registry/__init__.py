"""The MLflow model registry, typed: store, savers, loaders, registers and version management.

Importing this package stays cheap: mlflow, pandas and friends are imported
inside the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ame._lazy import lazy_exports

if TYPE_CHECKING:
    from ame.registry.facade import Registry
    from ame.registry.files import FilesSaver
    from ame.registry.loaders import Adapter, BuiltinLoader, CustomLoader, Loader, resolve_model
    from ame.registry.records import ModelRecord, Page, VersionRecord
    from ame.registry.registers import MlflowRegister, Register, register_version
    from ame.registry.resolved import ResolvedVersion
    from ame.registry.savers import BuiltinSaver, CustomSaver, Saver
    from ame.registry.schemas import OutputMetadata, Outputs
    from ame.registry.store import Store, activate, ensure_experiment, resolve_store
    from ame.registry.uris import ModelRef, parse_model_ref

# Each public name and the module that defines it. They are imported on first
# use (PEP 562), so ``ame.registry.store`` alone, which ``ame task run`` needs,
# does not pay for the savers, loaders and facade.
_HOMES = {
    "Registry": "ame.registry.facade",
    "FilesSaver": "ame.registry.files",
    "Adapter": "ame.registry.loaders",
    "BuiltinLoader": "ame.registry.loaders",
    "CustomLoader": "ame.registry.loaders",
    "Loader": "ame.registry.loaders",
    "resolve_model": "ame.registry.loaders",
    "ModelRecord": "ame.registry.records",
    "Page": "ame.registry.records",
    "ResolvedVersion": "ame.registry.resolved",
    "VersionRecord": "ame.registry.records",
    "MlflowRegister": "ame.registry.registers",
    "Register": "ame.registry.registers",
    "register_version": "ame.registry.registers",
    "BuiltinSaver": "ame.registry.savers",
    "CustomSaver": "ame.registry.savers",
    "Saver": "ame.registry.savers",
    "OutputMetadata": "ame.registry.schemas",
    "Outputs": "ame.registry.schemas",
    "Store": "ame.registry.store",
    "activate": "ame.registry.store",
    "ensure_experiment": "ame.registry.store",
    "resolve_store": "ame.registry.store",
    "ModelRef": "ame.registry.uris",
    "parse_model_ref": "ame.registry.uris",
}

__getattr__ = lazy_exports(__name__, _HOMES)


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
    "ResolvedVersion",
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
