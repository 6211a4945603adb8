"""The model a batch run scores with: loaded once per process, named exactly for ``--resume``.

Three kinds of model reference reach ``ame predict``: a registry reference
(``name``, ``name@alias``, ``name/3``, ``models:/...``), a local MLflow model
directory, and an ``.ame`` package file (encrypted or not; its key comes from
the environment, as for ``ame package serve``). Each resolves to a concrete
identity (``models:/name/3``, the directory and its MLmodel's hash, the
package id) which a resumed run must match: an alias that moved in between
would otherwise mix two versions' predictions in one output.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass
class BatchModel:
    """A loaded model and what a worker process needs to load the same one again."""

    predictor: Any
    name: str
    version: str
    identity: str
    kind: str  # "local" (a directory, also a downloaded registry version) or "package"
    path: str
    is_llm: bool = False

    def worker_spec(self) -> dict[str, str]:
        """Plain values from which ``load_for_worker`` loads this model in another process."""
        return {"kind": self.kind, "path": self.path}


def _is_llm(predictor: Any) -> bool:
    """True for ame's chat models: they wait on an endpoint, so processes would not help."""
    unwrap = getattr(predictor, "unwrap_python_model", None)
    if unwrap is None:
        return False
    try:
        inner = unwrap()
    except Exception:  # not a python_function model with a PythonModel inside
        return False
    return type(inner).__module__.startswith("ame.llm")


def load_model(text: str, tracking_uri: Optional[str] = None) -> BatchModel:
    """Resolve and load ``text`` (a registry reference, a model directory or a package file)."""
    path = Path(text).expanduser()
    if path.is_file():
        return _load_package(path)
    from ame.serving.sources import load_source

    loaded = load_source(text, tracking_uri)
    local = str(loaded.extra.get("local_path") or loaded.source)
    if loaded.source.startswith("models:/"):
        identity = loaded.source
    else:
        mlmodel = Path(local) / "MLmodel"
        digest = hashlib.sha256(mlmodel.read_bytes()).hexdigest()[:16] if mlmodel.is_file() else ""
        identity = f"{loaded.source}#{digest}"
    return BatchModel(
        predictor=loaded.predictor,
        name=loaded.name,
        version=loaded.version,
        identity=identity,
        kind="local",
        path=local,
        is_llm=_is_llm(loaded.predictor),
    )


def _load_package(path: Path) -> BatchModel:
    from ame.packaging.opener import open_package

    model = open_package(path)
    return BatchModel(
        predictor=model,
        name=model.name,
        version=model.version,
        identity=f"package:{path.resolve()}#{model.manifest.package_id}",
        kind="package",
        path=str(path.resolve()),
        is_llm=False,
    )


def load_for_worker(spec: dict[str, str]) -> Any:
    """The predictor of ``BatchModel.worker_spec()``, loaded in this (worker) process."""
    if spec["kind"] == "package":
        from ame.packaging.opener import open_package

        return open_package(spec["path"])
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(spec["path"], suppress_warnings=True)
