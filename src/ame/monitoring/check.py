"""The drift check: a version's logged traffic in a window against its reference.

``run_check`` reads the payload logs of one version (``ame.monitoring.location``),
its reference (``ame.monitoring.reference``), compares every feature and every
prediction column they share (``ame.monitoring.drift``), and records the result
as an MLflow run in the experiment ``monitoring/<model>``: one metric per
feature (``psi.<feature>``, ``pvalue.<feature>``), so MLflow's UI plots drift
over time and the server can show the latest values on ``/metrics``.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.monitoring import drift
from ame.monitoring.errors import MonitoringError, NoTrafficError
from ame.monitoring.location import LogLocation, experiment_name, location_for, log_files
from ame.monitoring.reference import OUTPUT_PREFIX, load_reference
from ame.monitoring.writer import LATENCY_MS, META, PROTOCOL, REQUEST_ID, ROW, TIME, VERSION

if TYPE_CHECKING:
    from ame.registry.store import Store
    from ame.spec.model import Project

RUN_KIND_TAG = "ame.kind"
RUN_KIND = "drift-check"
MODEL_TAG = "ame.model"
VERSION_TAG = "ame.model_version"
_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNREAD = frozenset((REQUEST_ID, VERSION, PROTOCOL))
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` in seconds; MonitoringError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise MonitoringError(f"--since {text!r}: write a duration such as 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def metric_key(name: str) -> str:
    """A column name as MLflow accepts it in a metric key."""
    return _METRIC_UNSAFE.sub("_", name)


@dataclass
class CheckResult:
    """What a check found; ``drifted`` decides the exit code of ``ame monitor``."""

    model: str
    version: str
    since: Optional[float]
    until: float
    reference: str
    logs: str
    requests: int
    rows: int
    thresholds: drift.Thresholds
    features: list[drift.ColumnDrift] = field(default_factory=list)
    predictions: list[drift.ColumnDrift] = field(default_factory=list)
    latency_p50_ms: Optional[float] = None
    latency_p95_ms: Optional[float] = None
    first_request: Optional[float] = None
    run_id: Optional[str] = None
    seconds: float = 0.0

    @property
    def drifted(self) -> bool:
        return any(c.drifted for c in (*self.features, *self.predictions))

    @property
    def requests_per_hour(self) -> float:
        start = self.since if self.since is not None else self.first_request
        span = max(self.until - (start or self.until), 1.0)
        return self.requests * 3600.0 / span

    def as_dict(self, plot: bool = False) -> dict[str, Any]:
        """The JSON form (``ame monitor --json``)."""
        return {
            "model": self.model,
            "version": self.version,
            "since": self.since,
            "until": self.until,
            "reference": self.reference,
            "logs": self.logs,
            "requests": self.requests,
            "rows": self.rows,
            "requests_per_hour": self.requests_per_hour,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "thresholds": {"psi": self.thresholds.psi, "pValue": self.thresholds.p_value},
            "drifted": self.drifted,
            "features": [c.as_dict(plot) for c in self.features],
            "predictions": [c.as_dict(plot) for c in self.predictions],
            "run_id": self.run_id,
            "seconds": self.seconds,
        }


def read_traffic(files: list[Path], since: Optional[float]) -> Any:
    """The logged rows of ``files`` at or after ``since`` as one Arrow table (None if none).

    The per-row text columns (request id, version, protocol) are not read: the
    check does not need them, and over a million rows they cost more to read
    than every numeric column together. Requests are counted by ``ame.row == 0``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    cutoff = None
    if since is not None:
        cutoff = pa.scalar(int(since * 1_000_000), pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    for path in files:
        try:
            names = pq.read_schema(path).names
            wanted = [n for n in names if n not in _UNREAD]
            filters = [(TIME, ">=", cutoff)] if cutoff is not None and TIME in names else None
            table = pq.read_table(path, columns=wanted, filters=filters)
        except (OSError, pa.ArrowInvalid) as exc:
            raise MonitoringError(f"cannot read payload log {path}: {exc}") from exc
        if table.num_rows:
            tables.append(table)
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def _pairs(
    reference: Any, traffic: Any
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(features, predictions): columns found on both sides, as (label, ref column, log column)."""
    logged = set(traffic.column_names)
    features, predictions = [], []
    for name in reference.column_names:
        if name.startswith(OUTPUT_PREFIX):
            if name in logged:
                predictions.append((name[len(OUTPUT_PREFIX) :], name, name))
        elif f"input.{name}" in logged:
            features.append((name, name, f"input.{name}"))
    return features, predictions


def compare(
    reference: Any,
    traffic: Any,
    thresholds: drift.Thresholds,
    **options: Any,
) -> tuple[list[drift.ColumnDrift], list[drift.ColumnDrift]]:
    """Drift of every feature and prediction column that the reference and the logs share."""
    features, predictions = _pairs(reference, traffic)
    if not features:
        logged = [n[len("input.") :] for n in traffic.column_names if n.startswith("input.")]
        raise MonitoringError(
            "the reference and the logged traffic share no feature "
            f"(reference: {', '.join(reference.column_names) or 'none'}; "
            f"logged: {', '.join(logged) or 'none'})"
        )
    both = drift.compare(reference, traffic, features + predictions, thresholds, **options)
    return both[: len(features)], both[len(features) :]


def run_check(
    store: Store,
    ref: str,
    *,
    project: Optional[Project] = None,
    since: Optional[float] = 24 * 3600.0,
    reference: Optional[str] = None,
    thresholds: Optional[drift.Thresholds] = None,
    track: bool = True,
    now: Optional[float] = None,
) -> CheckResult:
    """Check version ``ref`` (``M``, ``M@alias``, ``M/3``) for drift over the last ``since`` s.

    Raises ``NoTrafficError`` (exit 2) when nothing was logged in the window and
    ``NoReferenceError`` (exit 2) when there is nothing to compare with. The
    thresholds default to the model's ``monitoring.thresholds`` in ``project``.
    """
    import numpy as np
    import pyarrow.compute as pc

    from ame.registry.facade import Registry

    began = time.perf_counter()
    version = Registry(store).resolve(ref)
    until = now if now is not None else time.time()
    start = until - since if since is not None else None
    if thresholds is None:
        thresholds = _project_thresholds(project, version.name)
    location = location_for(store, version.name, version.version)
    with tempfile.TemporaryDirectory(prefix="ame-monitor-") as scratch:
        traffic = read_traffic(log_files(location, start, Path(scratch)), start)
    if traffic is None:
        window = f"in the last {_describe(since)}" if since is not None else "at all"
        raise NoTrafficError(
            f"no logged traffic for {version.name} version {version.version} {window} "
            f"(payload logs: {location}); serve it with --log-payloads or monitoring.log"
        )
    ref_table, source = load_reference(store, version, project=project, override=reference)
    features, predictions = compare(ref_table, traffic, thresholds)
    latency = traffic.column(LATENCY_MS).to_numpy()
    times = traffic.column(TIME).cast("int64").to_numpy()
    result = CheckResult(
        model=version.name,
        version=version.version,
        since=start,
        until=until,
        reference=source,
        logs=str(location),
        requests=int(pc.sum(pc.equal(traffic.column(ROW), 0)).as_py() or 0),
        rows=traffic.num_rows,
        thresholds=thresholds,
        features=features,
        predictions=predictions,
        latency_p50_ms=float(np.percentile(latency, 50)),
        latency_p95_ms=float(np.percentile(latency, 95)),
        first_request=float(times.min()) / 1e6,
    )
    result.seconds = time.perf_counter() - began
    if track:
        result.run_id = track_check(store, result)
    return result


def _describe(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _project_thresholds(project: Optional[Project], model: str) -> drift.Thresholds:
    if project is not None:
        try:
            monitoring = project.model(model).monitoring
        except KeyError:
            monitoring = None
        if monitoring is not None:
            return drift.Thresholds(monitoring.thresholds.psi, monitoring.thresholds.p_value)
    return drift.Thresholds()


def track_check(store: Store, result: CheckResult) -> str:
    """Record ``result`` as a finished MLflow run in ``monitoring/<model>``; returns its id."""
    from ame.registry.runs import RunRecorder

    recorder = RunRecorder(store)
    experiment_id = recorder.ensure_experiment(experiment_name(result.model))
    tags = {
        RUN_KIND_TAG: RUN_KIND,
        MODEL_TAG: result.model,
        VERSION_TAG: result.version,
        "ame.drifted": str(result.drifted).lower(),
    }
    run_id = recorder.create_run(
        experiment_id, run_name=f"{result.model}/{result.version} drift", tags=tags
    )
    stamp = int(result.until * 1000)
    metrics: dict[str, float] = {
        "requests": float(result.requests),
        "rows": float(result.rows),
        "requests_per_hour": result.requests_per_hour,
        "drifted_columns": float(sum(c.drifted for c in (*result.features, *result.predictions))),
    }
    if result.latency_p95_ms is not None:
        metrics["latency_p95_ms"] = result.latency_p95_ms
    for prefix, columns in (("", result.features), ("prediction_", result.predictions)):
        for column in columns:
            key = metric_key(column.name)
            metrics[f"{prefix}psi.{key}"] = column.psi
            metrics[f"{prefix}pvalue.{key}"] = column.p_value
            metrics[f"{prefix}missing.{key}"] = column.missing_current
    params = {
        "reference": result.reference[:500],
        "since": "" if result.since is None else str(int(result.since)),
        "threshold_psi": str(result.thresholds.psi),
        "threshold_pvalue": str(result.thresholds.p_value),
    }
    recorder.log_batch(run_id, params=params, metrics=metrics, timestamp_ms=stamp)
    recorder.set_terminated(run_id, "FINISHED")
    return run_id


def latest_check(
    store: Store, model: str, version: str, client: Any = None
) -> Optional[dict[str, float]]:
    """The metrics of the latest check of ``model`` version ``version``, or None.

    ``client`` reuses an MLflow client made by the registry (the server's drift
    gauge polls with one).
    """
    from ame.registry.runs import find_runs

    runs = find_runs(
        store,
        experiment_name(model),
        tags={VERSION_TAG: version, RUN_KIND_TAG: RUN_KIND},
        client=client,
    )
    return dict(runs[0].data.metrics) if runs else None


__all__ = ["META", "CheckResult", "LogLocation", "latest_check", "parse_window", "run_check"]
