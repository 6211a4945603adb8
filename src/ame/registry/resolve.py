"""Turning a model reference into an existing version, with errors that help.

Every read of the registry goes through here, so "unknown model" always lists
the closest names, "unknown version" the versions that exist and "unknown
alias" the aliases that do, whichever command or loader asked.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from ame.errors import AliasNotFoundError, ModelNotFoundError, StoreError, VersionNotFoundError
from ame.registry.uris import ModelRef

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel
    from mlflow.tracking import MlflowClient

    from ame.registry.store import Store

_SHOW = 10


def client_for(store: Store) -> MlflowClient:
    """An ``MlflowClient`` bound to ``store`` (schema created safely first).

    MLflow's client prints to stderr by itself (``Successfully registered
    model``, ``Copied version ...``), around logging; ``quiet_mlflow_output``
    silences that unless ``--verbose``, as ``store.activate`` does.
    """
    from mlflow.tracking import MlflowClient

    from ame._logging import quiet_mlflow_output
    from ame.registry.locking import ensure_schema

    quiet_mlflow_output()

    try:
        ensure_schema(store)
    except Exception as exc:
        if _is_connection_error(exc):
            raise StoreError(f"cannot reach the MLflow store {store.tracking_uri}: {exc}") from exc
        raise
    return MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)


def _is_connection_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("connection", "max retries", "unable to open database"))


def is_not_found(exc: BaseException) -> bool:
    """True when MLflow says the thing asked for does not exist (any store type)."""
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return False
    if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
        return True
    text = str(exc).lower()
    return "not found" in text or "does not exist" in text or "not exist" in text


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOW else "")


def model_names(client: MlflowClient, limit: int = 1000) -> list[str]:
    """Names of registered models (the first ``limit``), for suggestions."""
    return sorted(rm.name for rm in client.search_registered_models(max_results=limit))


def get_model(client: MlflowClient, name: str) -> RegisteredModel:
    """The registered model ``name``, or ``ModelNotFoundError`` naming close matches."""
    try:
        return client.get_registered_model(name)
    except Exception as exc:
        if not is_not_found(exc):
            raise
        names = model_names(client)
        close = difflib.get_close_matches(name, names, n=3)
        if close:
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?"
        elif names:
            hint = f"; registered models: {_listing(names)}"
        else:
            hint = "; the registry has no models yet"
        raise ModelNotFoundError(f"no registered model '{name}'{hint}") from None


def version_numbers(client: MlflowClient, name: str) -> list[int]:
    """Every version number of ``name``, ascending."""
    from ame.registry.paging import iter_pages

    return sorted(
        int(v.version)
        for v in iter_pages(
            lambda token: client.search_model_versions(
                f"name='{escape(name)}'", max_results=1000, page_token=token
            )
        )
    )


def escape(value: str) -> str:
    """Quote ``value`` for an MLflow filter string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    """Version ``version`` of ``name``; the error says which versions exist."""
    try:
        return client.get_model_version(name, str(version))
    except Exception as exc:
        if not is_not_found(exc):
            raise
    get_model(client, name)
    existing = [str(v) for v in version_numbers(client, name)]
    have = f"its versions: {_listing(existing)}" if existing else "it has no versions"
    raise VersionNotFoundError(f"model '{name}' has no version {version}; {have}") from None


def get_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    """The version ``name@alias`` points at; the error lists the aliases that exist."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        if not is_not_found(exc):
            raise
    model = get_model(client, name)
    aliases: Any = model.aliases or {}
    known = sorted(aliases if isinstance(aliases, dict) else [a.alias for a in aliases])
    have = f"its aliases: {_listing(known)}" if known else "it has no aliases"
    raise AliasNotFoundError(f"model '{name}' has no alias '{alias}'; {have}") from None


def latest_version(client: MlflowClient, name: str) -> ModelVersion:
    """The highest-numbered version of ``name``."""
    numbers = version_numbers(client, name)
    if not numbers:
        get_model(client, name)
        raise VersionNotFoundError(f"model '{name}' has no versions yet")
    return client.get_model_version(name, str(numbers[-1]))


def resolve_version(client: MlflowClient, ref: ModelRef) -> ModelVersion:
    """The version a (non-run) reference names: by number, by alias, or the latest."""
    if ref.name is None:
        raise ValueError("a runs:/ reference has no registered version")
    if ref.version is not None:
        return get_version(client, ref.name, ref.version)
    if ref.alias is not None:
        return get_alias(client, ref.name, ref.alias)
    return latest_version(client, ref.name)
