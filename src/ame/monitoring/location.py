"""Where a model's payload logs and drift checks live, for either kind of store.

* Embedded store: ``<project>/.ame/monitoring/<model>/<version>/`` on local disk.
* Remote store: the artifact location of the experiment ``monitoring/<model>``
  on the tracking server, ``.../payloads/<version>/``. Every replica (a local
  worker, a Ray replica, a Kubernetes pod) can upload there and ``ame monitor``
  can read from anywhere, with no shared disk.

The experiment also holds the drift checks (one run each), so the server finds
its version's latest check in the same place.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ame.registry.store import Store

MONITORING_DIR = "monitoring"
PAYLOADS = "payloads"
# <start ms>-<end ms>-<host>-<pid>-<seq>.parquet; the times let a check skip
# whole files outside its window without opening them.
_CLOSED = re.compile(r"^(\d+)-(\d+)-.+\.parquet$")


def experiment_name(model: str) -> str:
    """The experiment holding a model's drift checks (and, remotely, its payload logs)."""
    return f"monitoring/{model}"


def local_base(store: Store) -> Optional[Path]:
    """``<project>/.ame/monitoring`` for an embedded store, else None (logs go remote)."""
    if not store.embedded:
        return None
    from ame.registry.store import EMBEDDED_DIR, sqlite_path

    db = sqlite_path(store.tracking_uri)
    if db is not None:
        return db.parent / MONITORING_DIR
    root = store.project_root or Path.cwd()
    return root / EMBEDDED_DIR / MONITORING_DIR


def remote_base(store: Store, model: str) -> str:
    """The artifact URI under which a remote store keeps ``model``'s payload logs."""
    from ame.registry.runs import experiment_location

    location = experiment_location(store, experiment_name(model))
    return f"{location.rstrip('/')}/{PAYLOADS}"


@dataclass(frozen=True)
class LogLocation:
    """The payload logs of one model version: a local directory or an artifact URI."""

    model: str
    version: str
    path: Optional[Path] = None
    uri: Optional[str] = None
    tracking_uri: Optional[str] = None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else str(self.uri)


def location_for(store: Store, model: str, version: str) -> LogLocation:
    """Where ``model`` version ``version`` is logged in ``store``."""
    base = local_base(store)
    if base is not None:
        return LogLocation(model, version, path=base / model / version)
    uri = f"{remote_base(store, model)}/{version}"
    return LogLocation(model, version, uri=uri, tracking_uri=store.tracking_uri)


def file_window(name: str) -> Optional[tuple[float, float]]:
    """(start, end) in seconds since the epoch from a closed log file's name, else None."""
    match = _CLOSED.match(name)
    if match is None:
        return None
    return int(match.group(1)) / 1000.0, int(match.group(2)) / 1000.0


def log_files(location: LogLocation, since: Optional[float], scratch: Path) -> list[Path]:
    """The closed log files that may hold records newer than ``since``, as local paths.

    Remote files are downloaded into ``scratch`` (only those whose window
    overlaps); local files are read where they are. Files still being written
    (hidden ``.part`` files) are skipped: a Parquet file is readable only once closed.
    """
    cutoff = since if since is not None else float("-inf")
    if location.path is not None:
        if not location.path.is_dir():
            return []
        found = []
        for entry in sorted(location.path.iterdir()):
            window = file_window(entry.name)
            if window is not None and window[1] >= cutoff and entry.is_file():
                found.append(entry)
        return found
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    assert location.uri is not None
    repo = get_artifact_repository(location.uri, tracking_uri=location.tracking_uri)
    paths: list[Path] = []
    for info in repo.list_artifacts():
        name = info.path.rsplit("/", 1)[-1]
        window = file_window(name)
        if info.is_dir or window is None or window[1] < cutoff:
            continue
        paths.append(Path(repo.download_artifacts(info.path, dst_path=str(scratch))))
    return sorted(paths)


def now() -> float:
    """The wall clock the logs and checks agree on (seconds since the epoch)."""
    return time.time()
