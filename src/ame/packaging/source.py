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
from ame.registry.resolved import ResolvedVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ModelFiles(ResolvedVersion):
    """A local MLflow model directory and what the manifest says about it.

    The version itself (``uri``, ``name``, ``version``, ``run_id``) is the
    registry's one record of a resolved version; ``source``, which the manifest
    stores, is its URI (or the directory or files it was made from). A package
    always has a name and a version: a directory's are given or defaulted.
    """

    name: str
    version: str
    directory: Path
    flavor: str
    flavors: list[str]
    signature: Optional[dict[str, Any]]
    requirements: list[str]
    mlflow_version: Optional[str]

    @property
    def source(self) -> str:
        """Where the files came from: ``models:/name/version``, a directory, ``files:...``."""
        return self.uri


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
        uri=source,
        name=name,
        version=version,
        directory=directory,
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

    from ame.registry.loaders import resolve_model
    from ame.registry.store import resolve_store
    from ame.registry.uris import parse_model_ref

    if parse_model_ref(str(model)).run_id is not None:
        raise PackageError("package a registered version (NAME/VERSION or NAME@ALIAS), not a run")
    # The registry's one resolution (an alias or "latest" pinned to a number).
    found = resolve_model(str(model), resolve_store(tracking_uri, project_root))
    with tempfile.TemporaryDirectory(prefix="ame-build-") as tmp:
        log.info("downloading %s", found.uri)
        path = mlflow.artifacts.download_artifacts(artifact_uri=found.uri, dst_path=tmp)
        yield describe_model_dir(Path(path), str(found.name), str(found.version), found.uri)


@dataclass(frozen=True)
class PlainFiles:
    """Plain model files (not an MLflow model) staged for a package, and their names.

    ``names`` are the files as the user's folders show them (``models/model.pkl``
    for ``--files models/``), which is how a user manifest names them.
    """

    model: ModelFiles
    names: list[str]


def user_names(sources: list[Path]) -> list[str]:
    """Every file under ``sources`` named as it is staged: folders keep their own name."""
    names: list[str] = []
    for source in sources:
        if source.is_dir():
            names += sorted(
                f"{source.name}/{p.relative_to(source).as_posix()}"
                for p in source.rglob("*")
                if p.is_file()
            )
        else:
            names.append(source.name)
    return names


@contextmanager
def plain_files(
    paths: list[Path],
    *,
    entry_point: Optional[str] = None,
    requirements: Optional[list[str]] = None,
    name: str,
    version: str,
) -> Iterator[PlainFiles]:
    """Yield ``paths`` made into an MLflow model directory, in a temporary place.

    A package holds an MLflow model so that it opens with plain
    ``mlflow.pyfunc.load_model``. Plain files become one the way ``ame model
    register --files`` makes a version (``ame.registry.files``): staged side by
    side as the artifact ``files`` of a pyfunc whose code turns them into a
    model through ``entry_point``, a ``hook.py`` or a single pickle. A single
    folder that already is an MLflow model is packaged as it is.
    """
    import mlflow.pyfunc

    from ame.errors import UnreadableFilesError
    from ame.registry.files import CODE_FILE, check_loader, check_sources, stage

    try:
        sources = check_sources(paths)
    except UnreadableFilesError as exc:
        raise PackageError(str(exc)) from None
    if len(sources) == 1 and sources[0].is_dir() and (sources[0] / "MLmodel").is_file():
        if entry_point:
            raise PackageError(
                f"{sources[0]} is an MLflow model: it needs no entry_point (the manifest's "
                "entry_point is the loader for files that are not an MLflow model)"
            )
        yield PlainFiles(
            describe_model_dir(sources[0], name, version, str(sources[0])), user_names(sources)
        )
        return
    check_loader(entry_point)
    with tempfile.TemporaryDirectory(prefix="ame-build-files-") as tmp:
        staged = Path(tmp) / "files"
        staged.mkdir()
        stage(sources, staged)
        target = Path(tmp) / "model"
        log.info("making an MLflow model of %d plain sources", len(sources))
        mlflow.pyfunc.save_model(
            path=str(target),
            python_model=str(CODE_FILE),
            artifacts={"files": str(staged)},
            model_config={"loader": entry_point or "", "sources": [s.name for s in sources]},
            # Given, never inferred: inference loads the model in a subprocess.
            pip_requirements=requirements or ["mlflow"],
        )
        source = "files:" + ",".join(s.name for s in sources)
        yield PlainFiles(describe_model_dir(target, name, version, source), user_names(sources))
