"""Which registered versions live local deployments are serving right now.

The local backend writes one JSON record per deployment under
``<project>/.ame/deployments/``; a record whose process is gone is stale and
ignored. Deleting a version that a live server answers from would break it, so
the registry asks here first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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
            data = json.loads(file.read_text(encoding="utf-8"))
            pid = int(data["pid"])
            record = LiveDeployment(
                model=str(data["model"]),
                version=str(data.get("version", "")),
                url=str(data.get("url", "")),
                pid=pid,
                file=file,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.debug("skipping unreadable deployment record %s: %s", file, exc)
            continue
        if _alive(pid):
            found.append(record)
    return found
