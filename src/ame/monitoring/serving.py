"""The payload log's one seam with the server: settings from the CLI and ame.yml, and attach.

The server knows nothing of monitoring beyond three calls: ``attach(app)`` when
a worker's app is built, ``logger.start()``/``close()`` at start-up and
shutdown, and ``logger.offer(...)`` once per answered request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ame.monitoring.settings import LogSettings


def settings_for(
    model: str,
    *,
    project_root: Optional[Path],
    tracking_uri: Optional[str],
    log_payloads: bool,
    sample_rate: Optional[float],
) -> Optional[LogSettings]:
    """The payload log settings of ``ame serve MODEL``, or None when logging is off.

    On with ``--log-payloads`` or with the model's ``monitoring.log`` in ame.yml;
    ``--sample-rate`` wins over ``monitoring.log.sampleRate``.
    """
    from ame.monitoring.errors import MonitoringError
    from ame.monitoring.location import local_base
    from ame.registry.store import resolve_store

    section = _log_section(model, project_root)
    if not log_payloads and section is None and sample_rate is None:
        return None
    if sample_rate is not None and not 0.0 <= sample_rate <= 1.0:
        raise MonitoringError(f"--sample-rate must be between 0 and 1, got {sample_rate}")
    store = resolve_store(tracking_uri, project_root)
    base = local_base(store)
    return LogSettings(
        sample_rate=sample_rate if sample_rate is not None
        else (section.sample_rate if section is not None else 1.0),
        max_bytes=section.max_bytes if section is not None else LogSettings.max_bytes,
        local_dir=str(base) if base is not None else None,
        tracking_uri=store.tracking_uri,
    )  # fmt: skip


def _log_section(model: str, project_root: Optional[Path]) -> Any:
    """The model's ``monitoring.log`` in the project's ame.yml (None without one)."""
    from ame.spec.discovery import find_project_file

    try:
        file = find_project_file(project_root or Path.cwd())
    except Exception:
        return None
    from ame.spec.loader import load_project

    try:
        spec = load_project(file).model(model)
    except KeyError:
        return None
    return spec.monitoring.log if spec.monitoring is not None else None


def attach(app: Any) -> Any:
    """The payload logger of a worker's ``ServingApp``, with its counters and drift gauge."""
    from ame.monitoring.prom import DriftCollector
    from ame.monitoring.writer import PayloadLogger

    settings: LogSettings = app.config.payload_log
    logger = PayloadLogger(settings, app.state.model.name, app.metrics.registry)
    if settings.tracking_uri:
        collector = DriftCollector(
            lambda: (app.state.model.name, app.state.model.version), settings.tracking_uri
        )
        app.metrics.add_collector(collector)
    return logger
