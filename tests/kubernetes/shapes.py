"""What the official client hands ame: its typed objects, made from JSON an API server returns.

No API server runs in these tests, and none is imitated. The objects the
backend reads are made by the official client's own deserializer
(``V1Deployment.from_dict``: the code that turns an API server's answer into
the objects ``cluster.py``'s calls return) from JSON that is ame's rendered
object plus the metadata and status a server adds, checked against the
official schemas first. A kubeconfig pointing at a closed port of 127.0.0.1
lets the real client build and send each request, so a test sees the exact
path and query it would send (in the connection error) and ame's one-line
error, with nothing listening.
"""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any

import kubernetes_validate

from tests.kubernetes.conftest import VERSIONS

NS = "ml"
STAMP = "2026-12-01T10:00:00Z"


def checked(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` once it passes the official schemas (strict) of every Kubernetes we support."""
    for version in VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)
    return obj


def typed(obj: dict[str, Any]) -> Any:
    """``obj`` (checked against the schemas) as the official client's model object of its kind."""
    from kubernetes import client

    checked(obj)
    group_version = obj["apiVersion"].rsplit("/", 1)[-1]  # apps/v1 -> v1, autoscaling/v2 -> v2
    cls = getattr(client, f"{group_version.capitalize()}{obj['kind']}")
    return cls.from_dict(obj)


def as_stored(obj: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    """A rendered object as the API server returns it: namespace, uid, times, generation."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        namespace=NS,
        uid=f"uid-{out['metadata']['name']}",
        resourceVersion="100",
        generation=generation,
        creationTimestamp=STAMP,
    )
    return out


def live_deployment(obj: dict[str, Any], ready: int, updated: int | None = None) -> Any:
    """A rendered Deployment as listed while ``ready`` pods (``updated`` on the new spec) run."""
    out = as_stored(obj, generation=2)
    want = out["spec"].get("replicas", 1)
    updated = want if updated is None else updated
    out["status"] = {
        "observedGeneration": 2,
        "replicas": max(want, updated),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if ready >= want else "False",
                "reason": "MinimumReplicasAvailable",
                "lastUpdateTime": STAMP,
                "lastTransitionTime": STAMP,
            }
        ],
    }
    return typed(out)


def pod_of(deployment: dict[str, Any], suffix: str, second: int, **status: Any) -> Any:
    """A pod of a rendered Deployment (or Job), created ``second`` seconds past STAMP."""
    template = deployment["spec"]["template"]
    name = f"{deployment['metadata']['name']}-5d8f-{suffix}"
    container = template["spec"]["containers"][0]
    state = status.pop("state", {"running": {"startedAt": STAMP}})
    return typed(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": f"uid-{name}",
                "labels": template["metadata"]["labels"],
                "creationTimestamp": f"2026-12-01T10:00:{second:02d}Z",
            },
            "spec": {**template["spec"], "nodeName": "node-1"},
            "status": {
                "phase": "Running",
                "startTime": STAMP,
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "ready": True,
                        "restartCount": 0,
                        "image": container["image"],
                        "imageID": "",
                        "state": state,
                    }
                ],
                **status,
            },
        }
    )


NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "node-1",
        "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"},
    },
    "status": {
        "addresses": [
            {"type": "InternalIP", "address": "10.1.0.5"},
            {"type": "Hostname", "address": "node-1"},
        ],
        "capacity": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1", "pods": "110"},
        "allocatable": {"cpu": "3900m", "memory": "15Gi", "nvidia.com/gpu": "1", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
    },
}
NOT_READY_NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "node-2"},
    "status": {
        "addresses": [{"type": "InternalIP", "address": "10.1.0.6"}],
        "allocatable": {"cpu": "8", "memory": "32000000Ki"},
        "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}],
    },
}


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(path: Path, server: str, namespace: str = NS) -> Path:
    """A kubeconfig whose one context points at ``server`` with a bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "t0ken"}}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": "test", "namespace": namespace}}
        ],
        "current-context": "test",
    }
    path.write_text(json.dumps(config))
    return path


def dead_kubeconfig(tmp_path: Path) -> tuple[Path, str]:
    """A kubeconfig pointing at a closed port; (its path, the server's address)."""
    server = f"http://127.0.0.1:{closed_port()}"
    return write_kubeconfig(tmp_path / "kubeconfig", server), server
