"""Which MLflow store a command talks to: the project's embedded one, or a server.

One function, ``resolve_store``, decides this for every command and every task
so that a model trained by a task, listed by ``ame model list`` and served by
``ame serve`` always lives in the same place.

The embedded default is SQLite at ``<project>/.ame/mlflow.db`` with artifacts in
``<project>/.ame/artifacts``. MLflow's own default for a SQLite store would put
artifacts in ``./mlruns`` relative to whatever the current directory happens to
be, so experiments are created here with an explicit artifact location.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

EMBEDDED_DIR = ".ame"
EMBEDDED_DB = "mlflow.db"
EMBEDDED_ARTIFACTS = "artifacts"
DEFAULT_EXPERIMENT = "ame"

# Experiment ids already looked up by this process: a save asks for its
# experiment every time, and an id never changes once created.
_EXPERIMENTS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Store:
    """A resolved store: URIs to hand to MLflow, and where artifacts go when embedded."""

    tracking_uri: str
    registry_uri: str
    artifact_root: Optional[str]
    embedded: bool
    # The project the store was resolved for (None outside a project). Kept on the
    # store so that every save lands in the project's experiment and deletion can
    # see the project's live deployments, without each caller passing them along.
    project_root: Optional[Path] = None
    project_name: Optional[str] = None

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process's ``mlflow`` at this store."""
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_REGISTRY_URI": self.registry_uri}

    @property
    def experiment_name(self) -> str:
        """The experiment ame logs into: the project's name, else ``ame``."""
        return self.project_name or DEFAULT_EXPERIMENT

    @property
    def sqlite_path(self) -> Optional[Path]:
        """The database file when the store is SQLite (embedded), else None."""
        return sqlite_path(self.tracking_uri)


@functools.lru_cache(maxsize=64)
def sqlite_path(uri: str) -> Optional[Path]:
    """The file behind a ``sqlite:///`` URI (absolute or relative to the cwd), else None."""
    _, sep, rest = uri.partition("sqlite:///")
    if not sep or not rest or rest == ":memory:":
        return None
    return Path(unquote(rest.split("?", 1)[0])).resolve()


def read_project_name(project_root: Path) -> Optional[str]:
    """The project's name from its ame.yml, read leniently (None when unreadable).

    Only the name is needed here, so a full ``load_project`` (which validates the
    whole file) would make every registry command fail on an unrelated typo.
    Custom tags such as ``!poetry`` are accepted and ignored. Read with the
    spec's bounded reader: a fifo, a huge or a deeply nested ame.yml must not
    hang or crash a registry command.
    """
    from ame.spec.locate import declared_name

    for file_name in ("ame.yml", "ame.yaml"):
        candidate = project_root / file_name
        if candidate.is_file():
            name = declared_name(candidate)
            return name.strip() if name and name.strip() else None
    return None


def embedded_store(project_root: Path) -> Store:
    """The embedded SQLite store of the project at ``project_root``."""
    root = project_root.resolve()
    base = root / EMBEDDED_DIR
    (base / EMBEDDED_ARTIFACTS).mkdir(parents=True, exist_ok=True)
    return Store(
        tracking_uri=f"sqlite:///{base / EMBEDDED_DB}",
        registry_uri=f"sqlite:///{base / EMBEDDED_DB}",
        artifact_root=(base / EMBEDDED_ARTIFACTS).as_uri(),
        embedded=True,
        project_root=root,
        project_name=read_project_name(root),
    )


def _artifact_root_for_sqlite(uri: str) -> Optional[str]:
    # A SQLite store keeps its artifacts beside the database, so that a task
    # given the URI of ame's embedded store writes there too, not into ./mlruns.
    _, sep, rest = uri.partition("sqlite:///")
    if not sep or not rest:
        return None
    return (Path(rest).resolve().parent / EMBEDDED_ARTIFACTS).as_uri()


def resolve_store(tracking_uri: Optional[str] = None, project_root: Optional[Path] = None) -> Store:
    """Decide the store: ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else embedded.

    The embedded store belongs to the project found from ``project_root`` (or the
    current directory, searching upwards for ame.yml); outside any project it is
    created in the current directory.
    """
    from ame.spec.discovery import find_project_root

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        registry = os.environ.get("MLFLOW_REGISTRY_URI") or uri
        if tracking_uri:
            registry = tracking_uri
        # The project still names the experiment and owns the deployments,
        # even when its models live on a server.
        found = project_root.resolve() if project_root is not None else find_project_root()
        name = read_project_name(found) if found is not None else None
        if uri.startswith("sqlite:"):
            root = _artifact_root_for_sqlite(uri)
            if root:
                Path(unquote(urlparse(root).path)).mkdir(parents=True, exist_ok=True)
                return Store(uri, registry, root, True, found, name)
        return Store(uri, registry, None, False, found, name)
    if project_root is None:
        project_root = find_project_root() or Path.cwd()
    return embedded_store(project_root)


def activate(store: Store) -> None:
    """Point this process's ``mlflow`` at ``store`` (imports mlflow: call only when needed)."""
    import mlflow

    from ame._logging import quiet_mlflow_output

    quiet_mlflow_output()
    # MLflow also writes the URIs into os.environ "so that subprocesses inherit
    # them"; ame hands children their store explicitly (``Store.env``), and a
    # leaked variable would make a later ``resolve_store`` in this process pick
    # the last activated store instead of the project's.
    saved = {var: os.environ.get(var) for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(store.tracking_uri)
    mlflow.set_registry_uri(store.registry_uri)
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


def ensure_experiment(store: Store, name: Optional[str] = None) -> str:
    """Return the id of experiment ``name``, creating it with the store's artifact root.

    ``name`` defaults to the store's project (``ame`` outside a project). Safe to
    call from several processes at once: creation holds the store's write lock,
    and losing the creation race to another writer is not an error.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ame.registry.locking import ensure_schema, locked_write

    name = name or store.experiment_name
    key = (store.tracking_uri, name)
    if key in _EXPERIMENTS:
        return _EXPERIMENTS[key]
    ensure_schema(store)
    client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        _EXPERIMENTS[key] = str(existing.experiment_id)
        return _EXPERIMENTS[key]
    location = f"{store.artifact_root}/{name}" if store.artifact_root else None

    def _create() -> str:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except MlflowException:
            again = client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    _EXPERIMENTS[key] = locked_write(store, _create)
    return _EXPERIMENTS[key]
