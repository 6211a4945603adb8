"""The bundled examples and the golden-path scaffold, run through ``ame train`` as written."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import httpx
import mlflow
import pytest

from ame.tasks.resources import gpu_count
from tests.lifecycle.conftest import REPO, ame, copy_example

pytestmark = pytest.mark.slow


def _client(root: Path) -> mlflow.MlflowClient:
    uri = f"sqlite:///{root / '.ame' / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_seed_002_ame_demo_trains_validates_and_deploys(tmp_path: Path) -> None:
    copy_example(["logreg", "shared-templates"], tmp_path)
    root = tmp_path / "logreg"
    try:
        result = ame(root, "train", "logreg")
        assert result.returncode == 0, result.stdout + result.stderr
        version = _client(root).get_model_version("logreg", "1")
        assert version.tags["ame.validation"] == "passed"
        listing = json.loads(ame(root, "deployment", "list", "--json", check=True).stdout)
        url = listing[0]["url"]
        answer = httpx.post(f"{url}/invocations", json={"inputs": [[-2.0], [2.0]]}, timeout=10)
        assert answer.json() == {"predictions": [0, 1]}
    finally:
        ame(root, "deployment", "stop", "logreg")


def test_seed_000_models_docs_example_trains_with_poetry(tmp_path: Path) -> None:
    copy_example(["xgboost_project", "shared_templates"], tmp_path)
    root = tmp_path / "xgboost_project"
    # As written, the task asks for a GPU; on a machine without one ame says so
    # before anything runs, and --cpu-only runs it anyway.
    if gpu_count() == 0:
        refused = ame(root, "train", "product_recommendor")
        assert refused.returncode == 2
        assert "nvidia.com/gpu" in refused.stderr and "has 0" in refused.stderr
        assert not (root / ".ame" / "mlflow.db").exists() or not _client(
            root
        ).search_model_versions("name='product_recommendor'")
    result = ame(root, "train", "product_recommendor", "--cpu-only", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    version = _client(root).get_model_version("product_recommendor", "1")
    assert version.tags["ame.validation"] == "skipped"


def test_init_then_train_works_on_a_fresh_project(tmp_path: Path) -> None:
    created = ame(tmp_path, "init", "demo")
    assert created.returncode == 0, created.stderr
    root = tmp_path / "demo"
    assert ".ame/" in (root / ".gitignore").read_text()
    try:
        result = ame(root, "train", "demo_model", timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        version = _client(root).get_model_version("demo_model", "1")
        assert version.tags["ame.code_version"] == "1.0.0"
        assert version.tags["ame.validation"] == "passed"
        listing = json.loads(ame(root, "deployment", "list", "--json", check=True).stdout)
        row = {
            "sepal_length": 5.0,
            "sepal_width": 3.4,
            "petal_length": 1.5,
            "petal_width": 0.2,
        }
        answer = httpx.post(
            f"{listing[0]['url']}/invocations", json={"dataframe_records": [row]}, timeout=10
        )
        assert answer.json() == {"predictions": [{"species": "setosa"}]}
        again = ame(root, "train", "demo_model")
        assert again.returncode == 2 and "code version 1.0.0" in again.stderr
    finally:
        ame(root, "deployment", "stop", "demo_model")


def test_init_refuses_to_overwrite_a_project(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("project: mine\n")
    result = ame(tmp_path, "init", ".")
    assert result.returncode == 2
    assert "already has ame.yml" in result.stderr
    assert (tmp_path / "ame.yml").read_text() == "project: mine\n"


def test_examples_golden_is_the_scaffold_output(tmp_path: Path) -> None:
    assert ame(tmp_path, "init", "golden", "--name", "golden").returncode == 0
    comparison = filecmp.dircmp(
        tmp_path / "golden", REPO / "examples" / "golden", ignore=["__pycache__", ".ame"]
    )

    def differences(c: filecmp.dircmp) -> list[str]:  # type: ignore[type-arg]
        found = c.left_only + c.right_only + c.diff_files
        for sub in c.subdirs.values():
            found += differences(sub)
        return found

    assert differences(comparison) == []
