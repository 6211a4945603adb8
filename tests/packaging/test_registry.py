"""A package registered as a ``packaged-encrypted`` version loads like any model.

Through plain ``mlflow.pyfunc.load_model`` and through ame's ``CustomLoader``,
with the key in the loading process's environment, against the embedded store
and against the real ``mlflow server`` of the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ame.packaging
from ame.errors import WrongKeyError
from ame.packaging.errors import KeyRequiredError
from ame.packaging.keys import generate_key_file

KEY_VARS = ("AME_PACKAGE_KEY_FILE", "AME_PACKAGE_KEY", "AME_PACKAGE_PASSPHRASE")


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)


def _load(uri: str) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri)


def test_register_and_load_with_key_from_env(
    sklearn_model: Any, tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from ame.registry.loaders import CustomLoader
    from ame.registry.store import resolve_store

    key_file = tmp_path / "k.key"
    key = generate_key_file(key_file)
    out = tmp_path / "sk.amepkg"
    built = ame.packaging.build_package(
        sklearn_model.ref,
        out,
        key=key,
        tracking_uri=sklearn_model.tracking_uri,
        project_root=sklearn_model.project,
    )
    reg = ame.packaging.register_package(
        out,
        unique_name,
        tracking_uri=sklearn_model.tracking_uri,
        project_root=sklearn_model.project,
    )
    assert reg.model_type == "packaged-encrypted" and reg.key_id == built.key_id
    client = MlflowClient(sklearn_model.tracking_uri, sklearn_model.tracking_uri)
    version = client.get_model_version(unique_name, reg.version)
    assert version.tags["ame.model_type"] == "packaged-encrypted"
    assert version.tags["ame.package.key_id"] == built.key_id
    assert version.tags["ame.package.source"] == f"models:/{sklearn_model.ref}"

    # No key: a clear refusal naming the variables to set.
    with pytest.raises(KeyRequiredError, match="AME_PACKAGE_KEY_FILE"):
        _load(reg.uri)
    monkeypatch.setenv("AME_PACKAGE_KEY", "ab" * 32)
    with pytest.raises(WrongKeyError, match="wrong key for package"):
        _load(reg.uri)

    monkeypatch.setenv("AME_PACKAGE_KEY", key.hex())
    got = _load(reg.uri).predict(sklearn_model.inputs)
    np.testing.assert_array_equal(np.asarray(got), sklearn_model.expected)

    monkeypatch.delenv("AME_PACKAGE_KEY")
    monkeypatch.setenv("AME_PACKAGE_KEY_FILE", str(key_file))
    store = resolve_store(sklearn_model.tracking_uri, sklearn_model.project)
    outputs = (
        CustomLoader(store=store).load(f"{unique_name}/{reg.version}").predict(sklearn_model.inputs)
    )
    np.testing.assert_array_equal(
        np.asarray(outputs.predictions).ravel(), np.asarray(sklearn_model.expected)
    )


def test_register_on_a_remote_server_with_passphrase(
    files_model: Any,
    mlflow_server: str,
    tmp_path: Path,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "files.amepkg"
    ame.packaging.build_package(
        files_model.ref,
        out,
        passphrase="s3cret pass",
        tracking_uri=files_model.tracking_uri,
        project_root=files_model.project,
    )
    monkeypatch.chdir(tmp_path)
    reg = ame.packaging.register_package(out, unique_name, tracking_uri=mlflow_server)
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    monkeypatch.setenv("AME_PACKAGE_PASSPHRASE", "s3cret pass")
    model = _load(reg.uri)
    got = model.predict(files_model.inputs, params={"scale": 3.0})
    np.testing.assert_allclose(got, files_model.expected * 3.0)
    # The signature travelled from the manifest to the registered wrapper.
    assert model.metadata.get_input_schema().input_names() == ["a", "b", "c"]
