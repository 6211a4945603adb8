"""Where a served model comes from: one string that every worker process can resolve.

A server may run several worker processes, and a restarted worker must be able
to load its model again without help from the process that started it. So the
model to serve is named by a plain string (a ``ModelSource`` spec), never by a
Python object:

- ``NAME``, ``NAME/VERSION``, ``NAME@ALIAS``, ``models:/...``, ``runs:/...``
  are resolved through the MLflow registry (``ame.registry``);
- a local directory holding an ``MLmodel`` file is loaded directly;
- ``SCHEME:REST`` where ``SCHEME`` has a registered resolver (``package:PATH``
  for encrypted packages) is handed to that resolver.

Resolvers are registered by *import path* (``"module:function"``), not by
object, and travel to worker processes in the ``AME_SERVING_RESOLVERS``
environment variable, so a resolver registered in the parent works in every
worker whatever the start method.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from ame.errors import AmeError, ServingError
from ame.registry.resolved import ResolvedVersion

log = logging.getLogger(__name__)

RESOLVERS_ENV = "AME_SERVING_RESOLVERS"


class Predictor(Protocol):
    """What the server needs from a model: MLflow's pyfunc interface, nothing more."""

    metadata: Any

    def predict(self, data: Any, params: Optional[dict[str, Any]] = None) -> Any: ...


class LoadedModel:
    """A model ready to serve: the resolved version it is, and its loaded predictor.

    What it is lives in one ``ame.registry.ResolvedVersion`` (``resolved``), the
    record every part of ame uses for "a resolved version"; ``name``, ``version``,
    ``source`` (the URI loaded) and ``follows`` (the alias it was reached through,
    which may move later) read from it. Every model served has a name and a
    version for the protocols to report, so a run's model and a local directory
    get one too (the artifact path and run id; the directory's name and ``1``).
    The keyword form ``LoadedModel(predictor, name=, version=, source=)`` builds
    the record for callers that have no registry version (resolvers, tests).
    """

    def __init__(
        self,
        predictor: Predictor,
        name: Optional[str] = None,
        version: Optional[str] = None,
        source: Optional[str] = None,
        follows: Optional[str] = None,
        extra: Optional[dict[str, Any]] = None,
        *,
        resolved: Optional[ResolvedVersion] = None,
    ) -> None:
        if resolved is None:
            if name is None or version is None or source is None:
                raise TypeError("LoadedModel needs resolved=, or name, version and source")
            resolved = ResolvedVersion(uri=source, name=name, version=version, follows=follows)
        self.predictor = predictor
        self.resolved = resolved
        self.extra: dict[str, Any] = dict(extra or {})

    @property
    def name(self) -> str:
        """The model's name, as the protocols report it."""
        return str(self.resolved.name or self.resolved.uri)

    @property
    def version(self) -> str:
        """The version, as the protocols report it."""
        return str(self.resolved.version or self.resolved.run_id or "1")

    @property
    def source(self) -> str:
        """The URI (or local path) the model was loaded from."""
        return self.resolved.uri

    @property
    def follows(self) -> Optional[str]:
        """The alias this version was chosen through, which may move later."""
        return self.resolved.follows

    @property
    def metadata(self) -> Any:
        return self.predictor.metadata

    def __repr__(self) -> str:
        return f"LoadedModel({self.resolved!r})"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source spec: which kind it is and what to resolve."""

    kind: str  # "registry" | "local" | a resolver scheme
    text: str
    rest: str = ""


def _resolver_table() -> dict[str, str]:
    raw = os.environ.get(RESOLVERS_ENV, "")
    if not raw:
        return {}
    try:
        table = json.loads(raw)
    except ValueError:
        log.warning("ignoring unreadable %s", RESOLVERS_ENV)
        return {}
    return {str(k): str(v) for k, v in table.items()} if isinstance(table, dict) else {}


def register_resolver(scheme: str, target: str) -> None:
    """Make ``SCHEME:REST`` sources load through ``target`` (``"module:function"``).

    The function is called as ``function(rest, tracking_uri=...)`` in each worker
    and returns a ``LoadedModel`` or any object with ``predict(data, params=None)``
    and ``metadata``. The registration is stored in the environment so worker
    processes (and their restarts) see it too.
    """
    if not scheme.isidentifier() or scheme in ("models", "runs"):
        raise ServingError(f"invalid resolver scheme '{scheme}'")
    if ":" not in target:
        raise ServingError(f"resolver target '{target}' must look like 'module:function'")
    table = _resolver_table()
    table[scheme] = target
    os.environ[RESOLVERS_ENV] = json.dumps(table)


def parse_source(text: str) -> SourceSpec:
    """Classify a source spec without loading anything."""
    raw = text.strip()
    if not raw:
        raise ServingError("no model given to serve")
    scheme, sep, rest = raw.partition(":")
    if sep and scheme in _resolver_table():
        return SourceSpec(kind=scheme, text=raw, rest=rest)
    if sep and scheme == "package":
        raise ServingError(
            "cannot serve 'package:' sources: no package resolver is registered "
            "(use 'ame package serve FILE')"
        )
    path = Path(raw).expanduser()
    if not raw.startswith(("models:/", "runs:/")) and path.is_dir():
        if not (path / "MLmodel").is_file():
            raise ServingError(f"{path} is a directory but holds no MLmodel file")
        return SourceSpec(kind="local", text=str(path.resolve()))
    return SourceSpec(kind="registry", text=raw)


def _client(tracking_uri: Optional[str]) -> Any:
    """The registry's client for the store ``tracking_uri`` names (made active here too).

    Activating points this process's ``mlflow`` at the store, which the
    downloads of ``models:/`` and ``runs:/`` URIs below resolve against.
    """
    from ame.registry.resolve import client_for
    from ame.registry.store import activate, resolve_store

    store = resolve_store(tracking_uri)
    activate(store)
    return client_for(store)


def resolve_registered(
    client: Any, name: str, alias: Optional[str], version: Optional[str]
) -> ResolvedVersion:
    """The version a reference means now, with an error naming what is missing.

    The registry's own resolver answers, so ``ame serve lr/99`` lists the
    versions that exist and ``lr@nope`` the aliases, as every other command does.
    """
    from ame.registry.resolve import resolve_version
    from ame.registry.uris import ModelRef

    found = resolve_version(client, ModelRef(name=name, version=version, alias=alias))
    return ResolvedVersion.from_mlflow(found, follows=alias)


def resolve_registry_version(
    client: Any, name: str, alias: Optional[str], version: Optional[str]
) -> str:
    """The version number ``resolve_registered`` finds (for callers that need only that)."""
    return str(resolve_registered(client, name, alias, version).version)


def download_version(uri: str) -> str:
    """Download a model's files to a local directory, as ``mlflow models serve`` does."""
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    try:
        return str(_download_artifact_from_uri(artifact_uri=uri))
    except Exception as exc:  # MLflow raises many kinds here; the user needs the reason
        raise ServingError(f"could not load model {uri}: {exc}") from exc


