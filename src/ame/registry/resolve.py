"""Turning a model reference into an existing version, with errors that help.

Every read of the registry goes through here, so "unknown model" always lists
the closest names, "unknown version" the versions that exist and "unknown
alias" the aliases that do, whichever command or loader asked. Each read raises
``ame.errors`` only: MLflow's errors are translated by their code
(``ame.registry.errors``), never recognised by their wording.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Optional

from ame.errors import (
    AliasNotFoundError,
    InvalidValueError,
    ModelNotFoundError,
    ResourceNotFoundError,
    VersionNotFoundError,
)
from ame.registry.errors import mlflow_errors
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
    with mlflow_errors(store.tracking_uri):
        ensure_schema(store)
    return MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)


def _uri(client: MlflowClient) -> Optional[str]:
    """The store a client talks to, for "cannot reach" messages."""
    return getattr(client, "_registry_uri", None)


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOW else "")


def model_names(client: MlflowClient, limit: int = 1000) -> list[str]:
    """Names of registered models (the first ``limit``), for suggestions."""
    with mlflow_errors(_uri(client)):
        return sorted(rm.name for rm in client.search_registered_models(max_results=limit))


def get_model(client: MlflowClient, name: str) -> RegisteredModel:
    """The registered model ``name``, or ``ModelNotFoundError`` naming close matches."""
    try:
        with mlflow_errors(_uri(client)):
            return client.get_registered_model(name)
    except ResourceNotFoundError:
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

    with mlflow_errors(_uri(client)):
        return sorted(
            int(v.version)
            for v in iter_pages(
                lambda token: client.search_model_versions(
                    f"name = {quote(name)}", max_results=1000, page_token=token
                )
            )
        )


def quote(value: str) -> str:
    """``value`` as a string literal of an MLflow filter (``name = <this>``), quotes included.

    MLflow's filter grammar has no escapes: a literal is whatever lies between
    its quotes (``SearchUtils._strip_quotes`` only trims them), and sqlparse,
    which splits the filter, ends a single-quoted literal at a ``'`` that no
    backslash precedes. So a name goes between single quotes when it holds no
    ``'``, else between double quotes, which MLflow accepts alike (measured on
    MLflow 3: ``o'brien``, ``back\\slash`` and ``dq"x`` are each found, alone
    and ANDed with a tag). A value holding both kinds of quote, or ending in a
    backslash (which would swallow the closing quote), cannot be written at
    all: that is a one-line ``InvalidValueError``, not a filter that finds
    nothing or the wrong thing.
    """
    if "'" not in value and not value.endswith("\\"):
        return f"'{value}'"
    if '"' not in value and not value.endswith("\\"):
        return f'"{value}"'
    raise InvalidValueError(
        f"{value!r} cannot be put in an MLflow filter: its syntax has no escapes, so a "
        "value may not hold both ' and \", nor end in a backslash"
    )


def escape(value: str) -> str:
    """``value`` made safe inside a single-quoted ``LIKE`` pattern (``name LIKE '%<this>%'``).

    There is no escape (see ``quote``), so each ``'`` becomes ``_``, LIKE's
    one-character wildcard, which still matches the quote; a pattern then
    finds a superset that callers may narrow. For equality use ``quote``.
    """
    dequoted = value.replace("'", "_")
    bare = dequoted.rstrip("\\")
    return bare + "_" * (len(dequoted) - len(bare))


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    """Version ``version`` of ``name``; the error says which versions exist."""
    try:
        with mlflow_errors(_uri(client)):
            return client.get_model_version(name, str(version))
    except ResourceNotFoundError:
        pass
    get_model(client, name)
    existing = [str(v) for v in version_numbers(client, name)]
    have = f"its versions: {_listing(existing)}" if existing else "it has no versions"
    raise VersionNotFoundError(f"model '{name}' has no version {version}; {have}") from None


def get_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    """The version ``name@alias`` points at; the error lists the aliases that exist."""
    try:
        with mlflow_errors(_uri(client)):
            return client.get_model_version_by_alias(name, alias)
    # MLflow answers a missing alias with INVALID_PARAMETER_VALUE (its SQL and
    # REST stores alike), not RESOURCE_DOES_NOT_EXIST; either way the error
    # below, after checking the model exists, says what the aliases are.
    except (ResourceNotFoundError, InvalidValueError):
        pass
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
    return get_version(client, name, numbers[-1])


def resolve_version(client: MlflowClient, ref: ModelRef) -> ModelVersion:
    """The version a (non-run) reference names: by number, by alias, or the latest."""
    if ref.name is None:
        raise ValueError("a runs:/ reference has no registered version")
    if ref.version is not None:
        return get_version(client, ref.name, ref.version)
    if ref.alias is not None:
        return get_alias(client, ref.name, ref.alias)
    return latest_version(client, ref.name)
