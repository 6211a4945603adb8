"""A Kubernetes Deployment follows its alias: when the alias moves, ame re-applies it.

A local server follows ``M@champion`` by itself (it polls the registry and
hot-swaps). A pod does not: its Deployment is pinned to one version
(``ame serve M/<version>``, ``AME_MODEL_VERSION``, the image built for that
version's requirements), so that the move is a rolling update that drops no
request, and so that what runs is what ``kubectl get deploy -o yaml`` says.
So wherever ame moves an alias (``ame model alias``, a promotion by ``ame
train`` or ``ame model validate --promote``), it calls ``follow_alias``: if the
project's cluster has a Deployment of that model annotated
``ame.dev/follows: M@<alias>`` and pinned to another version, the model's
objects are rendered again for the new version and applied, and ame waits
for the rollout.

Only for projects that configure the kubernetes backend (``AME_BACKEND``,
``backend.kind`` or a ``backend.kubernetes`` section) and a store a pod
reaches; an alias move never fails because of the cluster: a cluster that
cannot be reached is one warning line saying how to catch up.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from ame.errors import AmeError

if TYPE_CHECKING:
    from ame.backends.kubernetes.apply import Plan, Target
    from ame.spec.model import Project

log = logging.getLogger(__name__)


def on_kubernetes(project: Project) -> bool:
    """Whether the project (or the shell) points at the kubernetes backend."""
    from ame.backends.select import configured_kinds

    return "kubernetes" in configured_kinds(project)


def followers(deployments: list[Any], model: str, alias: str) -> list[Any]:
    """The Deployments (typed, as listed) that follow ``model@alias`` (annotation ``follows``)."""
    from ame.backends.kubernetes.serving import FOLLOWS

    wanted = f"{model}@{alias}"
    return [d for d in deployments if ((d.metadata.annotations or {}).get(FOLLOWS) == wanted)]


def pinned_version(deployment: Any) -> Optional[str]:
    """The version a Deployment ame rendered is pinned to (None: rendered for the alias)."""
    from ame.backends.kubernetes.serving import MODEL_VERSION

    return (deployment.metadata.annotations or {}).get(MODEL_VERSION)


def stale(deployments: list[Any], model: str, alias: str, version: str) -> list[Any]:
    """The follow decision: Deployments following ``model@alias`` and pinned to another version.

    Empty when the alias moved to what they already serve: nothing is applied.
    """
    return [d for d in followers(deployments, model, alias) if pinned_version(d) != version]


def plan_follow(
    project: Project, model: str, version: str, tracking_uri: str, target: Target
) -> Plan:
    """The model's serving objects rendered again, pinned to ``version``, validated (strict).

    What ``follow_alias`` re-applies and what ``KubernetesBackend.deploy`` applies.
    """
    from ame.backends.kubernetes.apply import plan_deploy, render_options
    from ame.backends.kubernetes.options import ServedVersion

    options = render_options(project, tracking_uri, models=[model], offline=True)
    options = dataclasses.replace(options, versions={model: ServedVersion(version)})
    return plan_deploy(project, model, options, target)


def follow_alias(
    project: Optional[Project],
    model: str,
    alias: str,
    version: str,
    tracking_uri: Optional[str],
    *,
    on_event: Optional[Callable[[str], None]] = None,
) -> Optional[str]:
    """Re-apply the cluster Deployment following ``model@alias`` now that it names ``version``.

    Returns what was done in one line (None when there was nothing to do);
    never raises for the cluster's sake: a failure is logged as one warning.
    """
    if project is None or not tracking_uri or not on_kubernetes(project):
        return None
    try:
        spec = project.model(model)
    except KeyError:
        return None
    if spec.deployment is None or alias != spec.champion_alias:
        return None
    from ame.backends.kubernetes.errors import EmbeddedStoreError
    from ame.backends.kubernetes.render import check_tracking_uri

    try:
        check_tracking_uri(tracking_uri)
    except EmbeddedStoreError:
        return None  # no pod reaches this store, so no Deployment can follow it
    try:
        return _reapply(project, model, alias, version, tracking_uri, on_event)
    except AmeError as exc:
        log.warning(
            "%s@%s moved to version %s, but the Kubernetes Deployment was not re-applied: %s; "
            "run `ame deploy %s --backend kubernetes`",
            model, alias, version, exc, model,
        )  # fmt: skip
        return None


def _reapply(
    project: Project,
    model: str,
    alias: str,
    version: str,
    tracking_uri: str,
    on_event: Optional[Callable[[str], None]],
) -> Optional[str]:
    from ame.backends.kubernetes.apply import execute
    from ame.backends.kubernetes.backend import KubernetesBackend

    backend = KubernetesBackend(project, tracking_uri=tracking_uri)
    if not stale(backend.cluster.deployments(backend.selector(model)), model, alias, version):
        return None
    plan = plan_follow(project, model, version, tracking_uri, backend.target)
    if on_event is not None:
        on_event(f"{model}@{alias} moved to {version}: rolling out Deployment {plan.deployment}")
    execute(plan, tracking_uri, lambda line: log.info("%s", line))
    return (
        f"{model} version {version} rolled out as Deployment {plan.deployment} ({backend.where()})"
    )
