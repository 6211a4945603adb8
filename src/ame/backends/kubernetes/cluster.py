"""Every call ame makes to a Kubernetes API server, each a thin call into the official client.

No API server can be run where ame is tested, so this module is kept to what
only a cluster can check: each method of ``Cluster`` is one call of the
official ``kubernetes`` client (typed objects in, typed objects out), wrapped
only to turn the client's errors into one line. Everything that decides
*what* to call (the selectors, the kind-to-method tables, the order of
deletions, what a listing means) is a pure function elsewhere or a ``Call``
built by ``apply_call``/``delete_call``/``list_call`` below, and tested
without a server. ``docs/kubernetes.md`` lists these calls with the ``kind``
commands that try them against a real cluster.

Only namespaced objects ame renders are touched, always through a label
selector naming ``app.kubernetes.io/managed-by=ame`` and the project, so ame
never lists or deletes an object it did not make.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ame.backends.kubernetes.errors import KubernetesError

if TYPE_CHECKING:
    from ame.backends.kubernetes.apply import Target

log = logging.getLogger(__name__)
FIELD_MANAGER = "ame"
APPLY_PATCH = "application/apply-patch+yaml"
# (connect, read) seconds: a cluster address that drops packets fails in seconds, not minutes.
TIMEOUT = (5, 30)

# kind -> (the client's API class, the method's resource part): the namespaced kinds ame renders.
NAMESPACED: dict[str, tuple[str, str]] = {
    "Deployment": ("AppsV1Api", "deployment"),
    "Service": ("CoreV1Api", "service"),
    "Ingress": ("NetworkingV1Api", "ingress"),
    "PodDisruptionBudget": ("PolicyV1Api", "pod_disruption_budget"),
    "HorizontalPodAutoscaler": ("AutoscalingV2Api", "horizontal_pod_autoscaler"),
    "Pod": ("CoreV1Api", "pod"),
    "Job": ("BatchV1Api", "job"),
    "CronJob": ("BatchV1Api", "cron_job"),
    "Secret": ("CoreV1Api", "secret"),
}
# Custom resources ame renders: kind -> (group, version, plural).
CUSTOM: dict[str, tuple[str, str, str]] = {
    "InferenceService": ("serving.kserve.io", "v1beta1", "inferenceservices"),
}


class ClusterUnreachableError(KubernetesError):
    """No API server answered at the kubeconfig's address."""

    exit_code = 1

    def __init__(self, message: str, url: Optional[str] = None) -> None:
        super().__init__(message)
        self.url = url  # the request the client had built (path and query), when known


class ClusterRefusedError(KubernetesError):
    """The API server answered with an error (forbidden, not found, invalid)."""

    exit_code = 1

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Call:
    """One call of the official client: ``<api>(client).<method>(*args, **kwargs)``.

    Built by pure functions, so which method a kind maps to and what it is
    given is tested against the real client (its methods validate their
    arguments before any request), and ``Cluster.invoke`` only makes it.
    """

    what: str  # for the error line: "applying Deployment/iris"
    api: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _unknown_kind(kind: str) -> KubernetesError:
    return KubernetesError(f"ame does not manage {kind} objects on a cluster")


def apply_call(obj: dict[str, Any], namespace: str) -> Call:
    """Server-side apply of ``obj``: field manager ``ame``, conflicts forced.

    Forced: ame owns the fields it renders, and a ``kubectl edit`` of one of
    them is what a re-apply is meant to undo.
    """
    kind, name = obj["kind"], obj["metadata"]["name"]
    options = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY_PATCH}
    what = f"applying {kind}/{name}"
    if kind in CUSTOM:
        group, version, plural = CUSTOM[kind]
        args = (group, version, namespace, plural, name, obj)
        return Call(what, "CustomObjectsApi", "patch_namespaced_custom_object", args, options)
    if kind not in NAMESPACED:
        raise _unknown_kind(kind)
    api, part = NAMESPACED[kind]
    return Call(what, api, f"patch_namespaced_{part}", (name, namespace, obj), options)


def delete_call(kind: str, name: str, namespace: str) -> Call:
    """Delete one object; its dependents (a Deployment's pods) go in the background."""
    what = f"deleting {kind}/{name}"
    options = {"propagation_policy": "Background"}
    if kind in CUSTOM:
        group, version, plural = CUSTOM[kind]
        args = (group, version, namespace, plural, name)
        return Call(what, "CustomObjectsApi", "delete_namespaced_custom_object", args, options)
    if kind not in NAMESPACED:
        raise _unknown_kind(kind)
    api, part = NAMESPACED[kind]
    return Call(what, api, f"delete_namespaced_{part}", (name, namespace), options)


def list_call(kind: str, namespace: str, label_selector: str) -> Call:
    """The objects of ``kind`` in ``namespace`` that match ``label_selector``."""
    what = f"listing {kind}s in {namespace}"
    options = {"label_selector": label_selector}
    if kind in CUSTOM:
        group, version, plural = CUSTOM[kind]
        args = (group, version, namespace, plural)
        return Call(what, "CustomObjectsApi", "list_namespaced_custom_object", args, options)
    if kind not in NAMESPACED:
        raise _unknown_kind(kind)
    api, part = NAMESPACED[kind]
    return Call(what, api, f"list_namespaced_{part}", (namespace,), options)


