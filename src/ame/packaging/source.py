"""Where the files of a package come from: a registered version, or a model directory.

A registry reference is resolved to one concrete version (an alias or "latest"
is pinned at build time: a package is a snapshot) and its files are downloaded
into a temporary directory that the caller removes.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ame.errors import PackageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFiles:
    """A local MLflow model directory and what the manifest says about it."""

    directory: Path
    name: str
    version: str
    source: str
    flavor: str
    flavors: list[str]
    signature: Optional[dict[str, Any]]
    run_id: Optional[str]
    requirements: list[str]
    mlflow_version: Optional[str]


def describe_model_dir(directory: Path, name: str, version: str, source: str) -> ModelFiles:
    """Read ``MLmodel`` and check the model can be loaded as a pyfunc once unpacked."""
    from mlflow.models import Model

    mlmodel = directory / "MLmodel"
    if not mlmodel.is_file():
        raise PackageError(f"{source} is not an MLflow model (no MLmodel file)")
    model = Model.load(str(mlmodel))
    flavors = list(model.flavors)
    if "python_function" not in flavors:
        raise PackageError(
            f"{source} has no python_function flavor (flavors: {', '.join(flavors)}); "
            "a package must be loadable with mlflow.pyfunc"
        )
    primary = next((f for f in flavors if f != "python_function"), "python_function")
    req_file = directory / "requirements.txt"
    requirements = (
        [
            line.strip()
            for line in req_file.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        if req_file.is_file()
        else []
    )
    return ModelFiles(
        directory=directory,
        name=name,
        version=version,
        source=source,
        flavor=primary,
        flavors=flavors,
        signature=model.signature.to_dict() if model.signature is not None else None,
        run_id=model.run_id,
        requirements=requirements,
        mlflow_version=model.mlflow_version,
    )


@contextmanager
def model_files(
    model: str | Path,
    *,
    tracking_uri: Optional[str] = None,
    project_root: Optional[Path] = None,
    name: Optional[str] = None,
    version: Optional[str] = None,
) -> Iterator[ModelFiles]:
    """Yield the files of ``model``: a registry reference or a local MLflow model directory."""
    local = Path(model).expanduser()
    if isinstance(model, Path) or (local.is_dir() and (local / "MLmodel").is_file()):
        if not local.is_dir():
            raise PackageError(f"model directory {local} does not exist")
        yield describe_model_dir(
            local.resolve(), name or local.resolve().name, version or "local", str(local)
        )
        return

    import mlflow.artifacts

    from ame.registry.resolve import client_for, resolve_version
    from ame.registry.store import activate, resolve_store
    from ame.registry.uris import parse_model_ref

    ref = parse_model_ref(str(model))
    if ref.run_id is not None:
        raise PackageError("package a registered version (NAME/VERSION or NAME@ALIAS), not a run")
    store = resolve_store(tracking_uri, project_root)
    activate(store)
    client = client_for(store)
    found = resolve_version(client, ref)
    uri = f"models:/{found.name}/{found.version}"
    with tempfile.TemporaryDirectory(prefix="ame-build-") as tmp:
        log.info("downloading %s", uri)
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        yield describe_model_dir(Path(path), str(found.name), str(found.version), uri)
