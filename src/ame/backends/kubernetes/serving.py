"""A model's deployment as a Deployment, Service, Ingress, PodDisruptionBudget and HPA.

The pods run ``ame serve M/<version>``: the version the champion alias names
when the objects are made, pinned, so that a rollout (not a hot swap inside a
pod) moves the model and the image can hold exactly that version's
requirements. With ``--format kserve`` the model is one KServe
InferenceService instead, served by KServe's own MLflow runtime.
"""

from __future__ import annotations

import logging
from typing import Any

from ame.backends.kubernetes import labels as lbl
from ame.backends.kubernetes import pods, quantities
from ame.backends.kubernetes.names import dns_label, label_value
from ame.backends.kubernetes.options import SERVING_PORT, RenderOptions
from ame.spec.model import Deployment, Model, Project

log = logging.getLogger(__name__)
# The HPA's CPU target when autoscaling gives none.
DEFAULT_CPU_TARGET = 80
# On the Deployment: the alias it follows (``iris@champion``), so that a move of
# that alias re-applies it (``follow.py``), and the version it was pinned to.
FOLLOWS = "ame.dev/follows"
MODEL_VERSION = "ame.dev/model-version"
INGRESS_URL = "ame.dev/url"


def served_ref(model: Model, options: RenderOptions) -> tuple[str, str]:
    """(what ``ame serve`` is given, the ``ame.dev/version`` label) for ``model``."""
    served = options.versions.get(model.name)
    if served is not None:
        return f"{model.name}/{served.version}", served.version
    return f"{model.name}@{model.champion_alias}", model.champion_alias


def serving_image(project: Project, model: Model, version: str) -> str:
    """The model's ``deployment.image``, else the tag ``ame image build M`` gives."""
    if model.deployment is not None and model.deployment.image:
        return model.deployment.image
    return f"ame-{dns_label(project.name, model.name)}:{label_value(version)}"


def _serve_command(model: Model, deployment: Deployment, ref: str) -> list[str]:
    command = ["ame", "serve", ref, "--host", "0.0.0.0", "--port", str(SERVING_PORT)]
    if deployment.batching is not None:
        command += [
            "--max-batch-size", str(deployment.batching.max_batch_size),
            "--max-latency-ms", f"{deployment.batching.max_latency_ms:g}",
        ]  # fmt: skip
    return command


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
    }


def _deployment(
    project: Project, model: Model, deployment: Deployment, options: RenderOptions
) -> dict[str, Any]:
    ref, version = served_ref(model, options)
    name = dns_label(model.name)
    selector = lbl.selector(name, project.name, model=model.name)
    meta = lbl.labels(name, project.name, version, model=model.name)
    # The resolved version, so the pod template (and so the rollout) changes
    # whenever the alias moves, even with the same image. None while unpromoted.
    pinned = {"AME_MODEL_VERSION": version} if model.name in options.versions else {}
    container: dict[str, Any] = {
        "name": "server",
        "image": serving_image(project, model, version),
        "command": _serve_command(model, deployment, ref),
        "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
        "env": pods.env_list(
            {
                "MLFLOW_TRACKING_URI": options.tracking_uri,
                "AME_PROJECT": project.name,
                "AME_MODEL_NAME": model.name,
                **pinned,
                "HOME": "/tmp",
            }
        ),
        # Loading a model can take minutes; readiness waits on it, liveness does not.
        "startupProbe": _probe("/ping", 5, 60),
        "readinessProbe": _probe("/v2/health/ready", 5, 3),
        "livenessProbe": _probe("/ping", 10, 3),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": pods.container_security(),
    }
    resources = quantities.resources(deployment.resources)
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {}
    if deployment.autoscaling is None:  # with an HPA, the HPA owns the replica count
        spec["replicas"] = deployment.replicas
    spec.update(
        {
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": meta},
                "spec": {
                    "securityContext": pods.pod_security(),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        }
    )
    annotations = {FOLLOWS: f"{model.name}@{model.champion_alias}"}
    if pinned:
        annotations[MODEL_VERSION] = version
    url = ingress_url(deployment)
    if url is not None:
        annotations[INGRESS_URL] = url
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": meta, "annotations": annotations},
        "spec": spec,
    }


def ingress_url(deployment: Deployment) -> str | None:
    """The URL the Ingress serves the model at, when it has a host."""
    if not deployment.host:
        return None
    scheme = "https" if deployment.enable_tls else "http"
    return f"{scheme}://{deployment.host}{deployment.path or '/'}"


