"""End-to-end: ``ame train`` trains, validates, promotes and deploys, through the real CLI."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest

from tests.helpers import wait_until
from tests.lifecycle.conftest import ame

pytestmark = pytest.mark.slow


def _client(root: Path) -> mlflow.MlflowClient:
    uri = f"sqlite:///{root / '.ame' / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _served_version(url: str, model: str) -> str:
    return str(httpx.get(f"{url}/v2/models/{model}", timeout=10).json()["versions"][0])


def _deployment_url(root: Path, model: str) -> str:
    listing = json.loads(ame(root, "deployment", "list", "--json", check=True).stdout)
    return next(d["url"] for d in listing if d["model"] == model)


class _Load(threading.Thread):
    """Sends predictions without pause until stopped; counts failures."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.errors = url, 0, 0, []  # type: ignore[var-annotated]
        self._stop_event = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop_event.is_set():
                try:
                    r = client.post(f"{self.url}/invocations", json={"inputs": [[-2.0], [3.0]]})
                    if r.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed += 1
                        self.errors.append(r.text)
                except httpx.HTTPError as exc:
                    self.failed += 1
                    self.errors.append(repr(exc))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


@pytest.mark.timeout(900)  # three trainings and a live swap: slow on a loaded 2-core machine
def test_passing_model_is_promoted_deployed_and_swapped_without_failed_requests(
    project_factory, unique_name: str
) -> None:
    root = project_factory(unique_name, auto_deploy=True)
    first = ame(root, "train", unique_name)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "validation passed" in first.stdout

    client = _client(root)
    v1 = client.get_model_version(unique_name, "1")
    assert v1.tags["ame.validation"] == "passed"
    assert v1.tags["ame.run_id"] == v1.run_id
    assert "ame.version" in v1.tags
    assert str(client.get_model_version_by_alias(unique_name, "champion").version) == "1"

    url = _deployment_url(root, unique_name)
    answer = httpx.post(f"{url}/invocations", json={"inputs": [[-2.0], [3.0]]}, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"predictions": [0, 1]}
    assert _served_version(url, unique_name) == "1"

    # Version 2 passes: the running deployment of M@champion swaps to it while
    # requests keep flowing, and none of them fails.
    load = _Load(url)
    load.start()
    (root / "flip").write_text("")
    second = ame(root, "train", unique_name)
    assert second.returncode == 0, second.stdout + second.stderr
    wait_until(
        lambda: _served_version(url, unique_name) == "2", timeout=60, what="the swap to version 2"
    )
    # Requests keep being answered after the swap, by version 2, before the load stops.
    after = load.ok
    wait_until(lambda: load.ok >= after + 10, timeout=60, what="answers after the swap")
    load.stop()
    assert _served_version(url, unique_name) == "2"
    assert load.failed == 0, load.errors[:3]
    assert load.ok > 20
    assert httpx.post(f"{url}/invocations", json={"inputs": [[-2.0]]}).json() == {
        "predictions": [1]
    }

    # Version 3 fails validation: registered and tagged, never promoted or
    # deployed; the previous champion keeps serving.
    (root / "fail-validation").write_text("")
    third = ame(root, "train", unique_name)
    assert third.returncode == 1
    assert "failed validation" in third.stderr
    assert "score below threshold" in third.stderr  # the validation log's last lines
    assert client.get_model_version(unique_name, "3").tags["ame.validation"] == "failed"
    assert str(client.get_model_version_by_alias(unique_name, "champion").version) == "2"
    assert _served_version(url, unique_name) == "2"

    status = json.loads(ame(root, "status", "--json", check=True).stdout)
    row = next(r for r in status if r["model"] == unique_name)
    assert row["latest_version"] == "3" and row["latest_validation"] == "failed"
    assert row["champion_version"] == "2" and row["deployed_version"] == "2"
    assert row["deployment_url"] == url


def test_model_only_logged_in_the_run_is_registered_by_ame(
    project_factory, unique_name: str
) -> None:
    root = project_factory(unique_name, validation=False)
    (root / "mode").write_text("log-only")
    result = ame(root, "train", unique_name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no validation task" in result.stdout
    version = _client(root).get_model_version(unique_name, "1")
    assert version.tags["ame.validation"] == "skipped"
    assert str(_client(root).get_model_version_by_alias(unique_name, "champion").version) == "1"
    mlflow.set_tracking_uri(f"sqlite:///{root / '.ame' / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{root / '.ame' / 'mlflow.db'}")
    loaded = mlflow.pyfunc.load_model(f"models:/{unique_name}/1")
    assert list(loaded.predict(np.array([[3.0]]))) == [1]


def test_training_that_produces_no_model_fails_clearly(project_factory, unique_name: str) -> None:
    root = project_factory(unique_name)
    (root / "mode").write_text("nothing")
    result = ame(root, "train", unique_name)
    assert result.returncode == 1
    assert "produced no model" in result.stderr
    assert "Traceback" not in result.stderr
    assert _client(root).search_model_versions(f"name='{unique_name}'") == []


def test_failing_training_task_exits_1_with_its_log(project_factory, unique_name: str) -> None:
    root = project_factory(unique_name)
    (root / "train.py").write_text("print('loading data'); raise SystemExit(3)\n")
    result = ame(root, "train", unique_name)
    assert result.returncode == 1
    assert "training task 'train' failed with exit code 3" in result.stderr
    assert "loading data" in result.stderr


def test_retraining_the_same_code_version_is_refused(project_factory, unique_name: str) -> None:
    root = project_factory(unique_name)
    (root / "common").mkdir()
    (root / "common" / "__init__.py").write_text('__version__ = "2.1.0"\n')
    assert ame(root, "train", unique_name).returncode == 0
    assert _client(root).get_model_version(unique_name, "1").tags["ame.code_version"] == "2.1.0"

    again = ame(root, "train", unique_name)
    assert again.returncode == 2
    assert "already trained from code version 2.1.0" in again.stderr
    assert len(_client(root).search_model_versions(f"name='{unique_name}'")) == 1

    allowed = ame(root, "train", unique_name, "--allow-same-version")
    assert allowed.returncode == 0, allowed.stderr
    (root / "common" / "__init__.py").write_text('__version__ = "2.2.0"\n')
    assert ame(root, "train", unique_name).returncode == 0
    assert len(_client(root).search_model_versions(f"name='{unique_name}'")) == 3


def test_model_validate_reruns_validation_and_can_promote(
    project_factory, unique_name: str
) -> None:
    root = project_factory(unique_name)
    (root / "fail-validation").write_text("")
    assert ame(root, "train", unique_name).returncode == 1
    failed = ame(root, "model", "validate", unique_name, "--version", "1")
    assert failed.returncode == 1
    (root / "fail-validation").unlink()
    passed = ame(root, "model", "validate", unique_name, "--version", "1", "--promote")
    assert passed.returncode == 0, passed.stderr
    client = _client(root)
    assert client.get_model_version(unique_name, "1").tags["ame.validation"] == "passed"
    assert str(client.get_model_version_by_alias(unique_name, "champion").version) == "1"
    missing = ame(root, "model", "validate", unique_name, "--version", "9")
    assert missing.returncode == 2


def test_unknown_model_is_a_one_line_error(project_factory, unique_name: str) -> None:
    root = project_factory(unique_name)
    result = ame(root, "train", "nope")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no model 'nope' in {root / 'ame.yml'} (models: {unique_name})"
    ]
