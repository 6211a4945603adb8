"""Deployments on Ray Serve: one Serve application per model, through the dashboard's REST API.

As for jobs, ame never joins the cluster as a driver: it reads and writes
Serve's declarative config over the dashboard (``GET``/``PUT
/api/serve/applications/``). That config *is* the deployment record: each ame
application carries, in its ``args``, the model, the reference it follows
(``iris@champion``), the project and the namespace, and in its
``user_config`` the version deployed. Listing, stopping and reading logs all
start from it, so they work from any machine that reaches the dashboard, and
there is no second copy on disk to go stale.

Serve's config is one document for the whole cluster: a ``PUT`` replaces every
application. ame therefore reads the current document, changes only its own
application and writes it back, keeping every other application as deployed.
A cluster whose applications were started with ``serve.run`` (imperatively) has
no such document, and ame refuses rather than delete them.

What each ame.yml ``deployment`` key does here is decided in ``serve_settings``;
a key with no effect on Ray is one warning line saying so.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlparse

from ame.backends.base import DeploymentView
from ame.backends.ray.replica import DEPLOYMENT_NAME
from ame.errors import DeploymentError

if TYPE_CHECKING:
    from ame.backends.base import DeployRequest
    from ame.backends.ray.cluster import RayCluster
    from ame.serving.options import ServingOptions
    from ame.spec.model import Deployment

log = logging.getLogger(__name__)

IMPORT_PATH = "ame.backends.ray.replica:build"
ENV_SERVE_HOST = "AME_RAY_SERVE_HOST"
ENV_SERVE_PORT = "AME_RAY_SERVE_PORT"
DEFAULT_SERVE_PORT = 8000
# A replica with no ``resources.cpu`` asks for this much: serving a small model
# is mostly waiting, and a whole CPU per replica would crowd out jobs.
DEFAULT_REPLICA_CPUS = 0.5
# Requests one replica takes at once. Serve's default (5) suits a replica that
# handles one request at a time; ame's app is asynchronous and merges
# concurrent requests into one predict call, which needs them to arrive together.
MAX_ONGOING_REQUESTS = 128
DEPLOY_TIMEOUT = 300.0
_API = "/api/serve/applications/"

# Lines already logged by this process (a key is explained once per command).
_warned: set[str] = set()


def _warn_once(line: str) -> None:
    if line not in _warned:
        _warned.add(line)
        log.warning("%s", line)


@dataclass(frozen=True)
class ServeSettings:
    """A model's ame.yml ``deployment`` as Serve options, with the keys that do nothing here."""

    deployment: dict[str, Any]  # Serve's per-deployment options
    route_prefix: Optional[str]
    max_batch_size: Optional[int] = None
    max_latency_ms: Optional[float] = None
    ignored: list[str] = field(default_factory=list)


def serve_settings(
    model: str, spec: Optional[Deployment], serving: Optional[ServingOptions] = None
) -> ServeSettings:
    """What ame.yml's ``deployment`` of ``model`` means on Ray Serve.

    ``serving`` is the merged ``ServingOptions`` (``ame.serving.options``:
    flags, then ame.yml, then defaults) and decides the replica count and the
    batching; without it ``spec`` alone is merged. ``spec`` still says the
    Ray-only keys (resources, autoscaling, path) and which keys do nothing here.

    ``replicas`` is ``num_replicas``; ``autoscaling`` is Serve's autoscaler
    (``minReplicas``/``maxReplicas``/``targetOngoingRequests``, with
    ``replicas`` as the initial count); ``resources`` cpu, memory and
    ``nvidia.com/gpu`` are each replica's ``ray_actor_options``; ``batching``
    is ame's own batcher in every replica; ``path`` is the route prefix.
    The others (``image``, ``ingressAnnotations``, ``enableTls``, ``host``,
    ``port``, ``resources.storage``, ``autoscaling.targetCpuUtilization``)
    have no Serve equivalent and are listed in ``ignored``, one line each.
    """
    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "max_ongoing_requests": MAX_ONGOING_REQUESTS,
    }
    actor: dict[str, Any] = {"num_cpus": DEFAULT_REPLICA_CPUS}
    ignored: list[str] = []
    where = f"models[{model}].deployment"
    if serving is None:
        from ame.serving.options import merge_options

        serving = merge_options(None, spec)
    if spec is None:
        options["num_replicas"] = serving.workers
        options["ray_actor_options"] = actor
        return ServeSettings(options, None)
    res = spec.resources
    if res.cpu:
        actor["num_cpus"] = float(res.cpu)
    if res.memory:
        actor["memory"] = int(res.memory)
    if res.gpu:
        actor["num_gpus"] = float(res.gpu)
    if res.storage:
        ignored.append(f"{where}.resources.storage: Ray does not limit a replica's disk")
    options["ray_actor_options"] = actor
    scaling = spec.autoscaling
    if scaling is not None:
        low, high = scaling.min_replicas, max(scaling.max_replicas, scaling.min_replicas)
        config: dict[str, Any] = {
            "min_replicas": low,
            "max_replicas": high,
            "initial_replicas": min(max(serving.workers, low), high),
        }
        if scaling.target_ongoing_requests is not None:
            config["target_ongoing_requests"] = scaling.target_ongoing_requests
            # Serve needs room above the target to see the load it scales on.
            wanted = math.ceil(scaling.target_ongoing_requests * 2)
            options["max_ongoing_requests"] = max(MAX_ONGOING_REQUESTS, wanted)
        if scaling.target_cpu_utilization is not None:
            ignored.append(
                f"{where}.autoscaling.targetCpuUtilization: Serve scales on ongoing requests "
                "(targetOngoingRequests), not CPU"
            )
        options["autoscaling_config"] = config
    else:
        options["num_replicas"] = serving.workers
    for key, value, why in (
        ("image", spec.image, "replicas run in the cluster nodes' Python environment"),
        ("ingressAnnotations", spec.ingress_annotations, "Ray Serve has no Ingress"),
        ("enableTls", spec.enable_tls, "Serve's proxy serves plain HTTP"),
        ("host", spec.host, "Serve's proxy answers every host name"),
        (
            "port",
            spec.port,
            f"Serve's proxy has one port for the whole cluster ({ENV_SERVE_PORT})",
        ),
    ):
        if value not in (None, False, {}, "", []):
            ignored.append(f"{where}.{key}: has no effect on the ray backend: {why}")
    prefix = None
    if spec.path:
        prefix = "/" + spec.path.strip("/")
    # None leaves the replica's own default, which is the same one: an
    # application deployed before stays byte-for-byte the same config.
    return ServeSettings(
        options,
        prefix,
        max_batch_size=serving.max_batch_size if serving.given("max_batch_size") else None,
        max_latency_ms=serving.max_latency_ms if serving.given("max_latency_ms") else None,
        ignored=ignored,
    )


