"""MLflow's errors become ame's by their error code, once, inside ``ame.registry``.

Each case runs on both stores (embedded SQLite and a real ``mlflow server``):
the codes are the same, the wording is not, and nothing here depends on it.
The unreachable store is a real closed port on 127.0.0.1.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2

from ame.errors import (
    AlreadyExistsError,
    AmeError,
    InvalidValueError,
    ModelNotFoundError,
    RegistryError,
    ResourceNotFoundError,
    StoreAccessError,
    StoreError,
    UsageError,
    VersionInUseError,
)
from ame.registry import Registry
from ame.registry.errors import is_not_found, translate
from ame.registry.registration import (
    FilesSource,
    RunSource,
    pick_source,
    register_new_version,
)
from ame.registry.store import Store, resolve_store


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (databricks_pb2.RESOURCE_DOES_NOT_EXIST, ResourceNotFoundError),
        (databricks_pb2.RESOURCE_ALREADY_EXISTS, AlreadyExistsError),
        (databricks_pb2.INVALID_PARAMETER_VALUE, InvalidValueError),
        (databricks_pb2.PERMISSION_DENIED, StoreAccessError),
        (databricks_pb2.TEMPORARILY_UNAVAILABLE, StoreError),
        (databricks_pb2.INTERNAL_ERROR, RegistryError),
    ],
)
def test_translation_is_by_code_not_by_wording(code: int, kind: type[AmeError]) -> None:
    # The same misleading text for every code: only the code decides.
    exc = MlflowException("Connection reset; API request not found\nsecond line", error_code=code)
    translated = translate(exc)
    assert type(translated) is kind
    assert str(translated) == "Connection reset; API request not found"
    assert is_not_found(exc) is (kind is ResourceNotFoundError)
    assert translate(ValueError("Connection refused")) is None  # not MLflow's, not a socket


def test_store_errors_by_code(store: Store, registry: Registry, unique_name: str) -> None:
    with pytest.raises(ModelNotFoundError) as missing:
        registry.get_model(unique_name)
    assert isinstance(missing.value, ResourceNotFoundError)
    registry.create_model(unique_name)
    with pytest.raises(AlreadyExistsError, match="already exists"):
        registry.create_model(unique_name)
    with pytest.raises(InvalidValueError):
        registry.list_models("nonsense ===")
    with pytest.raises(InvalidValueError):
        list(registry.iter_versions(unique_name, "nonsense ==="))  # a generator method too
    registry.delete_model(unique_name)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_one_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{_closed_port()}"
    (tmp_path / "ame.yml").write_text("project: unreachable\n")
    registry = Registry(resolve_store(url, tmp_path))
    for call in (
        lambda: registry.get_model("m"),
        lambda: list(registry.iter_models()),
        lambda: registry.resolve("m@champion"),
    ):
        with pytest.raises(StoreError, match=f"cannot reach the MLflow store {url}"):
            call()


def test_pick_source_rules(tmp_path: Path) -> None:
    for kwargs, message in (
        ({}, "give exactly one of"),
        ({"run": "r1", "files": [tmp_path]}, "give exactly one of"),
        ({"files": [tmp_path], "artifact_path": "model"}, "--path goes with --run"),
        ({"run": "r1", "loader": "m:f"}, "--loader and --pip go with --files"),
    ):
        with pytest.raises(UsageError, match=message):
            pick_source(**kwargs)
    assert pick_source(run="r1", artifact_path="m") == RunSource("r1", "m")
    picked = pick_source(files=[tmp_path], pip_requirements=["x"])
    assert picked == FilesSource((tmp_path,), None, ("x",))


def _weights(tmp_path: Path) -> Path:
    (tmp_path / "w.txt").write_text("1.0\n")
    return tmp_path / "w.txt"


def test_alias_needing_validation_is_refused_before_anything_is_written(
    registry: Registry, tmp_path: Path, unique_name: str
) -> None:
    from ame.registry.facade import UnvalidatedVersionError

    source = FilesSource((_weights(tmp_path),), pip_requirements=("pandas",))
    with pytest.raises(UnvalidatedVersionError, match="not validated yet"):
        register_new_version(
            registry, unique_name, source, aliases=["champion"], validation_task=True
        )
    with pytest.raises(ModelNotFoundError):
        registry.get_model(unique_name)  # no model, no version left behind


def test_delete_checks_use_before_asking(registry: Registry, logged: Any, unique_name: str) -> None:
    registry.register(unique_name, logged.model_uri)
    registry.register(unique_name, logged.model_uri)
    registry.set_alias(unique_name, "champion", 1)
    asked: list[str] = []

    def refuse(question: str) -> bool:
        asked.append(question)
        return False

    with pytest.raises(VersionInUseError, match="alias 'champion'"):
        registry.delete(unique_name, 1, confirm=refuse)
    assert asked == []  # nobody is asked about what cannot go
    assert registry.delete(unique_name, 2, confirm=refuse) is False
    assert asked == [f"delete {unique_name} version 2"]
    assert [v.version for v in registry.iter_versions(unique_name)] == ["2", "1"]
    assert registry.delete(unique_name, force=True, confirm=lambda q: "latest: 2" in q)
    with pytest.raises(ModelNotFoundError):
        registry.get_model(unique_name)
