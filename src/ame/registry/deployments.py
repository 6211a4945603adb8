"""Which registered versions live local deployments are serving right now.

The local backend writes one JSON record per deployment under
``<project>/.ame/deployments/``; a record whose process is gone is stale and
ignored. A record also names the deployment it is replacing
(``previous``), which serves until the new server is ready. Deleting a
version that a live server answers from would break it, so the registry
asks here first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ame.boundedio import loads_json, read_regular_file

logger = logging.getLogger(__name__)

DEPLOYMENTS_DIR = Path(".ame") / "deployments"


@dataclass(frozen=True)
class LiveDeployment:
    """A deployment record whose server process is alive."""

    model: str
    version: str
    url: str
    pid: int
    file: Path


def _alive(pid: int) -> bool:
    if pid <= 0:  # a record written just before its server was launched
        return False
    import psutil

    try:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def live_deployments(project_root: Optional[Path]) -> list[LiveDeployment]:
    """Every live deployment of the project (none outside a project)."""
    if project_root is None:
        return []
    folder = project_root / DEPLOYMENTS_DIR
    if not folder.is_dir():
        return []
    found: list[LiveDeployment] = []
    for file in sorted(folder.glob("*.json")):
        try:
            data = loads_json(read_regular_file(file, 1 << 20, what="deployment record"))
            # A deployment being replaced is still serving its version until the
            # new one is ready: the record keeps it as ``previous``.
            previous = data.get("previous")
            entries = [data] + ([previous] if isinstance(previous, dict) else [])
            records = [
                LiveDeployment(
                    model=str(entry["model"]),
                    version=str(entry.get("version", "")),
                    url=str(entry.get("url", "")),
                    pid=int(entry["pid"]),
                    file=file,
                )
                for entry in entries
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.debug("skipping unreadable deployment record %s: %s", file, exc)
            continue
        found.extend(record for record in records if _alive(record.pid))
    return found
