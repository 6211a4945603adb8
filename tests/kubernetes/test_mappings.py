"""One test per mapping from an ame.yml key to a Kubernetes field, each object schema-checked."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from ame.backends.kubernetes.errors import EmbeddedStoreError, InvalidObjectError
from ame.backends.kubernetes.options import RenderOptions, ServedVersion
from ame.backends.kubernetes.render import (
    Rendered,
    check_tracking_uri,
    render_project,
    validate_rendered,
)
from ame.backends.kubernetes.source import project_source
from ame.spec import load_project
from tests.kubernetes.conftest import SERVER, VERSIONS, write_project


def _render(tmp_path: Path, text: str, **options: Any) -> list[Rendered]:
    project = load_project(write_project(tmp_path / "proj", text))
    opts = RenderOptions(tracking_uri=SERVER, source=project_source(project, "archive"), **options)
    rendered = render_project(project, opts)
    validate_rendered(rendered, VERSIONS)  # every object, strict, both versions
    return rendered


def _one(rendered: list[Rendered], kind: str) -> dict[str, Any]:
    found = [r.obj for r in rendered if r.obj["kind"] == kind]
    assert len(found) == 1, [r.label for r in rendered]
    return found[0]


def _kinds(rendered: list[Rendered]) -> list[str]:
    return [r.obj["kind"] for r in rendered]


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]["containers"][0]


TASK = """
    project: maps
    tasks:
      - name: train
        executor: !pip {command: python train.py}
        resources: {cpu: 500m, memory: 512Mi, storage: 20G, nvidia.com/gpu: 2}
        timeout: 1h
        env: {EPOCHS: "3"}
        secrets:
          - {key: hf/token, injectAs: HF_TOKEN}
"""


def test_gpu_cpu_memory_requests_and_limits(tmp_path: Path) -> None:
    job = _one(_render(tmp_path, TASK), "Job")
    resources = _container(job)["resources"]
    expected = {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "20G", "nvidia.com/gpu": "2"}
    assert resources == {"requests": expected, "limits": expected}


def test_storage_is_ephemeral_storage_and_the_workspace_limit(tmp_path: Path) -> None:
    job = _one(_render(tmp_path, TASK), "Job")
    (volume,) = job["spec"]["template"]["spec"]["volumes"]
    assert volume == {"name": "workspace", "emptyDir": {"sizeLimit": "20G"}}


def test_job_settings_timeout_backoff_ttl_and_non_root(tmp_path: Path) -> None:
    job = _one(_render(tmp_path, TASK), "Job")
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["restartPolicy"] == "Never"
    env = {e["name"]: e for e in _container(job)["env"]}
    assert env["MLFLOW_TRACKING_URI"]["value"] == SERVER
    assert env["AME_PROJECT"]["value"] == "maps" and env["AME_TASK"]["value"] == "train"
    assert env["EPOCHS"]["value"] == "3"


def test_secrets_are_references_never_values(tmp_path: Path) -> None:
    rendered = _render(tmp_path, TASK)
    job = _one(rendered, "Job")
    env = {e["name"]: e for e in _container(job)["env"]}
    assert env["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "ame-maps", "key": "hf.token"}},
    }
    # The pod puts the value in its own secret store before `ame task run`.
    script = _container(job)["command"][2]
    assert 'printf %s "$HF_TOKEN" | ame secret set hf/token' in script
    assert "Secret" not in _kinds(rendered)


def test_schedule_is_a_cronjob_that_forbids_overlap(tmp_path: Path) -> None:
    rendered = _render(
        tmp_path,
        """
        project: maps
        tasks:
          - name: nightly
            executor: !pip {command: python nightly.py}
            triggers:
              schedule: {cron: "0 2 * * *", timezone: Europe/Berlin}
        """,
    )
    cron = _one(rendered, "CronJob")
    assert cron["spec"]["schedule"] == "0 2 * * *"
    assert cron["spec"]["timeZone"] == "Europe/Berlin"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["startingDeadlineSeconds"] == 300  # catchUp: false
    assert _container(cron)["command"][2].endswith("exec ame task run nightly\n")
    assert "Job" not in _kinds(rendered)


SERVED = """
    project: maps
    models:
      - name: iris_model
        deployment:
          replicas: {replicas}
          resources: {{cpu: 1, memory: 1Gi}}
{extra}
"""


def _served(tmp_path: Path, replicas: int = 1, extra: str = "", **options: Any) -> list[Rendered]:
    indented = "\n".join("          " + line for line in extra.strip().splitlines())
    return _render(tmp_path, SERVED.format(replicas=replicas, extra=indented), **options)


def test_deployment_pins_the_champion_version_with_probes_and_safe_rollout(tmp_path: Path) -> None:
    rendered = _served(tmp_path, versions={"iris_model": ServedVersion("7")})
    assert _kinds(rendered) == ["Deployment", "Service"]
    dep = _one(rendered, "Deployment")
    container = _container(dep)
    assert container["command"][:3] == ["ame", "serve", "iris_model/7"]
    assert dep["metadata"]["labels"]["ame.dev/version"] == "7"
    assert "ame.dev/version" not in dep["spec"]["selector"]["matchLabels"]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/ping"
    assert "startupProbe" in container
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    service = _one(rendered, "Service")
    assert service["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_labels_name_the_project_model_and_manager(tmp_path: Path) -> None:
    for item in _served(tmp_path):
        labels = item.obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "ame"
        assert labels["app.kubernetes.io/name"] == "iris-model"
        assert labels["ame.dev/project"] == "maps"
        assert labels["ame.dev/model"] == "iris_model"


def test_tls_ingress_with_host_path_and_annotations(tmp_path: Path) -> None:
    rendered = _served(
        tmp_path,
        extra="""
