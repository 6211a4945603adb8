"""What runs in each Ray Serve replica: ame's own ASGI app, mounted under the app's route.

Serve imports ``build`` (the ``import_path`` of every ame application) on the
cluster with the ``args`` ame put in the application's config, and each
replica then loads the model and builds the same ``ServingApp`` ``ame serve``
runs, so MLflow scoring, v2 REST and batching answer exactly as they do
locally. Three things differ from a local worker, and live here:

- **Route.** Serve mounts the app under its ``route_prefix``; ame's app
  dispatches on exact paths, so the prefix is stripped before it sees them.
- **The version.** The application's ``user_config`` carries the version ame
  deployed (``{"version": "7"}``). When the alias moves, ame changes only that
  value, which Serve applies as a *lightweight* update: it calls
  ``reconfigure`` on each running replica, replica by replica, without
  restarting any. ``reconfigure`` loads the new version beside the old one and
  swaps it in with one reference assignment, so requests in flight finish on
  the version they started with and none fails. A replica that follows an
  alias also polls it as a local server does, so ``ame model alias`` moves a
  Ray deployment even when no ``ame deploy`` follows it.
- **/metrics.** Behind Serve's proxy a scrape reaches one replica at random,
  so each replica publishes its own metrics every ``PUBLISH_SECONDS`` into the
  cluster's key-value store (one key per replica, under the application's
  instance), and ``/metrics`` answers with the sum over all of them: counters
  and histograms summed over every replica that ever served this instance
  (a retired or crashed replica's counts stay in the total, as they do for a
  local server's dead workers), gauges as the largest value among the replicas
  alive now (``ame_model_info`` is 1 for each version some replica serves).
  ``ame_replicas`` says how many replicas reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, Optional

log = logging.getLogger(__name__)

KV_NAMESPACE = "ame_serve_metrics"
PUBLISH_SECONDS = 2.0
# A replica that has not published for this long is no longer alive (its
# counters stay in the total; its gauges do not).
STALE_SECONDS = 20.0
DEPLOYMENT_NAME = "AmeModel"


# --- metrics aggregation (pure functions, tested without Ray) -------------------


def _label_text(labels: dict[str, str]) -> str:
    if not labels:
        return ""

    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    inner = ",".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def merge_metrics(live: Iterable[str], retired: Iterable[str] = ()) -> str:
    """One Prometheus text exposition summing several replicas' expositions.

    ``live`` are the texts of replicas alive now, ``retired`` those of
    replicas gone (replaced by a roll, or crashed): counters, histograms and
    summaries add up over both, gauges are the largest value among the live
    ones. ``*_created`` samples (creation timestamps) are left out: they do
    not add up, and Prometheus does not need them.
    """
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, tuple[str, str]] = {}  # name -> (type, help)
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    order: list[str] = []

    def add(text: str, is_live: bool) -> None:
        for family in text_string_to_metric_families(text):
            kind = family.type
            if kind == "gauge" and not is_live:
                continue
            if family.name not in families:
                families[family.name] = (kind, family.documentation)
                values[family.name] = {}
                order.append(family.name)
            table = values[family.name]
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if kind == "gauge":
                    table[key] = max(table.get(key, -math.inf), sample.value)
                else:
                    table[key] = table.get(key, 0.0) + sample.value

    for text in live:
        add(text, True)
    for text in retired:
        add(text, False)
    lines: list[str] = []
    for name in order:
        kind, doc = families[name]
        lines.append(f"# HELP {name} {doc}")
        lines.append(f"# TYPE {name} {kind}")
        for (sample, labels), value in values[name].items():
            lines.append(f"{sample}{_label_text(dict(labels))} {_number(value)}")
    return "\n".join(lines) + "\n"


# --- the replica -----------------------------------------------------------------


class _Publisher:
    """This replica's metrics in the cluster's key-value store, and the sum of everyone's."""

    def __init__(self, metrics: Any, app: str, instance: str, replica: str) -> None:
        self.metrics = metrics
        self.prefix = f"{app}/"
        self.instance_prefix = f"{app}/{instance}/"
        self.key = f"{self.instance_prefix}{replica}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ame-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(PUBLISH_SECONDS):
            with contextlib.suppress(Exception):
                self.publish()

    def publish(self, retired: bool = False) -> None:
        """Write this replica's exposition under its key (``retired`` when it goes away)."""
        from ray.experimental.internal_kv import _internal_kv_put

        body, _ = self.metrics.render()
        entry = {"ts": time.time(), "retired": retired, "text": body.decode("utf-8")}
        _internal_kv_put(self.key, json.dumps(entry), overwrite=True, namespace=KV_NAMESPACE)

    def aggregate(self) -> bytes:
        """Every replica's latest exposition of this instance, merged (see the module doc)."""
        from ray.experimental.internal_kv import (
            _internal_kv_del,
            _internal_kv_get,
            _internal_kv_list,
        )

        self.publish()
        live: list[str] = []
        retired: list[str] = []
        now = time.time()
        for raw_key in _internal_kv_list(self.prefix, namespace=KV_NAMESPACE):
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            if not key.startswith(self.instance_prefix):
                # An earlier deployment of this model, stopped since: not ours to count.
                with contextlib.suppress(Exception):
                    _internal_kv_del(key, namespace=KV_NAMESPACE)
                continue
            raw = _internal_kv_get(key, namespace=KV_NAMESPACE)
            if raw is None:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            fresh = not entry.get("retired") and now - float(entry.get("ts", 0)) < STALE_SECONDS
            (live if fresh else retired).append(str(entry.get("text", "")))
        text = merge_metrics(live, retired)
        text += (
            "# HELP ame_replicas Replicas of this deployment whose metrics are in this answer.\n"
            "# TYPE ame_replicas gauge\n"
            f"ame_replicas {len(live)}\n"
        )
        return text.encode("utf-8")

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.publish(retired=True)


class MountedApp:
    """ame's ``ServingApp`` under Serve's route prefix, with cluster-wide ``/metrics``."""

    def __init__(self, inner: Any, publisher: Optional[_Publisher]) -> None:
        self.inner = inner
        self.publisher = publisher

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path") or ""
            path = scope.get("path") or "/"
            if root and path.startswith(root):
                path = path[len(root) :] or "/"
                scope = {**scope, "path": path, "raw_path": path.encode(), "root_path": ""}
            if path == "/metrics" and scope.get("method") == "GET" and self.publisher:
                loop = asyncio.get_running_loop()
                body = await loop.run_in_executor(None, self.publisher.aggregate)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.inner(scope, receive, send)


class AmeModelReplica:
    """One replica: the model loaded once, ame's app built on it (see the module doc)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from ame.serving.app import AppConfig, build_app
        from ame.serving.sources import load_source

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        self.spec = spec
        self.tracking_uri: Optional[str] = spec.get("tracking_uri")
        model = load_source(str(spec["ref"]), self.tracking_uri)
        self.model_name = model.name
        config = AppConfig(
            max_batch_size=int(spec.get("max_batch_size") or 32),
            max_latency_ms=float(
                spec["max_latency_ms"] if spec.get("max_latency_ms") is not None else 5.0
            ),
            poll_interval=float(spec.get("poll_interval") or 5.0) if model.follows else 0.0,
            tracking_uri=self.tracking_uri,
        )
        self.server = build_app(model, config)
        self._lock = asyncio.Lock()
        publisher: Optional[_Publisher] = None
        try:
            from ray import serve

            context = serve.get_replica_context()
            publisher = _Publisher(
                self.server.metrics,
                context.app_name,
                str(spec.get("instance", "0")),
                context.replica_id.unique_id,
            )
            publisher.start()
        except Exception as exc:  # outside Serve (tests of the class itself): local metrics
            log.debug("metrics are this replica's only: %s", exc)
        self.publisher = publisher
        self.mounted = MountedApp(self.server, publisher)

    def __serve_build_asgi_app__(self) -> MountedApp:
        """The ASGI app Serve runs (late-bound: it needs the model loaded in ``__init__``)."""
        return self.mounted

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve's lightweight update: swap in ``user_config["version"]`` without a restart."""
        version = str((user_config or {}).get("version") or "")
        if not version or version == self.server.state.model.version:
            return
        async with self._lock:
            if version == self.server.state.model.version:
                return
            loop = asyncio.get_running_loop()
            state = await loop.run_in_executor(None, self._load, version)
            self.server.state = state  # the swap: one reference assignment, as in ame serve
            self.server.metrics.serving(self.model_name, version)
            self.server.metrics.swaps.inc()
            log.info("now serving %s version %s", self.model_name, version)

    def _load(self, version: str) -> Any:
        from ame.serving.app import make_state
        from ame.serving.sources import AliasWatcher, load_source

        follows = self.server.state.model.follows
        if follows:
            model = AliasWatcher(self.model_name, follows, self.tracking_uri).load(version)
        else:
            model = load_source(f"{self.model_name}/{version}", self.tracking_uri)
        return make_state(model)

    def check_health(self) -> None:
        """Serve's health check: healthy once the app started (it raises while not)."""
        if not self.server.ready:
            raise RuntimeError("the model server is not ready")

    def __del__(self) -> None:
        publisher = getattr(self, "publisher", None)
        if publisher is not None:
            publisher.close()


def build(args: dict[str, Any]) -> Any:
    """Serve's application builder (``import_path: ame.backends.ray.replica:build``)."""
    from ray import serve

    ingress = serve.ingress()(AmeModelReplica)
    deployment = serve.deployment(name=DEPLOYMENT_NAME)(ingress)
    return deployment.bind(dict(args))
