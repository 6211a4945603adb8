"""The parts every pod ame renders shares: security context, environment, secrets."""

from __future__ import annotations

from typing import Any

from ame.backends.kubernetes.names import dns_label, secret_key
from ame.spec.model import Project, SecretRef

# Runs as an unprivileged user whatever the image's USER says.
RUN_AS = 1000


def pod_security() -> dict[str, Any]:
    """The pod-level securityContext: non-root, the runtime's default seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """The container-level securityContext: no privilege escalation, no capabilities."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def secret_name(project: Project) -> str:
    """The one Secret per project that holds the values of its tasks' ``secrets``."""
    return dns_label("ame", project.name, limit=253)


def env_list(values: dict[str, str]) -> list[dict[str, Any]]:
    """``{K: V}`` as a container's ``env`` list, in a stable order."""
    return [{"name": k, "value": v} for k, v in sorted(values.items())]


def secret_env(project: Project, refs: list[SecretRef]) -> list[dict[str, Any]]:
    """Each secret as an env var read from the project's Secret; the value is never rendered."""
    return [
        {
            "name": ref.inject_as,
            "valueFrom": {
                "secretKeyRef": {"name": secret_name(project), "key": secret_key(ref.key)}
            },
        }
        for ref in refs
    ]