host: iris.example.com
path: /iris
enableTls: true
ingressAnnotations: {nginx.ingress.kubernetes.io/proxy-body-size: 16m}
""",
    )
    ingress = _one(rendered, "Ingress")
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/proxy-body-size": "16m"
    }
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "iris.example.com"
    assert rule["http"]["paths"][0]["path"] == "/iris"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["iris.example.com"], "secretName": "iris-model-tls"}
    ]


def test_no_ingress_keys_no_ingress(tmp_path: Path) -> None:
    assert "Ingress" not in _kinds(_served(tmp_path))


def test_pdb_only_with_more_than_one_replica(tmp_path: Path) -> None:
    assert "PodDisruptionBudget" not in _kinds(_served(tmp_path, replicas=1))
    pdb = _one(_served(tmp_path, replicas=3), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_autoscaling_is_an_hpa_that_owns_the_replica_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rendered = _served(
        tmp_path, extra="autoscaling: {minReplicas: 2, maxReplicas: 6, targetCpuUtilization: 65}"
    )
    hpa = _one(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 6
    target = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert target == {"type": "Utilization", "averageUtilization": 65}
    assert "replicas" not in _one(rendered, "Deployment")["spec"]
    assert "PodDisruptionBudget" in _kinds(rendered)  # minReplicas 2
    with caplog.at_level(logging.WARNING, logger="ame"):
        _served(tmp_path, extra="autoscaling: {maxReplicas: 4, targetOngoingRequests: 5}")
    assert "cannot follow it without a metrics adapter" in caplog.text


def test_kserve_uses_the_versions_storage_uri(tmp_path: Path) -> None:
    rendered = _served(
        tmp_path,
        format="kserve",
        versions={"iris_model": ServedVersion("3", "s3://bucket/models/iris/3")},
    )
    (isvc,) = [r.obj for r in rendered]
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "s3://bucket/models/iris/3"
    assert isvc["metadata"]["labels"]["ame.dev/version"] == "3"


@pytest.mark.parametrize(
    "uri", [None, "", "sqlite:///x/.ame/mlflow.db", "file:///tmp/mlruns", "./mlruns"]
)
def test_embedded_store_is_refused(uri: str | None) -> None:
    with pytest.raises(EmbeddedStoreError, match="--tracking-uri"):
        check_tracking_uri(uri)
    assert check_tracking_uri(SERVER) == SERVER


def test_a_failing_object_names_its_ame_yml_line(tmp_path: Path) -> None:
    rendered = _served(tmp_path)
    bad = [
        Rendered({**rendered[0].obj, "spec": {**rendered[0].obj["spec"], "replica": 2}},
                 rendered[0].place, rendered[0].group),
        Rendered({**rendered[1].obj, "apiVersion": "v2"}, rendered[1].place, rendered[1].group),
    ]  # fmt: skip
    with pytest.raises(InvalidObjectError) as info:
        validate_rendered(bad, VERSIONS)
    lines = str(info.value).splitlines()
    assert all(line.startswith("proj/ame.yml:4:5 models[0].deployment: ") or
               "ame.yml:4:5 models[0].deployment: " in line for line in lines)  # fmt: skip
    assert any("Deployment/iris-model" in line and "replica" in line for line in lines)
    # No schema for the apiVersion is a failure, not a warning.
    assert any("Service/iris-model" in line and "Couldn't find schema" in line for line in lines)
