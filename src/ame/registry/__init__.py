"""The MLflow model registry, typed: store, savers, loaders, registers and version management.

Importing this package stays cheap: mlflow, pandas and friends are imported
inside the functions that need them.
"""

from __future__ import annotations

from ame.registry.facade import Registry
from ame.registry.files import FilesSaver
from ame.registry.loaders import Adapter, BuiltinLoader, CustomLoader, Loader, resolve_model
from ame.registry.records import ModelRecord, Page, VersionRecord
from ame.registry.registers import MlflowRegister, Register, register_version
from ame.registry.savers import BuiltinSaver, CustomSaver, Saver
from ame.registry.schemas import OutputMetadata, Outputs
from ame.registry.store import Store, activate, ensure_experiment, resolve_store
from ame.registry.uris import ModelRef, parse_model_ref

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
