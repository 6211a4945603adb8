"""``KubernetesBackend``: deployment list/stop/logs and backend status, up to the client call.

Tested here without an API server (none can be had on this machine, and
none is faked): the label and field selectors, the views read from the
official client's typed objects (made by its own deserializer from JSON that
passes the official schemas), the ordered deletions of ``deployment stop``
and its CronJob note, and every call ame makes, built and sent by the real
client to a closed port of 127.0.0.1 (the request it would send is in the
error). What only a cluster can check is listed in docs/kubernetes.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ame.backends.base import FAILED, FINISHED, KILLED, PENDING, RUNNING
from ame.backends.kubernetes import labels as lbl
from ame.backends.kubernetes import views
from ame.backends.kubernetes.apply import Target
from ame.backends.kubernetes.backend import (
    STOP_ORDER,
    KubernetesBackend,
    cronjobs_note,
    pods_selector,
    prefixed,
    stop_plan,
    stopped_view,
)
from ame.backends.kubernetes.options import RenderOptions, ServedVersion
from ame.backends.kubernetes.render import render_project
from ame.backends.kubernetes.source import project_source
from ame.spec import load_project
from tests.kubernetes.conftest import SERVER, ame, write_project
from tests.kubernetes.shapes import (
    NODE,
    NOT_READY_NODE,
    NS,
    STAMP,
    as_stored,
    dead_kubeconfig,
    live_deployment,
    pod_of,
    typed,
)

PROJECT = f"""
    project: shop
    backend:
      kind: kubernetes
      kubernetes: {{namespace: {NS}}}
    models:
      - name: iris
        deployment: {{replicas: 2, host: iris.example.com, enableTls: true}}
        monitoring:
          schedule: "@hourly"
      - name: churn
        deployment:
          autoscaling: {{minReplicas: 1, maxReplicas: 4, targetCpuUtilization: 70}}
    tasks:
      - name: train
        runcommand: python train.py
