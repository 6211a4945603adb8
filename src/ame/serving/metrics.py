"""Prometheus metrics of the server, correct with one worker process or many.

With several workers each process counts on its own; prometheus-client's
multiprocess mode keeps those counts in files under ``PROMETHEUS_MULTIPROC_DIR``
and ``/metrics`` (answered by whichever worker gets the scrape) sums them.
``enable_multiprocess`` must run in the supervisor before any worker starts.
"""

from __future__ import annotations

import os
from typing import Any, Optional

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def enable_multiprocess(directory: str) -> None:
    """Switch prometheus-client to multiprocess mode, even if it was imported already."""
    os.environ[MULTIPROC_ENV] = directory
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()


def mark_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (its counters keep counting in the total)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class Metrics:
    """The server's metrics; one instance per worker process."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # Metrics live in a private registry so two servers in one process
        # (tests) do not collide in the global one.
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ame_requests_total",
            "HTTP requests answered, by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ame_request_duration_seconds",
            "Time from receiving a request to sending its response.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "ame_batch_size",
            "Requests merged into one predict call.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "ame_queue_wait_seconds",
            "Time a request waited in the batcher's queue before its predict call began.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "ame_errors_total",
            "Requests that failed, by route and kind (client, server, too_large).",
            ["route", "kind"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "ame_model_info",
            "1 for the model version a worker is serving.",
            ["model", "version"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.swaps = Counter(
            "ame_model_swaps_total",
            "Times the served version changed because its alias moved.",
            registry=self.registry,
        )
        self._served: Optional[tuple[str, str]] = None
        # Collectors whose values are the same in every worker (read from the
        # store, e.g. ame.monitoring's drift gauge): reported as they are, not summed.
        self._shared: list[Any] = []

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            kind = "too_large" if status == 413 else ("server" if status >= 500 else "client")
            self.errors.labels(route, kind).inc()

    def serving(self, model: str, version: str) -> None:
        """Record which version this worker serves now."""
        if self._served is not None:
            self.model_info.labels(*self._served).set(0)
        self.model_info.labels(model, version).set(1)
        self._served = (model, version)

    def add_collector(self, collector: Any) -> None:
        """Report ``collector`` (a custom prometheus-client collector) on /metrics too."""
        self.registry.register(collector)
        self._shared.append(collector)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry: Any = self.registry
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in self._shared:
                registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST
