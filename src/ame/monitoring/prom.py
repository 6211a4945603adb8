"""``ame_feature_drift_psi`` on the server's ``/metrics``, from the store.

The drift check runs in another process (``ame monitor``, a schedule, a
monitoring task) and records its result as an MLflow run. When ``/metrics`` is
scraped, each worker reports the PSI values of the latest check of the version
it serves, read from the store and cached for ``ttl`` seconds. The read happens
on a background thread: a scrape never waits on the store, it gets the values
of the last read (nothing until the first read has finished). Every worker
reads the same run, so the values agree whichever worker answers the scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ame.registry.store import Store

log = logging.getLogger(__name__)

DEFAULT_TTL = 30.0
PSI_PREFIX = "psi."
PREDICTION_PSI_PREFIX = "prediction_psi."


class DriftCollector:
    """A prometheus-client collector of the served version's latest drift check."""

    def __init__(
        self,
        serving: Callable[[], tuple[str, str]],
        tracking_uri: str,
        registry_uri: Optional[str] = None,
        ttl: float = DEFAULT_TTL,
    ) -> None:
        self.serving = serving
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.ttl = ttl
        self._values: dict[tuple[str, str], dict[str, float]] = {}
        self._read_at: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._reading = False

    def _store(self) -> Store:
        """The store the checks are recorded in, as the registry's record of it."""
        from ame.registry.store import Store, sqlite_path

        embedded = sqlite_path(self.tracking_uri) is not None
        return Store(self.tracking_uri, self.registry_uri, None, embedded)

    def describe(self) -> list[Any]:
        return []  # no fixed description: the registry must not call collect() to find one

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        key = self.serving()
        if time.monotonic() - self._read_at.get(key, float("-inf")) >= self.ttl:
            self._refresh(key)
        family = GaugeMetricFamily(
            "ame_feature_drift_psi",
            "PSI of each feature (and prediction_<output>) in the latest drift check.",
            labels=["model", "version", "feature"],
        )
        for name, value in sorted(self._values.get(key, {}).items()):
            family.add_metric([key[0], key[1], name], value)
        yield family

    def _refresh(self, key: tuple[str, str]) -> None:
        with self._lock:
            if self._reading:
                return
            self._reading = True
        threading.Thread(target=self._read, args=(key,), daemon=True, name="ame-drift").start()

    def _read(self, key: tuple[str, str]) -> None:
        try:
            from ame.monitoring.check import latest_check

            metrics = latest_check(self._store(), *key) or {}
            values = {}
            for name, value in metrics.items():
                if name.startswith(PSI_PREFIX):
                    values[name[len(PSI_PREFIX) :]] = value
                elif name.startswith(PREDICTION_PSI_PREFIX):
                    values[f"prediction_{name[len(PREDICTION_PSI_PREFIX) :]}"] = value
            self._values[key] = values
        except Exception as exc:  # the store may be down: keep the last values
            log.warning("could not read the latest drift check of %s/%s: %s", *key, exc)
        finally:
            self._read_at[key] = time.monotonic()
            self._reading = False