def load_resolved(local: str, resolved: ResolvedVersion) -> LoadedModel:
    """Load the downloaded files of ``resolved``; dependency warnings wait for ``deferred_checks``.

    ``mlflow.pyfunc.load_model`` compares the model's requirements with every
    installed distribution before loading: seconds of start-up for a warning.
    The check runs once the server answers requests.
    """
    import mlflow.pyfunc

    try:
        predictor = mlflow.pyfunc.load_model(local, suppress_warnings=True)
    except Exception as exc:  # MLflow raises many kinds here; the user needs the reason
        raise ServingError(f"could not load model {resolved.uri}: {exc}") from exc
    return LoadedModel(predictor, resolved=resolved, extra={"local_path": local})


def load_local(
    local: str,
    uri: str,
    name: Optional[str],
    version: Optional[str],
    source: str,
    follows: Optional[str] = None,
) -> LoadedModel:
    """``load_resolved`` for callers holding the parts of the record (``uri`` is ``source``)."""
    return load_resolved(
        local, ResolvedVersion(uri=source or uri, name=name, version=version, follows=follows)
    )


def _load_pyfunc(resolved: ResolvedVersion) -> LoadedModel:
    """Download ``resolved`` then load the local copy, exactly as ``mlflow models serve`` does."""
    return load_resolved(download_version(resolved.uri), resolved)


