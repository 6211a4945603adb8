"""What a new version points at: a run's model, a logged model, another version, a path.

Registering a source that does not exist would leave a version nobody can
load, so every source is checked (and turned into the exact source, run id and
logged-model id MLflow wants) before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import unquote, urlparse

from ame.errors import InvalidModelURIError
from ame.registry.errors import RegistrationError, is_not_found, mlflow_errors, translates
from ame.registry.resolve import resolve_version
from ame.registry.uris import parse_model_ref

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

_LOGGED_MODEL = re.compile(r"^models:/(?P<id>m-[0-9a-f]{8,64})$")
_REMOTE_SCHEMES = (
    "s3",
    "gs",
    "wasbs",
    "abfss",
    "hdfs",
    "http",
    "https",
    "mlflow-artifacts",
    "dbfs",
)


@dataclass(frozen=True)
class Source:
    """The checked source of a new version."""

    source: str
    run_id: Optional[str] = None
    model_id: Optional[str] = None


def _run_models(client: MlflowClient, run_id: str) -> tuple[str, list[tuple[str, str, str]]]:
    """The run's artifact URI and its MLflow 3 logged models as (name, uri, id)."""
    try:
        with mlflow_errors():
            run = client.get_run(run_id)
    except Exception as exc:
        if is_not_found(exc):
            raise RegistrationError(f"no run '{run_id}' in this store") from None
        raise
    with mlflow_errors():
        logged = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
        )
    found = [(lm.name, lm.model_uri, lm.model_id) for lm in logged]
    return run.info.artifact_uri, found


def _legacy_models(client: MlflowClient, run_id: str) -> list[str]:
    # MLflow 2 logged models as plain run artifacts: a folder holding an MLmodel.
    names = []
    for entry in client.list_artifacts(run_id):
        if entry.is_dir and any(
            Path(f.path).name == "MLmodel" for f in client.list_artifacts(run_id, entry.path)
        ):
            names.append(entry.path)
    return names


@translates
def run_model(client: MlflowClient, run_id: str, artifact_path: Optional[str] = None) -> Source:
    """The model logged in run ``run_id`` (the one named ``artifact_path`` if several)."""
    artifact_uri, logged = _run_models(client, run_id)
    if artifact_path:
        for name, uri, model_id in logged:
            if name == artifact_path:
                return Source(uri, run_id, model_id)
        if artifact_path in _legacy_models(client, run_id):
            return Source(f"{artifact_uri}/{artifact_path}", run_id)
        have = sorted({n for n, _, _ in logged} | set(_legacy_models(client, run_id)))
        listing = ", ".join(have) if have else "none"
        raise RegistrationError(
            f"run '{run_id}' has no model '{artifact_path}' (its models: {listing})"
        )
    if len(logged) == 1:
        name, uri, model_id = logged[0]
        return Source(uri, run_id, model_id)
    if len(logged) > 1:
        names = ", ".join(sorted(n for n, _, _ in logged))
        raise RegistrationError(
            f"run '{run_id}' logged several models ({names}); name one, e.g. runs:/{run_id}/NAME"
        )
    legacy = _legacy_models(client, run_id)
    if len(legacy) == 1:
        return Source(f"{artifact_uri}/{legacy[0]}", run_id)
    if legacy:
        raise RegistrationError(
            f"run '{run_id}' holds several models ({', '.join(legacy)}); "
            f"name one, e.g. runs:/{run_id}/{legacy[0]}"
        )
    raise RegistrationError(f"run '{run_id}' logged no model")


def _local_path(uri: str) -> Optional[Path]:
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    if "://" in uri or uri.startswith(("models:", "runs:")):
        return None
    candidate = Path(uri)
    if candidate.is_absolute() or uri.startswith(".") or candidate.exists():
        return candidate
    return None


@translates
def resolve_source(client: MlflowClient, model_uri: str) -> Source:
    """Check ``model_uri`` exists and return what ``create_model_version`` needs."""
    uri = model_uri.strip()
    if not uri:
        raise InvalidModelURIError("empty model URI")
    if match := _LOGGED_MODEL.match(uri):
        try:
            with mlflow_errors():
                lm = client.get_logged_model(match["id"])
        except Exception as exc:
            if is_not_found(exc):
                raise RegistrationError(f"no logged model '{match['id']}' in this store") from None
            raise
        return Source(uri, lm.source_run_id or None, lm.model_id)
    local = _local_path(uri)
    if local is not None:
        if not (local / "MLmodel").is_file():
            raise RegistrationError(f"'{model_uri}' is not a saved MLflow model (no MLmodel file)")
        return Source(local.resolve().as_uri())
    scheme = urlparse(uri).scheme
    if scheme in _REMOTE_SCHEMES:
        return Source(uri)
    ref = parse_model_ref(uri)
    if ref.run_id is not None:
        return run_model(client, ref.run_id, ref.artifact_path)
    mv = resolve_version(client, ref)
    return Source(str(mv.source), mv.run_id or None, getattr(mv, "model_id", None) or None)
