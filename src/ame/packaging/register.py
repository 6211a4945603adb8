"""Registering a package as a model version of type ``packaged-encrypted``.

The version is an ordinary pyfunc model (``PackagedPythonModel``) whose single
artifact is the package file as built, so the registry stores only ciphertext
and any MLflow client can load it once the key is in its environment. Tags say
what it is: ``ame.model_type`` (``packaged-encrypted``, or ``packaged`` for an
unencrypted package), the key id, and the version it was packaged from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Optional

from ame.errors import PackageError
from ame.packaging.reader import PackageReader

log = logging.getLogger(__name__)

MODEL_TYPE_TAG = "ame.model_type"
ENCRYPTED_TYPE = "packaged-encrypted"
PLAIN_TYPE = "packaged"


@dataclass(frozen=True)
class RegisteredPackage:
    """The version a package became."""

    name: str
    version: str
    model_type: str
    key_id: Optional[str]
    uri: str


def register_package(
    path: str | Path,
    name: str,
    *,
    tracking_uri: Optional[str] = None,
    project_root: Optional[Path] = None,
    description: Optional[str] = None,
) -> RegisteredPackage:
    """Register the package at ``path`` as a new version of model ``name``.

    No key is needed: the manifest is read in clear text and the package is
    stored as it is. If tagging fails after the version was created, the
    version is deleted again, so no untagged half-registered version remains.
    """
    import mlflow
    from mlflow.models import ModelSignature

    from ame.packaging.pyfunc_model import PACKAGE_ARTIFACT, PackagedPythonModel
    from ame.registry.locking import locked_write
    from ame.registry.resolve import client_for
    from ame.registry.runs import saving_run
    from ame.registry.store import resolve_store

    path = Path(path).expanduser().resolve()
    with PackageReader(path) as reader:
        manifest = reader.manifest
        reader.check_members()
    model_type = ENCRYPTED_TYPE if manifest.encrypted else PLAIN_TYPE
    key_id = manifest.encryption.key_id if manifest.encryption else None
    # The inner signature describes the model's input; with a pre hook the
    # caller's input is whatever preprocess() accepts, which ame cannot know.
    signature = None
    if manifest.model.signature and manifest.hooks.pre is None:
        signature = ModelSignature.from_dict(manifest.model.signature)
    requirements = [*manifest.model.requirements, "cryptography>=42"]
    store = resolve_store(tracking_uri, project_root)
    client = client_for(store)
    with saving_run(store) as run_id:
        info = locked_write(
            store,
            lambda: mlflow.pyfunc.log_model(
                name="model",
                python_model=PackagedPythonModel(),
                artifacts={PACKAGE_ARTIFACT: str(path)},
                signature=signature,
                pip_requirements=requirements,
                registered_model_name=name,
                metadata={"ame_package": {"key_id": key_id, "source": manifest.model.source}},
            ),
        )
        log.info("logged package %s in run %s", path.name, run_id)
    version = str(info.registered_model_version)
    tags = {
        MODEL_TYPE_TAG: model_type,
        "ame.package.source": manifest.model.source,
        "ame.package.format_version": str(manifest.format_version),
        "ame.package.id": manifest.package_id,
    }
    if key_id:
        tags["ame.package.key_id"] = key_id
    try:
        for k, v in tags.items():
            locked_write(store, partial(client.set_model_version_tag, name, version, k, v))
        if description:
            locked_write(
                store,
                lambda: client.update_model_version(name, version, description=description),
            )
    except Exception as exc:
        locked_write(store, lambda: client.delete_model_version(name, version))
        raise PackageError(f"could not tag the new version {name}/{version}: {exc}") from exc
    return RegisteredPackage(name, version, model_type, key_id, f"models:/{name}/{version}")
