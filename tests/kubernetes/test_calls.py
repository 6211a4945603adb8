"""Every call ame makes, handed to the real ``kubernetes`` client with nothing listening.

The official client checks a call's arguments (pydantic) and builds its HTTP
request before it connects, so pointing it at a closed port of 127.0.0.1
shows, with no API server, that the method exists, that it takes what ame
gives it, and which request it sends: the path and query are in the
connection error, and the client's own request serializer gives the method,
headers (the apply content type) and body. Only the server's answer is left
for a real cluster (docs/kubernetes.md says how to try it).
"""

from __future__ import annotations

import base64
import inspect
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from ame.backends.kubernetes.apply import Target, apply_calls, plan_deploy, plan_task
from ame.backends.kubernetes.backend import STOP_ORDER
from ame.backends.kubernetes.cluster import (
    APPLY_PATCH,
    FIELD_MANAGER,
    Call,
    Cluster,
    ClusterUnreachableError,
    apply_call,
    delete_call,
    list_call,
)
from ame.backends.kubernetes.errors import KubernetesError
from ame.backends.kubernetes.options import RenderOptions, ServedVersion
from ame.backends.kubernetes.render import render_project
from ame.backends.kubernetes.source import project_source
from ame.spec import load_project
from ame.tasks.secrets import SecretStore
from tests.kubernetes.conftest import SERVER, write_project
from tests.kubernetes.shapes import NS, closed_port

PROJECT = """
    project: shop
    models:
      - name: iris
        deployment: {replicas: 2, host: iris.example.com, enableTls: true}
        batchInference:
          input: data/in.csv
          output: out/scored.parquet
          schedule: "0 2 * * *"
      - name: churn
        deployment:
          autoscaling: {minReplicas: 1, maxReplicas: 4}
    tasks:
      - name: train
        runcommand: python train.py
        secrets: [{key: team/api, injectAs: API_KEY}]
        triggers: {schedule: "@daily"}
      - name: prep
        runcommand: python prep.py
"""
# The REST collection of each kind, written out here (not derived from ame's tables).
COLLECTION = {
    "Deployment": "/apis/apps/v1/namespaces/ml/deployments",
    "Service": "/api/v1/namespaces/ml/services",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/ml/ingresses",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/ml/poddisruptionbudgets",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers",
    "Job": "/apis/batch/v1/namespaces/ml/jobs",
    "CronJob": "/apis/batch/v1/namespaces/ml/cronjobs",
    "Secret": "/api/v1/namespaces/ml/secrets",
    "Pod": "/api/v1/namespaces/ml/pods",
    "InferenceService": "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices",
}


@pytest.fixture()
def cluster() -> Cluster:
    """A ``Cluster`` whose official client points at a closed port (no retries: fast)."""
    from kubernetes import client

    configuration = client.Configuration(host=f"http://127.0.0.1:{closed_port()}")
    configuration.retries = 0
    return Cluster(Target(None, NS), api=client.ApiClient(configuration))


@pytest.fixture()
def objects(tmp_path: Path) -> list[dict[str, Any]]:
    """Every kind ame renders: both formats, the Secret, a run's Job."""
    project = load_project(write_project(tmp_path / "shop", PROJECT))
    options = RenderOptions(
        tracking_uri=SERVER,
        source=project_source(project, "archive"),
        versions={"iris": ServedVersion("3"), "churn": ServedVersion("7")},
    )
    kserve = RenderOptions(**{**options.__dict__, "format": "kserve"})
    out = [r.obj for r in render_project(project, options)]
    out += [r.obj for r in render_project(project, kserve, models=["iris"], schedules=False)]
    return out


def sent(cluster: Cluster, call: Call) -> str:
    """The path and query the client sent for ``call`` (it failed at the socket, as it must)."""
    with pytest.raises(ClusterUnreachableError) as caught:
        cluster.invoke(call)
    assert "no Kubernetes API server answered at http://127.0.0.1:" in str(caught.value)
    assert caught.value.url is not None
    return unquote(caught.value.url)


def request(cluster: Cluster, call: Call) -> tuple[str, dict[str, str], Any]:
    """The method, headers and body the client's own serializer makes of ``call``."""
    from kubernetes import client

    api = getattr(client, call.api)(cluster.api)
    bound = inspect.signature(getattr(api, call.method)).bind(*call.args, **call.kwargs)
    serialize = getattr(api, f"_{call.method}_serialize")
    names = inspect.signature(serialize).parameters
    method, _, headers, body, _ = serialize(
        **{n: bound.arguments.get(n, 0 if n == "_host_index" else None) for n in names}
    )
    return method, headers, body


def test_every_rendered_kind_is_applied_server_side(
    cluster: Cluster, objects: list[dict[str, Any]]
) -> None:
    kinds = {obj["kind"] for obj in objects}
    assert kinds == set(COLLECTION) - {"Pod", "Secret"}, kinds
    for obj in objects:
        call = apply_call(obj, NS)
        name = obj["metadata"]["name"]
        path = sent(cluster, call)
        assert path == f"{COLLECTION[obj['kind']]}/{name}?fieldManager=ame&force=true", path
        method, headers, body = request(cluster, call)
        assert (method, headers["Content-Type"]) == ("PATCH", APPLY_PATCH)
        assert body == obj  # what was rendered and validated is what is sent
    assert FIELD_MANAGER == "ame"
    with pytest.raises(KubernetesError, match="does not manage Namespace"):
        apply_call({"kind": "Namespace", "metadata": {"name": "x"}}, NS)


