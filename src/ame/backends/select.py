"""Choosing the backend a command uses, and saying which in one line.

The precedence is the one every ame command follows: ``--backend``, then the
``AME_BACKEND`` environment variable, then ame.yml's ``backend.kind``, then
``local``. A Ray cluster's address comes from ``RAY_ADDRESS`` (Ray's own
variable, so a shell already set up for ``ray job submit`` works unchanged),
else ame.yml's ``backend.ray.address``; the environment wins over the file for
the same reason ``AME_BACKEND`` does: it is the one-off override.

Import-light: the CLI calls this on every command that runs work, so engines'
client libraries are imported only by ``open_backend``'s chosen engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ame.errors import AmeError

if TYPE_CHECKING:
    from ame.backends.base import Backend
    from ame.spec.model import Project

KINDS = ("local", "ray", "kubernetes")
ENV_BACKEND = "AME_BACKEND"
ENV_RAY_ADDRESS = "RAY_ADDRESS"
ENV_RAY_NAMESPACE = "AME_RAY_NAMESPACE"
DEFAULT_RAY_NAMESPACE = "ame"


class BackendError(AmeError):
    """A backend was named that does not exist, or cannot be used as configured."""


@dataclass(frozen=True)
class BackendChoice:
    """Which backend, why (``--backend``, ``AME_BACKEND``, ame.yml, default) and where."""

    kind: str
    source: str
    address: Optional[str] = None  # the Ray dashboard URL
    namespace: Optional[str] = None

    def describe(self) -> str:
        """The one line a command prints: ``backend: ray at http://... (AME_BACKEND)``."""
        where = f" at {self.address}" if self.address else ""
        return f"backend: {self.kind}{where} ({self.source})"


def _check_kind(kind: str, source: str) -> str:
    value = kind.strip().lower()
    if value not in KINDS:
        raise BackendError(f"unknown backend {kind!r} from {source}; valid: {', '.join(KINDS)}")
    return value


def ray_address(project: Optional[Project], env: Mapping[str, str]) -> Optional[str]:
    """The Ray dashboard URL: ``RAY_ADDRESS``, else ``backend.ray.address``; ``http://`` added."""
    address = env.get(ENV_RAY_ADDRESS, "").strip()
    if not address and project is not None and project.backend and project.backend.ray:
        address = (project.backend.ray.address or "").strip()
    if not address:
        return None
    if "://" not in address:
        address = "http://" + address
    if not address.startswith(("http://", "https://")):
        raise BackendError(
            f"the ray backend talks to the Ray dashboard: give its HTTP address, "
            f"e.g. http://HEAD:8265 (got {address!r})"
        )
    return address.rstrip("/")


def ray_namespace(project: Optional[Project], env: Mapping[str, str]) -> str:
    """The namespace ame's Ray jobs and Serve applications are tagged with."""
    if env.get(ENV_RAY_NAMESPACE):
        return env[ENV_RAY_NAMESPACE]
    if project is not None and project.backend and project.backend.ray:
        return project.backend.ray.namespace or DEFAULT_RAY_NAMESPACE
    return DEFAULT_RAY_NAMESPACE


def _choice(
    kind: str, source: str, project: Optional[Project], env: Mapping[str, str]
) -> BackendChoice:
    if kind != "ray":
        return BackendChoice(kind, source)
    address = ray_address(project, env)
    if address is None:
        raise BackendError(
            "the ray backend needs a cluster: set RAY_ADDRESS=http://HEAD:8265 "
            "(the Ray dashboard) or backend.ray.address in ame.yml"
        )
    return BackendChoice(kind, source, address, ray_namespace(project, env))


def choose_backend(
    flag: Optional[str],
    project: Optional[Project],
    env: Optional[Mapping[str, str]] = None,
) -> BackendChoice:
    """The backend a command uses: ``--backend``, ``AME_BACKEND``, ame.yml, then ``local``."""
    env = os.environ if env is None else env
    if flag:
        return _choice(_check_kind(flag, "--backend"), "--backend", project, env)
    if env.get(ENV_BACKEND, "").strip():
        return _choice(_check_kind(env[ENV_BACKEND], ENV_BACKEND), ENV_BACKEND, project, env)
    if project is not None and project.backend is not None:
        return _choice(project.backend.kind, "ame.yml backend.kind", project, env)
    return BackendChoice("local", "default")


def configured_kinds(
    project: Optional[Project], env: Optional[Mapping[str, str]] = None
) -> list[str]:
    """Every backend this project or shell points at, ``local`` first.

    ``ame deployment list`` without ``--backend`` shows all of them: a model
    deployed on Ray last week should not vanish from the list because today's
    shell has no ``AME_BACKEND``.
    """
    env = os.environ if env is None else env
    kinds = ["local"]

    def add(kind: str) -> None:
        if kind in KINDS and kind not in kinds:
            kinds.append(kind)

    if env.get(ENV_BACKEND, "").strip():
        add(env[ENV_BACKEND].strip().lower())
    if project is not None and project.backend is not None:
        add(project.backend.kind)
        if project.backend.ray is not None:
            add("ray")
        if project.backend.kubernetes is not None:
            add("kubernetes")
    if env.get(ENV_RAY_ADDRESS, "").strip():
        add("ray")
    return kinds


def open_backend(
    choice: BackendChoice,
    project_root: Optional[Path] = None,
    tracking_uri: Optional[str] = None,
) -> Backend:
    """The ``Backend`` for ``choice``; the engine's client library is imported here."""
    if choice.kind == "local":
        from ame.backends.local_backend import LocalBackend

        return LocalBackend(project_root, tracking_uri)
    if choice.kind == "ray":
        from ame.backends.ray.backend import RayBackend

        assert choice.address is not None
        return RayBackend(
            choice.address,
            namespace=choice.namespace or DEFAULT_RAY_NAMESPACE,
            project_root=project_root,
            tracking_uri=tracking_uri,
        )
    if choice.kind == "kubernetes":
        from ame.backends.kubernetes.backend import KubernetesBackend

        project = None
        if project_root is not None:
            from ame.spec import load_project

            project = load_project(project_root)
        return KubernetesBackend(project, tracking_uri=tracking_uri)
    raise BackendError(f"the {choice.kind} backend is not available through this command")