def app_name(namespace: str, model: str) -> str:
    """The Serve application of ``model`` in ``namespace``: ``ame-iris`` (``ame-NS-iris``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return f"ame-{safe}" if namespace == "ame" else f"ame-{namespace}-{safe}"


def default_route(namespace: str, model: str) -> str:
    """``/iris`` (``/NS/iris`` outside the default namespace)."""
    return f"/{model}" if namespace == "ame" else f"/{namespace}/{model}"


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


class RayServe:
    """ame's applications on one cluster's Serve: deploy, list, stop, logs."""

    def __init__(self, cluster: RayCluster) -> None:
        self.cluster = cluster
        self.head = urlparse(cluster.address).hostname or "127.0.0.1"

    # --- the config document ------------------------------------------------------

    def details(self) -> dict[str, Any]:
        """Serve's instance details (applications, their status, config, replicas)."""
        resp = self.cluster.client._do_request("GET", _API)
        if resp.status_code != 200:
            raise DeploymentError(
                f"the Ray cluster at {self.cluster.address} did not describe its Serve "
                f"applications (HTTP {resp.status_code}: {resp.text[:200]})"
            )
        data: dict[str, Any] = resp.json()
        return data

    def _put(self, details: dict[str, Any], apps: list[dict[str, Any]]) -> None:
        body: dict[str, Any] = {"applications": apps, "http_options": self._http_options(details)}
        if details.get("proxy_location"):
            body["proxy_location"] = details["proxy_location"]
        resp = self.cluster.client._do_request("PUT", _API, json_data=body)
        if resp.status_code != 200:
            first = (resp.text or "").strip().splitlines()
            raise DeploymentError(
                f"Ray Serve refused the deployment (HTTP {resp.status_code}): "
                f"{(first[-1] if first else '')[:400]}"
            )

    def _http_options(self, details: dict[str, Any]) -> dict[str, Any]:
        """Serve's proxy options: those it runs with, else ame's choice (see the docs)."""
        running = details.get("http_options") or {}
        if details.get("controller_info") and running.get("port"):
            return {"host": running.get("host", "0.0.0.0"), "port": int(running["port"])}
        host = os.environ.get(ENV_SERVE_HOST) or (
            "127.0.0.1" if _is_loopback(self.head) else "0.0.0.0"
        )
        port = int(os.environ.get(ENV_SERVE_PORT) or DEFAULT_SERVE_PORT)
        return {"host": host, "port": port}

    @staticmethod
    def _configs(details: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Every application's deployed config, by name; refuses imperative applications."""
        configs: dict[str, dict[str, Any]] = {}
        for name, app in (details.get("applications") or {}).items():
            config = app.get("deployed_app_config")
            if config is None:
                raise DeploymentError(
                    f"the Serve application '{name}' on this cluster was started with serve.run, "
                    "so Serve has no config to keep it by; ame deploys only through the "
                    "declarative API and will not replace it (deploy it with `serve deploy`)"
                )
            configs[name] = config
        return configs

    def url(self, details: dict[str, Any], prefix: str) -> str:
        """The model's base URL behind Serve's proxy on the head node."""
        port = self._http_options(details)["port"]
        return f"http://{self.head}:{port}{prefix.rstrip('/')}"

    # --- deploy ---------------------------------------------------------------------

    def deploy(
        self,
        request: DeployRequest,
        *,
        namespace: str,
        project: Optional[str],
        timeout: float = DEPLOY_TIMEOUT,
    ) -> DeploymentView:
        """Create or update ``request.model``'s application; return once it serves the version.

        Only the version changing (its alias moved) is a ``user_config``
        change, which Serve applies to running replicas in place (see
        ``ame.backends.ray.replica``): no replica restarts, no request fails.
        Other changes (replicas, resources, batching) are Serve's rolling update.
        """
        settings = serve_settings(request.model, request.settings, request.options)
        for line in settings.ignored:
            _warn_once(line)
        name = app_name(namespace, request.model)
        details = self.details()
        configs = self._configs(details)
        old = configs.get(name)
        old_args = (old or {}).get("args") or {}
        prefix = settings.route_prefix or default_route(namespace, request.model)
        args: dict[str, Any] = {
            "ame_namespace": namespace,
            "model": request.model,
            "ref": request.ref,
            "project": project,
            "tracking_uri": request.store.tracking_uri,
            "max_batch_size": settings.max_batch_size,
            "max_latency_ms": settings.max_latency_ms,
            "instance": old_args.get("instance") or uuid.uuid4().hex[:12],
        }
        old_status = ((details.get("applications") or {}).get(name) or {}).get("status")
        if old_status in ("DEPLOY_FAILED", "UNHEALTHY"):
            # Serve does nothing for a config equal to the failed one: a new
            # attempt must differ (the replicas reload the code and the model).
            args["attempt"] = uuid.uuid4().hex[:8]
        deployment = dict(settings.deployment)
        deployment["user_config"] = {"version": request.version}
        deployment.setdefault("graceful_shutdown_timeout_s", 30)
        env = {**request.store.env(), "MLFLOW_DISABLE_TELEMETRY": "true"}
        config = {
            "name": name,
            "route_prefix": prefix,
            "import_path": IMPORT_PATH,
            "args": args,
            "runtime_env": {"env_vars": env},
            "deployments": [deployment],
        }
        for other_name, other in configs.items():
            if other_name != name and other.get("route_prefix") == prefix:
                raise DeploymentError(
                    f"the route {prefix} is taken by the Serve application '{other_name}'; "
                    "set models[].deployment.path in ame.yml to another prefix"
                )
        configs[name] = config
        self._put(details, list(configs.values()))
        return self._wait_serving(request.model, name, request.version, timeout)

    def _wait_serving(self, model: str, name: str, version: str, timeout: float) -> DeploymentView:
        import httpx

        deadline = time.monotonic() + timeout
        last = "not deployed yet"
        while True:
            details = self.details()
            app = (details.get("applications") or {}).get(name)
            if app is not None:
                status = str(app.get("status"))
                last = f"{status}: {str(app.get('message') or '')[:300]}"
                if status == "DEPLOY_FAILED":
                    raise DeploymentError(
                        f"Ray Serve could not deploy {model}: {_first_error(app)} "
                        f"(ame deployment logs {model} --backend ray)"
                    )
                if status == "RUNNING":
                    view = self._view(details, name, app)
                    if view is not None:
                        try:
                            served = httpx.get(f"{view.url}/v2/models/{model}", timeout=5.0)
                            versions = served.json().get("versions") or []
                        except (httpx.HTTPError, ValueError):
                            versions = []
                        # every replica reconfigured: the status says RUNNING only after
                        if [str(v) for v in versions] == [version]:
                            return view
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"the Ray Serve deployment of {model} did not serve version {version} "
                    f"within {timeout:.0f}s ({last})"
                )
            time.sleep(0.5)

    # --- list, stop, logs -------------------------------------------------------------

    def _ours(self, details: dict[str, Any], namespace: str) -> dict[str, dict[str, Any]]:
        found = {}
        for name, app in (details.get("applications") or {}).items():
            args = (app.get("deployed_app_config") or {}).get("args") or {}
            if args.get("ame_namespace") == namespace and args.get("model"):
                found[name] = app
        return found

    def _view(
        self, details: dict[str, Any], name: str, app: dict[str, Any]
    ) -> Optional[DeploymentView]:
        config = app.get("deployed_app_config") or {}
        args = config.get("args") or {}
        if not args.get("model"):
            return None
        deployments = app.get("deployments") or {}
        dep = deployments.get(DEPLOYMENT_NAME) or {}
        replicas = [r for r in dep.get("replicas") or [] if r.get("state") == "RUNNING"]
        user = ((config.get("deployments") or [{}])[0]).get("user_config") or {}
        status = str(app.get("status", "UNKNOWN"))
        state = {"RUNNING": "ready", "DEPLOYING": "deploying", "DELETING": "stopping"}.get(
            status, status.lower().replace("_", " ")
        )
        return DeploymentView(
            backend="ray",
            model=str(args["model"]),
            version=str(user.get("version", "?")),
            ref=str(args.get("ref", "?")),
            url=self.url(details, str(app.get("route_prefix") or config.get("route_prefix"))),
            state=state,
            replicas=len(replicas),
            detail={
                "application": name,
                "target_replicas": dep.get("target_num_replicas"),
                "project": args.get("project"),
                "deployment": name,
            },
        )

    def views(self, namespace: str) -> list[DeploymentView]:
        """ame's applications in ``namespace``, with the version each serves now."""
        import httpx

        details = self.details()
        views = []
        for name, app in sorted(self._ours(details, namespace).items()):
            view = self._view(details, name, app)
            if view is None:
                continue
            if view.state == "ready":
                # a backend asks the server what it serves (the alias may have moved it)
                try:
                    answer = httpx.get(f"{view.url}/v2/models/{view.model}", timeout=5.0).json()
                    served = [str(v) for v in answer.get("versions") or []]
                except (httpx.HTTPError, ValueError, AttributeError):
                    served = []
                if served:
                    from dataclasses import replace

                    view = replace(view, version=",".join(served))
            views.append(view)
        return views

    def _find(self, details: dict[str, Any], namespace: str, model: str) -> tuple[str, Any]:
        name = app_name(namespace, model)
        app = self._ours(details, namespace).get(name)
        if app is None:
            raise DeploymentError(
                f"no Ray Serve deployment of '{model}' at {self.cluster.address} "
                f"(namespace {namespace})"
            )
        return name, app

    def stop(self, namespace: str, model: str, timeout: float = 120.0) -> DeploymentView:
        """Remove ``model``'s application (Serve drains its replicas) and wait until it is gone."""
        details = self.details()
        name, app = self._find(details, namespace, model)
        view = self._view(details, name, app)
        configs = self._configs(details)
        configs.pop(name, None)
        self._put(details, list(configs.values()))
        deadline = time.monotonic() + timeout
        while name in (self.details().get("applications") or {}):
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"the Serve application {name} was still shutting down after {timeout:.0f}s"
                )
            time.sleep(0.5)
        assert view is not None
        from dataclasses import replace

        return replace(view, state="stopped", replicas=0)

    def logs(self, namespace: str, model: str, tail: Optional[int] = None) -> list[str]:
        """Each running replica's Serve log, its lines prefixed with the replica's id."""
        details = self.details()
        _, app = self._find(details, namespace, model)
        lines: list[str] = []
        dep = (app.get("deployments") or {}).get(DEPLOYMENT_NAME) or {}
        for replica in dep.get("replicas") or []:
            node, path = replica.get("node_id"), replica.get("log_file_path")
            rid = str(replica.get("replica_id", "?"))
            if not node or not path:
                continue
            params: dict[str, Any] = {"node_id": node, "filename": path.lstrip("/")}
            params["lines"] = tail if tail else -1
            resp = self.cluster.client._do_request("GET", "/api/v0/logs/file", params=params)
            if resp.status_code != 200:
                lines.append(f"[{rid}] (log not readable: HTTP {resp.status_code})")
                continue
            text = resp.content.decode("utf-8", errors="replace")
            # the state API prefixes its stream with a status byte ("1" ok, "0" error)
            if text[:1] in ("0", "1"):
                text = text[1:]
            lines.extend(f"[{rid}] {line}" for line in text.splitlines())
        return lines[-tail:] if tail else lines


def _first_error(app: dict[str, Any]) -> str:
    """The most telling line of a failed application (the replica's exception)."""
    texts = [str(app.get("message") or "")]
    for dep in (app.get("deployments") or {}).values():
        texts.append(str(dep.get("message") or ""))
    for text in texts:
        for line in reversed(text.strip().splitlines()):
            line = line.strip()
            if line and ("Error" in line or "error" in line):
                return line[:400]
    return (texts[0].strip().splitlines() or ["no message"])[-1][:400]