def deferred_checks(model: LoadedModel) -> None:
    """Log MLflow's load-time warnings (requirements, Python version) for ``model``."""
    local = model.extra.get("local_path")
    if not local:
        return
    try:
        from mlflow.pyfunc import (
            _get_pip_requirements_from_model_path,
            _warn_potentially_incompatible_py_version_if_necessary,
        )
        from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

        warn_dependency_requirement_mismatches(_get_pip_requirements_from_model_path(local))
        conf = model.metadata.flavors.get("python_function", {})
        _warn_potentially_incompatible_py_version_if_necessary(
            model_py_version=conf.get("python_version")
        )
    except Exception as exc:  # only warnings: they must never stop the server
        log.debug("could not check the model's requirements: %s", exc)


def _call_resolver(spec: SourceSpec, tracking_uri: Optional[str]) -> LoadedModel:
    target = _resolver_table()[spec.kind]
    module_name, _, func_name = target.partition(":")
    try:
        func: Callable[..., Any] = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ServingError(
            f"resolver '{target}' for '{spec.kind}:' cannot be imported: {exc}"
        ) from exc
    obj = func(spec.rest, tracking_uri=tracking_uri)
    if isinstance(obj, LoadedModel):
        return obj
    if not hasattr(obj, "predict") or not hasattr(obj, "metadata"):
        raise ServingError(f"resolver '{target}' returned {type(obj).__name__}, not a model")
    name = getattr(obj, "name", None) or Path(spec.rest).stem or spec.kind
    version = str(getattr(obj, "version", None) or "1")
    return LoadedModel(
        obj, resolved=ResolvedVersion(uri=spec.text, name=str(name), version=version)
    )


def load_source(text: str, tracking_uri: Optional[str] = None) -> LoadedModel:
    """Resolve and load the model a source spec names (called once per worker)."""
    spec = parse_source(text)
    if spec.kind == "local":
        path = Path(spec.text)
        return _load_pyfunc(ResolvedVersion(uri=spec.text, name=path.name, version="1"))
    if spec.kind != "registry":
        return _call_resolver(spec, tracking_uri)

    from ame.registry.uris import parse_model_ref

    ref = parse_model_ref(spec.text)
    if ref.run_id is not None:
        _client(tracking_uri)  # the store the runs:/ URI is resolved against
        _client(tracking_uri)  # the store the runs:/ URI is resolved against
        # A run's model is not registered: the protocols report its artifact
        # path (or the run id) as its name and the run id as its version.
        return _load_pyfunc(
            ResolvedVersion(
                uri=ref.to_mlflow_uri(),
                name=ref.artifact_path or ref.run_id,
                version=ref.run_id,
                run_id=ref.run_id,
            )
        )
    resolved = resolve_reference(spec.text, tracking_uri)
    log.info("loading %s (from %s)", resolved.uri, spec.text)
    return _load_pyfunc(resolved)


def resolve_reference(text: str, tracking_uri: Optional[str]) -> ResolvedVersion:
    """The version a registered-model reference means now (``follows`` its alias, if any)."""
    from ame.registry.uris import parse_model_ref

    ref = parse_model_ref(text)
    if ref.name is None:
        raise ServingError(f"'{text}' does not name a registered model")
    return resolve_registered(_client(tracking_uri), ref.name, ref.alias, ref.version)


def names_registered_model(text: str) -> bool:
    """True when ``text`` is a registry reference to a model by name (not ``runs:/``)."""
    from ame.registry.uris import parse_model_ref

    try:
        spec = parse_source(text)
        return spec.kind == "registry" and parse_model_ref(spec.text).name is not None
    except AmeError:
        return False


class AliasWatcher:
    """Tells which version an alias points at now; used by the hot-swap poller."""

    def __init__(self, name: str, alias: str, tracking_uri: Optional[str]) -> None:
        self.name = name
        self.alias = alias
        self._client = _client(tracking_uri)

    def current_version(self) -> str:
        return resolve_registry_version(self._client, self.name, self.alias, None)

    def load(self, version: str) -> LoadedModel:
        return _load_pyfunc(
            ResolvedVersion(
                uri=f"models:/{self.name}/{version}",
                name=self.name,
                version=version,
                follows=self.alias,
            )
        )
