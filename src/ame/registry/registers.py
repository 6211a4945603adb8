"""Registering versions: ``Register``/``MlflowRegister`` and the one safe way to create a version.

A version is created under the store's write lock (so eight processes at once
get versions 1 to 8), with its tags and description in the same call, and is
fetched again afterwards (MLflow 3 returns it without later tags and aliases).
If anything after creation fails, the version (and a model created for it)
is deleted again: a failed command never leaves a half-registered version.
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

from ame.errors import AlreadyExistsError, InvalidModelURIError
from ame.registry.errors import is_not_found, mlflow_errors, translate
from ame.registry.resolve import client_for

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from ame.registry.store import Store

logger = logging.getLogger(__name__)

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_model_name(name: str) -> str:
    """Refuse names that could not be written back as ``name/3`` or ``name@alias``."""
    if not _MODEL_NAME.match(name or ""):
        raise InvalidModelURIError(
            f"invalid model name '{name}': use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def register_version(
    store: Store,
    name: str,
    model_uri: str,
    *,
    tags: Optional[Mapping[str, Any]] = None,
    description: Optional[str] = None,
    aliases: Sequence[str] = (),
) -> ModelVersion:
    """Create a version of ``name`` from ``model_uri``; all or nothing."""
    from ame.registry.locking import locked_write
    from ame.registry.sources import resolve_source
    from ame.registry.store import activate

    check_model_name(name)
    client = client_for(store)
    source = resolve_source(client, model_uri)
    # MLflow's SQL registry resolves a ``models:/m-<id>`` source through the
    # process-wide tracking store, not the client's: without this, a logged
    # model of the project's store is "not found" (and a stray ./mlflow.db is
    # created by MLflow's default URI).
    activate(store)
    str_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    created_model = False

    def _version() -> ModelVersion:
        return client.create_model_version(
            name,
            source.source,
            run_id=source.run_id,
            tags=str_tags or None,
            description=description,
            model_id=source.model_id,
        )

    def _create() -> ModelVersion:
        # Usually the model exists: try the version first and create the model
        # only when MLflow says it is missing (one round trip fewer).
        nonlocal created_model
        try:
            return _version()
        except Exception as exc:
            if not is_not_found(exc):
                raise
        try:
            client.create_registered_model(name)
            created_model = True
        except Exception as exc:  # created meanwhile by another writer of a server store
            if not isinstance(translate(exc), AlreadyExistsError):
                raise
        return _version()

    try:
        mv = locked_write(store, _create)
    except BaseException:
        if created_model:
            _undo(store, name, None, delete_model=True)
        raise
    try:
        for alias in aliases:
            locked_write(store, partial(client.set_registered_model_alias, name, alias, mv.version))
        # Tags set after creation must be present; MLflow may not echo them back.
        for key, value in str_tags.items():
            if mv.tags.get(key) != value:
                locked_write(
                    store, partial(client.set_model_version_tag, name, mv.version, key, value)
                )
        return client.get_model_version(name, mv.version)
    except BaseException:
        _undo(store, name, str(mv.version), delete_model=created_model)
        raise


def _undo(store: Store, name: str, version: Optional[str], *, delete_model: bool) -> None:
    from ame.registry.locking import locked_write

    client = client_for(store)
    try:
        if version is not None:
            locked_write(store, lambda: client.delete_model_version(name, version))
        if delete_model:
            locked_write(store, lambda: client.delete_registered_model(name))
    except Exception:  # the original failure matters more than a failed clean-up
        logger.exception("could not remove half-registered %s/%s", name, version)


class Register(abc.ABC):
    """Register a saved model as a new version of a registered model.

    ``tags`` are set on every version this register creates.
    """

    KIND: ClassVar[str] = "Register"

    def __init__(self, tags: Optional[dict[str, Any]] = None, *, store: Optional[Store] = None):
        self.tags: dict[str, Any] = dict(tags or {})
        self.store = store

    @abc.abstractmethod
    def register(self, name: str, model_uri: str) -> ModelVersion:
        """Create a version of ``name`` from ``model_uri`` and return it."""


class MlflowRegister(Register):
    """Register into the MLflow model registry of the store (resolved when not given)."""

    KIND: ClassVar[Literal["MlflowRegister"]] = "MlflowRegister"

    def register(
        self, name: str, model_uri: str, description: Optional[str] = None
    ) -> ModelVersion:
        """Create a version of ``name`` from ``model_uri`` (a run, logged model or path).

        Raises ``RegistrationError`` (or the not-found errors) when the source
        does not exist; nothing is written then.
        """
        from ame.registry.store import activate, resolve_store

        store = self.store or resolve_store()
        with mlflow_errors(store.tracking_uri):
            activate(store)
            return register_version(store, name, model_uri, tags=self.tags, description=description)