def items(answer: Any) -> list[Any]:
    """The items of a list answer: a typed ``V1...List``, or a custom resource list's dict."""
    if isinstance(answer, dict):
        return list(answer.get("items") or [])
    return list(answer.items or [])


class Cluster:
    """One kubeconfig context and namespace; the client is made on the first call.

    Each method below is one call of the official client, nothing more.
    """

    def __init__(self, target: Target, api: Any = None) -> None:
        """``api``: an official ``ApiClient`` to use, else one made from the kubeconfig."""
        self.target = target
        self._api: Any = api

    @property
    def namespace(self) -> str:
        """The namespace every namespaced call uses."""
        return self.target.namespace

    @property
    def api(self) -> Any:
        """The official client's ``ApiClient`` for this context (made on first use)."""
        if self._api is None:
            from ame.backends.kubernetes.apply import api_client

            self._api = api_client(self.target)
        return self._api

    def _typed(self, api_class: str) -> Any:
        from kubernetes import client

        return getattr(client, api_class)(self.api)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """The client's errors inside the block, as one line each."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, MaxRetryError

        try:
            yield
        except ApiException as exc:
            raise ClusterRefusedError(f"{what}: {_reason(exc)}", int(exc.status or 0)) from exc
        except HTTPError as exc:
            host = getattr(self._api.configuration, "host", "?") if self._api else "?"
            url = exc.url if isinstance(exc, MaxRetryError) else None
            raise ClusterUnreachableError(
                f"{what}: no Kubernetes API server answered at {host} ({type(exc).__name__})", url
            ) from exc

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        with self._errors(what):
            return method(*args, _request_timeout=TIMEOUT, **kwargs)

    # --- the calls ---------------------------------------------------------------

    def invoke(self, call: Call) -> Any:
        """Make one ``Call`` (an apply, a delete, a listing of any kind ame renders)."""
        method = getattr(self._typed(call.api), call.method)
        return self._call(call.what, method, *call.args, **call.kwargs)

    def deployments(self, label_selector: str) -> list[Any]:
        """``list_namespaced_deployment``: typed ``V1Deployment`` objects."""
        return items(self.invoke(list_call("Deployment", self.namespace, label_selector)))

    def jobs(self, label_selector: str) -> list[Any]:
        """``list_namespaced_job``: typed ``V1Job`` objects."""
        return items(self.invoke(list_call("Job", self.namespace, label_selector)))

    def pods(self, label_selector: str) -> list[Any]:
        """``list_namespaced_pod``: typed ``V1Pod`` objects."""
        return items(self.invoke(list_call("Pod", self.namespace, label_selector)))

    def nodes(self) -> list[Any]:
        """``list_node`` (cluster-scoped: a namespaced account may be refused)."""
        return items(self._call("listing nodes", self._typed("CoreV1Api").list_node))

    def pod(self, name: str) -> Any:
        """``read_namespaced_pod``: one typed ``V1Pod``."""
        core = self._typed("CoreV1Api")
        return self._call(f"reading pod {name}", core.read_namespaced_pod, name, self.namespace)

    def pod_log(self, pod: str, container: str, tail: Optional[int] = None) -> str:
        """``read_namespaced_pod_log``: one container's log (the last ``tail`` lines)."""
        core = self._typed("CoreV1Api")
        read = core.read_namespaced_pod_log
        what = f"reading the log of pod {pod}"
        return str(
            self._call(what, read, pod, self.namespace, container=container, tail_lines=tail)
        )

    def follow_log(self, pod: str, container: str) -> Iterator[bytes]:
        """``read_namespaced_pod_log(follow=True)``: the log's chunks as they are written.

        No read timeout (unlike the other calls): a task may print nothing for hours.
        """
        read = self._typed("CoreV1Api").read_namespaced_pod_log
        with self._errors(f"following the log of pod {pod}"):
            answer = read(pod, self.namespace, container=container, follow=True,
                          _preload_content=False)  # fmt: skip
        return answer.stream()

    def watch_pods(self, label_selector: str, timeout: int) -> Iterator[Any]:
        """A watch of ``list_namespaced_pod``: each changed ``V1Pod``."""
        return self._watch("Pod", label_selector=label_selector, timeout_seconds=timeout)

    def watch_one(self, kind: str, field_selector: str, timeout: int) -> Iterator[Any]:
        """A watch of one ``Job`` or ``Deployment`` (by ``metadata.name=``): each new state."""
        return self._watch(kind, field_selector=field_selector, timeout_seconds=timeout)

    def _watch(self, kind: str, **kwargs: Any) -> Iterator[Any]:
        from kubernetes import watch

        api, part = NAMESPACED[kind]
        method = getattr(self._typed(api), f"list_namespaced_{part}")
        with self._errors(f"watching {kind}s in {self.namespace}"):
            for event in watch.Watch().stream(method, self.namespace, **kwargs):
                yield event["object"]


def _reason(exc: Any) -> str:
    """The API server's own message (its Status object), else the HTTP reason."""
    try:
        status = json.loads(exc.body)
        message = status.get("message")
        if message:
            return f"{exc.status} {message}"
    except (TypeError, ValueError, AttributeError):
        pass
    return f"{exc.status} {exc.reason}"
