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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ame.errors import AmeError

if TYPE_CHECKING:
    from ame.backends.base import Backend, DeploymentView
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


@dataclass(frozen=True)
class Unreachable:
    """A configured backend that could not be asked for its deployments, and why."""

    kind: str
    reason: str

    def line(self) -> str:
        """The one line a command prints for it."""
        return f"{self.kind}: not reachable: {self.reason}"


def deployments_everywhere(
    project: Optional[Project],
    project_root: Optional[Path] = None,
    tracking_uri: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    kinds: Optional[list[str]] = None,
) -> tuple[list[DeploymentView], list[Unreachable]]:
    """Every deployment of every configured backend (``configured_kinds``), local first.

    A backend that cannot be asked (its cluster is down, its address wrong,
    its client library not installed) is returned in the second list rather
    than raised: a listing still shows what does answer, and a caller that
    must be sure (``deployment_users``) decides what an unknown means.
    """
    from ame.errors import AmeError

    env = os.environ if env is None else env
    root = project_root if project_root is not None else (project.root if project else None)
    views: list[DeploymentView] = []
    unreachable: list[Unreachable] = []
    for kind in kinds or configured_kinds(project, env):
        try:
            choice = _choice(kind, "configured", project, env)
            views.extend(open_backend(choice, root, tracking_uri).list_deployments())
        except (AmeError, ImportError, OSError) as exc:
            if kind == "local":  # this machine always answers; a failure here is real
                raise
            unreachable.append(
                Unreachable(kind, str(exc).splitlines()[0] if str(exc) else repr(exc))
            )
    return views, unreachable


InUse = Callable[[str, Optional[str]], list[str]]


def _serves(view: DeploymentView, version: Optional[str]) -> bool:
    if view.state == "dead":  # its server is gone: it uses nothing
        return False
    if version is None:
        return True
    previous = view.detail.get("previous_version")
    return view.version == version or (previous is not None and str(previous) == version)


def deployment_users(
    project: Optional[Project],
    project_root: Optional[Path] = None,
    tracking_uri: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> InUse:
    """The "is this version in use?" check the registry's ``delete`` is given.

    The registry knows aliases, not where models run, so the check comes from
    here: ``users(name, version)`` asks every configured backend and returns
    one reason per deployment serving ``name`` (``version``, or any version
    when None). A backend that cannot be asked makes the answer unknown, and
    an unknown is not a "no": it raises ``BackendError`` (one line) so the
    delete is refused; ``--force`` skips the check altogether.
    """

    def users(name: str, version: Optional[str]) -> list[str]:
        views, unreachable = deployments_everywhere(project, project_root, tracking_uri, env)
        if unreachable:
            what = f"{name}/{version}" if version is not None else f"model '{name}'"
            raise BackendError(
                f"cannot tell whether {what} is deployed: {unreachable[0].line()}; "
                "reach it, or use --force to delete anyway"
            )
        wanted = None if version is None else str(version)
        reasons = []
        for view in views:
            if view.model == name and _serves(view, wanted):
                where = f" at {view.url}" if view.url else ""
                reasons.append(f"{view.backend} deployment of version {view.version}{where}")
        return reasons

    return users