def test_stop_deletes_in_the_background_and_lists_by_label(cluster: Cluster) -> None:
    selector = "ame.dev/model=iris,ame.dev/project=shop,app.kubernetes.io/managed-by=ame"
    for kind in (*STOP_ORDER, "CronJob", "Job", "Pod"):
        path = sent(cluster, list_call(kind, NS, selector))
        assert path == f"{COLLECTION[kind]}?labelSelector={selector}", path
    for kind in STOP_ORDER:
        path = sent(cluster, delete_call(kind, "iris", NS))
        assert path == f"{COLLECTION[kind]}/iris?propagationPolicy=Background", path


def test_the_reads_and_watches_of_a_run(cluster: Cluster) -> None:
    """The thin methods that are not ``Call``s: logs, a pod, nodes, the watches."""

    def path_of(read: Any) -> str:
        with pytest.raises(ClusterUnreachableError) as caught:
            result = read()
            if not isinstance(result, (list, str)):  # a watch connects when iterated
                next(iter(result))
        assert caught.value.url is not None
        return unquote(caught.value.url)

    pods = COLLECTION["Pod"]
    assert path_of(lambda: cluster.nodes()) == "/api/v1/nodes"
    assert path_of(lambda: cluster.deployments("a=b")) == (
        f"{COLLECTION['Deployment']}?labelSelector=a=b"
    )
    assert path_of(lambda: cluster.jobs("a=b")) == f"{COLLECTION['Job']}?labelSelector=a=b"
    assert path_of(lambda: cluster.pods("a=b")) == f"{pods}?labelSelector=a=b"
    assert path_of(lambda: cluster.pod("p-1")) == f"{pods}/p-1"
    assert path_of(lambda: cluster.pod_log("p-1", "server", 5)) == (
        f"{pods}/p-1/log?container=server&tailLines=5"
    )
    assert path_of(lambda: cluster.pod_log("p-1", "server")) == f"{pods}/p-1/log?container=server"
    assert path_of(lambda: cluster.follow_log("p-1", "task")) == (
        f"{pods}/p-1/log?container=task&follow=true"
    )
    watched = path_of(lambda: cluster.watch_pods("job-name=train-1", timeout=60))
    assert watched.startswith(f"{pods}?labelSelector=job-name=train-1")
    assert "watch=true" in watched and "timeoutSeconds=60" in watched
    job = path_of(lambda: cluster.watch_one("Job", "metadata.name=train-1", timeout=600))
    assert job.startswith(f"{COLLECTION['Job']}?fieldSelector=metadata.name=train-1")
    assert "watch=true" in job


def test_a_plan_is_applied_secret_first_with_its_real_values(
    tmp_path: Path, _secret_store: Path, cluster: Cluster
) -> None:
    SecretStore(_secret_store).set("team/api", "value-1")
    project = load_project(write_project(tmp_path / "shop", PROJECT))
    options = RenderOptions(
        tracking_uri=SERVER, source=project_source(project, "archive"), run_id="r-1"
    )
    plan = plan_task(project, project.task("train"), options, Target(None, NS))
    calls = apply_calls(plan)
    assert [c.what for c in calls] == ["applying Secret/ame-shop", "applying Job/train-r-1"]
    _, _, secret = request(cluster, calls[0])
    assert base64.b64decode(secret["data"]["team.api"]).decode() == "value-1"  # not "***"
    deploy = plan_deploy(
        project,
        "iris",
        RenderOptions(**{**options.__dict__, "versions": {"iris": ServedVersion("3")}}),
        Target(None, NS),
    )
    assert [c.what for c in apply_calls(deploy)] == [
        "applying Deployment/iris",
        "applying Service/iris",
        "applying Ingress/iris",
        "applying PodDisruptionBudget/iris",
    ]  # no CronJob: ame deploy never applies the batch schedule


def test_an_api_servers_refusal_is_one_line(cluster: Cluster) -> None:
    """The client's own ``ApiException`` (what a 403 or 404 answer raises) as ame's one line."""
    import json

    from kubernetes.client.exceptions import ApiException

    from ame.backends.kubernetes.cluster import ClusterRefusedError

    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Forbidden",
        "code": 403,
        "message": 'deployments.apps is forbidden: User "ci" cannot list resource '
        '"deployments" in API group "apps" in the namespace "ml"',
    }

    with pytest.raises(ClusterRefusedError) as caught, cluster._errors("listing Deployments in ml"):
        raise ApiException(status=403, reason="Forbidden", body=json.dumps(status))
    assert str(caught.value) == (
        'listing Deployments in ml: 403 deployments.apps is forbidden: User "ci" cannot '
        'list resource "deployments" in API group "apps" in the namespace "ml"'
    )
    assert caught.value.status == 403
    # No Status body: the HTTP reason. (A 404 on InferenceServices: the cluster has no KServe.)
    refused = pytest.raises(ClusterRefusedError, match=r"^listing InferenceServices in ml: 404 Not")
    with refused, cluster._errors("listing InferenceServices in ml"):
        raise ApiException(status=404, reason="Not Found")