def _service(project: Project, model: Model, version: str) -> dict[str, Any]:
    name = dns_label(model.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "labels": lbl.labels(name, project.name, version, model=model.name),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": lbl.selector(name, project.name, model=model.name),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def wants_ingress(deployment: Deployment) -> bool:
    """An Ingress is rendered when any key that configures one is set."""
    return bool(
        deployment.host or deployment.path or deployment.enable_tls
        or deployment.ingress_annotations
    )  # fmt: skip


def _ingress(
    project: Project, model: Model, deployment: Deployment, version: str
) -> dict[str, Any]:
    name = dns_label(model.name)
    metadata: dict[str, Any] = {
        "name": name,
        "labels": lbl.labels(name, project.name, version, model=model.name),
    }
    if deployment.ingress_annotations:
        metadata["annotations"] = dict(sorted(deployment.ingress_annotations.items()))
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": deployment.path or "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": name, "port": {"name": "http"}}},
                }
            ]
        }
    }
    if deployment.host:
        rule = {"host": deployment.host, **rule}
    spec: dict[str, Any] = {"rules": [rule]}
    if deployment.enable_tls:
        tls: dict[str, Any] = {"secretName": dns_label(model.name, "tls")}
        if deployment.host:
            tls = {"hosts": [deployment.host], **tls}
        spec["tls"] = [tls]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def _pdb(project: Project, model: Model, version: str) -> dict[str, Any]:
    name = dns_label(model.name)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": name,
            "labels": lbl.labels(name, project.name, version, model=model.name),
        },
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": lbl.selector(name, project.name, model=model.name)},
        },
    }


def _hpa(project: Project, model: Model, deployment: Deployment, version: str) -> dict[str, Any]:
    scaling = deployment.autoscaling
    assert scaling is not None
    if scaling.target_cpu_utilization is None and scaling.target_ongoing_requests is not None:
        log.warning(
            "%s: targetOngoingRequests is Ray Serve's; a HorizontalPodAutoscaler cannot follow "
            "it without a metrics adapter, so it scales on %d%% CPU (set targetCpuUtilization)",
            model.name,
            DEFAULT_CPU_TARGET,
        )
    name = dns_label(model.name)
    target = scaling.target_cpu_utilization or DEFAULT_CPU_TARGET
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name,
            "labels": lbl.labels(name, project.name, version, model=model.name),
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            ],
        },
    }


def _inference_service(
    project: Project, model: Model, deployment: Deployment, options: RenderOptions
) -> dict[str, Any]:
    served = options.versions.get(model.name)
    ref, version = served_ref(model, options)
    storage = served.storage_uri if served is not None and served.storage_uri else f"models:/{ref}"
    if served is None or not served.storage_uri:
        log.warning(
            "%s: no promoted version, so the InferenceService's storageUri is %s, which KServe "
            "cannot download; render again once @%s names a version",
            model.name,
            storage,
            model.champion_alias,
        )
    predictor_model: dict[str, Any] = {
        "modelFormat": {"name": "mlflow"},
        "protocolVersion": "v2",
        "storageUri": storage,
    }
    resources = quantities.resources(deployment.resources)
    if resources:
        predictor_model["resources"] = resources
    scaling = deployment.autoscaling
    predictor: dict[str, Any] = {
        "minReplicas": scaling.min_replicas if scaling else deployment.replicas,
        "maxReplicas": scaling.max_replicas if scaling else deployment.replicas,
    }
    if scaling is not None:
        predictor["scaleMetric"] = "cpu"
        predictor["scaleTarget"] = scaling.target_cpu_utilization or DEFAULT_CPU_TARGET
    predictor["model"] = predictor_model
    name = dns_label(model.name)
    metadata: dict[str, Any] = {
        "name": name,
        "labels": lbl.labels(name, project.name, version, model=model.name),
    }
    env = {"MLFLOW_TRACKING_URI": options.tracking_uri}
    predictor_model["env"] = pods.env_list(env)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def model_objects(project: Project, model: Model, options: RenderOptions) -> list[dict[str, Any]]:
    """The objects that serve ``model``'s champion (none when it has no ``deployment``)."""
    deployment = model.deployment
    if deployment is None:
        return []
    _, version = served_ref(model, options)
    if options.format == "kserve":
        if wants_ingress(deployment):
            log.warning(
                "%s: host, path, enableTls and ingressAnnotations are not rendered with "
                "--format kserve: KServe exposes the InferenceService through its own ingress",
                model.name,
            )
        return [_inference_service(project, model, deployment, options)]
    objects = [_deployment(project, model, deployment, options), _service(project, model, version)]
    if wants_ingress(deployment):
        objects.append(_ingress(project, model, deployment, version))
    low = deployment.autoscaling.min_replicas if deployment.autoscaling else deployment.replicas
    if low > 1:
        objects.append(_pdb(project, model, version))
    if deployment.autoscaling is not None:
        objects.append(_hpa(project, model, deployment, version))
    return objects