"""
OWNED = "ame.dev/project=shop,app.kubernetes.io/managed-by=ame"
IRIS = "ame.dev/model=iris," + OWNED


@pytest.fixture()
def project_dir(tmp_path: Path) -> Path:
    return write_project(tmp_path / "shop", PROJECT)


def _render(project_dir: Path, fmt: str = "plain") -> dict[str, dict[str, Any]]:
    project = load_project(project_dir)
    options = RenderOptions(
        tracking_uri=SERVER,
        source=project_source(project, "archive"),
        versions={"iris": ServedVersion("3"), "churn": ServedVersion("7")},
        run_id="20261201100000-ab12",
        format=fmt,  # type: ignore[arg-type]
    )
    return {
        f"{r.obj['kind']}/{r.obj['metadata']['name']}": r.obj
        for r in render_project(project, options)
    }


@pytest.fixture()
def rendered(project_dir: Path) -> dict[str, dict[str, Any]]:
    """``Kind/name`` -> the object ame renders for the project, iris on 3 and churn on 7."""
    return _render(project_dir)


# --- selectors ---------------------------------------------------------------------


def test_selectors_name_only_ames_objects(rendered: dict[str, dict[str, Any]]) -> None:
    assert lbl.label_selector(lbl.owned("shop")) == OWNED
    assert lbl.label_selector(lbl.owned("shop", "iris")) == IRIS
    assert lbl.label_selector(lbl.owned(None)) == "app.kubernetes.io/managed-by=ame"
    assert lbl.name_selector("iris") == "metadata.name=iris"
    assert lbl.job_pods_selector("train-1") == "job-name=train-1"
    # A model name too long for a label value is shortened in the selector, like the label.
    long = "m" * 80
    assert len(lbl.owned("shop", long)[lbl.MODEL]) <= 63
    # Every object rendered for iris carries every label of its selector.
    for key, obj in rendered.items():
        if key.endswith("/iris") or key.startswith("CronJob/iris"):
            assert lbl.owned("shop", "iris").items() <= obj["metadata"]["labels"].items(), key
    # The pods of a Deployment: its own selector, which its monitoring CronJob's pods lack.
    iris = live_deployment(rendered["Deployment/iris"], ready=2)
    assert pods_selector(iris) == (
        "ame.dev/model=iris,ame.dev/project=shop,app.kubernetes.io/managed-by=ame,"
        "app.kubernetes.io/name=iris"
    )
    (cron,) = [o for k, o in rendered.items() if k.startswith("CronJob/iris")]
    cron_pod_labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert not (iris.spec.selector.match_labels.items() <= cron_pod_labels.items())


def test_backend_selectors_and_where(project_dir: Path) -> None:
    backend = KubernetesBackend(load_project(project_dir), target=Target("kind-ame", NS))
    assert backend.selector() == OWNED and backend.selector("iris") == IRIS
    assert backend.where() == "kind-ame, namespace ml"
    bare = KubernetesBackend(None, target=Target(None, "default"))
    assert bare.selector() == "app.kubernetes.io/managed-by=ame"
    assert bare.where() == "current context, namespace default"


# --- views from the client's typed objects --------------------------------------------


def test_deployment_views_from_typed_objects(rendered: dict[str, dict[str, Any]]) -> None:
    iris = rendered["Deployment/iris"]
    ready = views.deployment_view(live_deployment(iris, ready=2))
    assert (ready.model, ready.version, ready.ref, ready.state) == (
        "iris", "3", "iris@champion", "ready",
    )  # fmt: skip
    assert ready.url == "https://iris.example.com/" and ready.replicas == 2
    assert ready.detail == {"namespace": NS, "deployment": "iris", "ready": "2/2", "port": 8080}
    assert views.deployment_view(live_deployment(iris, ready=1)).state == "not ready"
    assert views.deployment_view(live_deployment(iris, ready=2, updated=1)).state == "rolling out"
    churn = views.deployment_view(live_deployment(rendered["Deployment/churn"], ready=1))
    assert churn.url == f"http://churn.{NS}.svc" and churn.version == "7"
    # Under an HPA the Deployment has no replicas of its own: the server's default, 1.
    assert churn.replicas == 1


def test_rollout_decisions(rendered: dict[str, dict[str, Any]]) -> None:
    iris = rendered["Deployment/iris"]
    assert views.rollout_available(live_deployment(iris, ready=2))
    assert views.rollout_done(live_deployment(iris, ready=1))
    assert not views.rollout_available(live_deployment(iris, ready=1))
    assert not views.rollout_done(live_deployment(iris, ready=2, updated=1))
    # The controller has not seen the newest spec yet (generation 3, observed 2).
    stale = as_stored(iris, generation=3)
    stale["status"] = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                       "availableReplicas": 2}  # fmt: skip
    assert not views.rollout_done(typed(stale))
    fresh = as_stored(iris)
    assert not views.rollout_done(typed(fresh))  # no status yet: just applied


def test_model_deployments_tell_models_apart(rendered: dict[str, dict[str, Any]]) -> None:
    stranger = typed(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS, "labels": lbl.owned("shop")},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        }
    )
    listed = [
        live_deployment(rendered["Deployment/iris"], ready=2),
        stranger,  # ame's labels but no model: not a model deployment
        live_deployment(rendered["Deployment/churn"], ready=0),
    ]
    assert [views.model_name(d) for d in views.model_deployments(listed)] == ["churn", "iris"]
    assert [views.name_of(d) for d in views.model_deployments(listed, "iris")] == ["iris"]
    # Another model whose label value was shortened alike is told apart by the annotation.
    other = as_stored(rendered["Deployment/iris"])
    other["metadata"]["name"] = "iris-2"
    other["metadata"]["annotations"]["ame.dev/follows"] = "iris_2@champion"
    assert views.model_deployments([typed(other)], "iris") == []


def test_job_views(rendered: dict[str, dict[str, Any]]) -> None:
    job = as_stored(rendered["Job/train-20261201100000-ab12"])

    def with_status(status: dict[str, Any]) -> Any:
        return typed({**job, "status": status})

    def condition(kind: str, reason: str) -> dict[str, Any]:
        return {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": STAMP}

    assert views.job_status(typed(job)) == PENDING
    assert views.job_status(with_status({"active": 1, "startTime": STAMP})) == RUNNING
    done = with_status({"succeeded": 1, "conditions": [condition("Complete", "Completed")]})
    assert views.job_status(done) == FINISHED and views.job_ended(done)
    failed = with_status({"failed": 1, "conditions": [condition("Failed", "BackoffLimitExceeded")]})
    assert views.job_status(failed) == FAILED and views.job_ended(failed)
    late = with_status({"failed": 1, "conditions": [condition("Failed", "DeadlineExceeded")]})
    assert views.job_status(late) == KILLED
    running = with_status({"active": 1, "startTime": STAMP})
    assert not views.job_ended(running)
    view = views.job_view(running)
    assert (view.id, view.task, view.project) == ("train-20261201100000-ab12", "train", "shop")
    assert view.started == 1796119200.0
    # ``backend status`` shows task Jobs only (a CronJob's Job is labelled by its task too).
    hand_made = typed({**as_stored(rendered["Job/train-20261201100000-ab12"]),
                       "metadata": {"name": "other", "labels": lbl.owned("shop")}})  # fmt: skip
    assert [j.id for j in views.task_jobs([hand_made, running])] == ["train-20261201100000-ab12"]


def test_node_views() -> None:
    node = views.node_view(typed(NODE))
    assert (node.address, node.alive, node.cpus, node.gpus, node.head) == (
        "10.1.0.5", True, 3.9, 1.0, True,
    )  # fmt: skip
    assert node.memory == 15 * 1024**3
    other = views.node_view(typed(NOT_READY_NODE))
    assert (other.alive, other.gpus, other.head) == (False, 0.0, False)
    assert other.memory == 32000000 * 1024


def test_pods_for_logs_and_a_tasks_exit_code(rendered: dict[str, dict[str, Any]]) -> None:
    iris = rendered["Deployment/iris"]
    pods = [pod_of(iris, "b2", second=9), pod_of(iris, "a1", second=20)]
    assert views.pod_names(pods) == ["iris-5d8f-b2", "iris-5d8f-a1"]  # oldest first
    assert prefixed("iris-5d8f-b2", "one\ntwo\n", several=True) == [
        "[iris-5d8f-b2] one", "[iris-5d8f-b2] two",
    ]  # fmt: skip
    assert prefixed("p", "one\n", several=False) == ["one"]

    job = rendered["Job/train-20261201100000-ab12"]
    waiting = pod_of(job, "x", second=1, phase="Pending",
                     state={"waiting": {"reason": "ContainerCreating"}})  # fmt: skip
    assert not views.pod_started(waiting, "task") and views.exit_code(waiting, "task") is None
    assert views.pod_started(pod_of(job, "x", second=1), "task")
    ended = pod_of(job, "x", second=1, phase="Failed",
                   state={"terminated": {"exitCode": 3, "reason": "Error"}})  # fmt: skip
    assert views.pod_started(ended, "task") and views.exit_code(ended, "task") == 3
    assert views.exit_code(ended, "server") is None


# --- deployment stop ---------------------------------------------------------------


def test_stop_plan_orders_the_models_objects(project_dir: Path) -> None:
    plain = _render(project_dir)
    kserve = _render(project_dir, "kserve")
    # What the model's labels find on a cluster where both formats were applied.
    found: dict[str, list[str]] = {}
    for key, obj in {**plain, **kserve}.items():
        kind, name = key.split("/", 1)
        if obj["metadata"]["labels"].get(lbl.MODEL) == "iris" and kind != "Deployment":
            found.setdefault(kind, []).append(name)
    assert "InferenceService" in found and "CronJob" in found
    plan = stop_plan(["iris"], found)
    assert plan == [
        ("PodDisruptionBudget", "iris"),
        ("Ingress", "iris"),
        ("Service", "iris"),
        ("InferenceService", "iris"),
        ("Deployment", "iris"),
    ]
    assert "CronJob" not in {kind for kind, _ in plan}  # left, and said so
    # churn: an HPA (autoscaling) goes first, and no PDB or Ingress was rendered.
    churn = {k.split("/")[0]: [k.split("/")[1]] for k in plain if k.endswith("/churn")}
    churn.pop("Deployment")
    assert stop_plan(["churn"], churn) == [
        ("HorizontalPodAutoscaler", "churn"), ("Service", "churn"), ("Deployment", "churn"),
    ]  # fmt: skip
    assert list(STOP_ORDER)[-1] == "Deployment"


def test_the_cronjobs_left_are_one_line(rendered: dict[str, dict[str, Any]]) -> None:
    names = [k.split("/", 1)[1] for k in rendered if k.startswith("CronJob/iris")]
    note = cronjobs_note("iris", names, NS, IRIS)
    assert note is not None and "\n" not in note
    assert note == (
        f"iris: CronJobs {names[0]} are left (ame deploy does not apply them); remove them "
        f"with `kubectl delete cronjob -n ml -l {IRIS}`"
    )
    assert cronjobs_note("churn", [], NS, IRIS) is None


def test_what_stop_reports(project_dir: Path, rendered: dict[str, dict[str, Any]]) -> None:
    iris = live_deployment(rendered["Deployment/iris"], ready=2)
    isvc = as_stored(_render(project_dir, "kserve")["InferenceService/iris"])
    isvc["status"] = {"url": "http://iris.ml.example.com"}
    view = stopped_view([iris], [isvc])
    assert view is not None
    assert (view.model, view.version, view.state, view.detail["deployment"]) == (
        "iris", "3", "stopped", "iris",
    )  # fmt: skip
    # Served by KServe alone (render --format kserve applied by hand): stopped as well.
    alone = stopped_view([], [isvc])
    assert alone is not None
    assert (alone.model, alone.version, alone.state, alone.url) == (
        "iris", "3", "stopped", "http://iris.ml.example.com",
    )  # fmt: skip
    assert alone.detail["deployment"] == "inferenceservice/iris"
    assert stopped_view([], []) is None  # nothing: "no Kubernetes deployment of 'iris'"


# --- end to end, with no API server ------------------------------------------------


def test_an_unreachable_cluster_is_one_line(project_dir: Path, tmp_path: Path) -> None:
    kubeconfig, server = dead_kubeconfig(tmp_path)
    env = {"KUBECONFIG": str(kubeconfig), "AME_BACKEND": ""}
    for command in (
        ("deployment", "list"),
        ("backend", "status"),
        ("deployment", "stop", "iris"),
    ):
        done = ame(*command, "--backend", "kubernetes", "-f", str(project_dir), env=env)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.strip().count("\n") == 0, done.stderr
        assert f"no Kubernetes API server answered at {server}" in done.stderr
        assert "Traceback" not in done.stderr


def test_train_on_the_kubernetes_backend_says_where_its_tasks_run(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "t",
        """
        project: t
        models:
          - name: m
            training:
              task:
                name: fit
                executor: !custom
                  command: sh -c 'exit 3'
        """,
    )
    done = ame("train", "m", "-f", str(root), "--backend", "kubernetes")
    assert done.returncode == 1, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("backend: kubernetes")]
    assert len(notes) == 1 and "run on this machine" in notes[0], done.stderr
