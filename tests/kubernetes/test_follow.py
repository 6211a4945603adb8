"""When an alias moves, the Kubernetes Deployment that follows it is rendered again and applied.

Tested without an API server (none can be had, none is faked): the follow
decision on the official client's typed Deployments (which follow the moved
alias and are pinned to another version), the re-rendered objects (checked
strict against the official schemas) and the apply calls made of them; end
to end with a real MLflow server and the CLI, that the alias moves whatever
the cluster does: an unreachable one is one warning line, and a project off
kubernetes asks no cluster at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ame.backends.kubernetes.apply import Target, apply_calls
from ame.backends.kubernetes.follow import (
    followers,
    on_kubernetes,
    pinned_version,
    plan_follow,
    stale,
)
from ame.backends.kubernetes.options import RenderOptions, ServedVersion
from ame.backends.kubernetes.render import render_project
from ame.backends.kubernetes.source import project_source
from ame.spec import load_project
from tests.kubernetes.conftest import ame, write_project
from tests.kubernetes.shapes import NS, checked, dead_kubeconfig, live_deployment, typed


@dataclass(frozen=True)
class TwoVersions:
    """A model on the session's MLflow server with versions 1 and 2, @champion on 1."""

    tracking_uri: str
    name: str


@pytest.fixture(scope="module")
def two_versions(mlflow_server: str) -> TwoVersions:
    import mlflow
    from mlflow import MlflowClient

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input

    name = f"follow-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    mlflow.set_experiment(f"k8s-follow-{name}")
    for _ in range(2):
        with mlflow.start_run():
            mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name=name)
    MlflowClient(mlflow_server, mlflow_server).set_registered_model_alias(name, "champion", "1")
    return TwoVersions(mlflow_server, name)


def _project(root: Path, model: str, backend: str = "kubernetes") -> Path:
    """A project on ``backend`` (off kubernetes: no ``backend.kubernetes`` section either)."""
    cluster = f"\n          kubernetes: {{namespace: {NS}}}" if backend == "kubernetes" else ""
    return write_project(
        root,
        f"""
        project: shop
        backend:
          kind: {backend}{cluster}
        models:
          - name: {model}
            deployment: {{replicas: 1}}
        """,
    )


def _rendered(root: Path, model: str, version: str) -> dict[str, dict[str, Any]]:
    project = load_project(root)
    options = RenderOptions(
        tracking_uri="http://mlflow.example:5000",
        source=project_source(project, "archive"),
        versions={model: ServedVersion(version)},
    )
    return {r.obj["kind"]: r.obj for r in render_project(project, options)}


def _alias(root: Path, model: str, version: str, uri: str, env: dict[str, str]) -> Any:
    return ame("model", "alias", model, "champion", version, "-f", str(root),
               "--tracking-uri", uri, env=env)  # fmt: skip


def _champion(uri: str, name: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(uri, uri).get_model_version_by_alias(name, "champion").version)


def test_the_follow_decision_on_typed_deployments(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop", "iris")
    on_one = live_deployment(_rendered(root, "iris", "1")["Deployment"], ready=1)
    assert followers([on_one], "iris", "champion") == [on_one]
    assert followers([on_one], "iris", "canary") == []
    assert followers([on_one], "other", "champion") == []
    assert pinned_version(on_one) == "1"
    # Moved to 2: the Deployment on 1 is stale and is re-applied; moved to 1, nothing is.
    assert stale([on_one], "iris", "champion", "2") == [on_one]
    assert stale([on_one], "iris", "champion", "1") == []
    # One rendered before any version was promoted (no pin) follows too, and is stale.
    bare = _rendered(root, "iris", "1")["Deployment"]
    del bare["metadata"]["annotations"]["ame.dev/model-version"]
    unpinned = live_deployment(bare, ready=1)
    assert pinned_version(unpinned) is None
    assert stale([unpinned], "iris", "champion", "1") == [unpinned]


def test_the_reapplied_objects_are_pinned_and_valid(tmp_path: Path) -> None:
    root = _project(tmp_path / "shop", "iris")
    project = load_project(root)
    uri = "http://mlflow.example:5000"
    plan = plan_follow(project, "iris", "2", uri, Target(None, NS))
    assert plan.deployment == "iris"
    deployment, service = (r.obj for r in plan.objects)
    for obj in (deployment, service):
        checked(obj)  # strict, 1.25 and 1.37
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["ame", "serve", "iris/2"]
    assert {"name": "AME_MODEL_VERSION", "value": "2"} in container["env"]
    assert {"name": "MLFLOW_TRACKING_URI", "value": uri} in container["env"]
    assert deployment["metadata"]["annotations"]["ame.dev/model-version"] == "2"
    assert deployment["metadata"]["annotations"]["ame.dev/follows"] == "iris@champion"
    assert [c.what for c in apply_calls(plan)] == [
        "applying Deployment/iris", "applying Service/iris",
    ]  # fmt: skip
    assert all(c.args[1] == NS for c in apply_calls(plan))
    # Re-rendered from the Deployment the cluster lists, it follows the same alias.
    assert followers([typed(deployment)], "iris", "champion")


def test_which_projects_follow_on_kubernetes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on = load_project(_project(tmp_path / "on", "iris"))
    off = load_project(_project(tmp_path / "off", "iris", backend="local"))
    assert on_kubernetes(on) and not on_kubernetes(off)
    monkeypatch.setenv("AME_BACKEND", "kubernetes")
    assert on_kubernetes(off)


def test_an_unreachable_cluster_does_not_stop_the_alias(
    tmp_path: Path, two_versions: TwoVersions
) -> None:
    name, uri = two_versions.name, two_versions.tracking_uri
    root = _project(tmp_path / "shop", name)
    dead, server = dead_kubeconfig(tmp_path)
    done = _alias(root, name, "1", uri, {"KUBECONFIG": str(dead), "AME_BACKEND": ""})
    assert done.returncode == 0, done.stderr
    assert _champion(uri, name) == "1"
    warning = [line for line in done.stderr.splitlines() if "not re-applied" in line]
    assert len(warning) == 1, done.stderr
    assert f"run `ame deploy {name} --backend kubernetes`" in warning[0]
    assert f"no Kubernetes API server answered at {server}" in warning[0]


def test_a_project_off_kubernetes_asks_no_cluster(
    tmp_path: Path, two_versions: TwoVersions
) -> None:
    """The same unreachable kubeconfig that warns above: off kubernetes, not a word of it."""
    name, uri = two_versions.name, two_versions.tracking_uri
    root = _project(tmp_path / "shop", name, backend="local")
    dead, _ = dead_kubeconfig(tmp_path)
    env = {"KUBECONFIG": str(dead), "AME_BACKEND": ""}
    done = _alias(root, name, "2", uri, env)
    assert done.returncode == 0, done.stderr
    assert _champion(uri, name) == "2"
    assert "Kubernetes" not in done.stderr and "not re-applied" not in done.stderr, done.stderr
    done = _alias(root, name, "1", uri, env)  # back, for the other tests
    assert done.returncode == 0, done.stderr
