"""The version each model's champion alias names now, asked of the tracking server.

``render`` pins the Deployment to that version (``ame serve M/<version>``) and
KServe to its files; a model with nothing promoted yet, or a server that does
not answer, is left out and rendered for ``M@<alias>``. The server is asked
with few retries: a render must not hang for minutes on an unreachable URL.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from ame.backends.kubernetes.options import ServedVersion
from ame.spec.model import Project

log = logging.getLogger(__name__)


def lookup_versions(
    project: Project, tracking_uri: str, models: Optional[Iterable[str]] = None
) -> dict[str, ServedVersion]:
    """{model: its champion's version} for the models (with a deployment) the registry knows."""
    wanted = None if models is None else set(models)
    targets = [
        m for m in project.models
        if m.deployment is not None and (wanted is None or m.name in wanted)
    ]  # fmt: skip
    if not targets:
        return {}
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from ame.errors import AmeError
    from ame.registry.facade import Registry
    from ame.registry.store import resolve_store

    registry = Registry(resolve_store(tracking_uri, Path(project.root)))
    found: dict[str, ServedVersion] = {}
    for model in targets:
        ref = f"{model.name}@{model.champion_alias}"
        try:
            record = registry.resolve(ref)
            uri = registry.client.get_model_version_download_uri(model.name, record.version)
        except AmeError as exc:
            log.debug("%s: %s", ref, exc)
            continue
        except Exception as exc:  # an unreachable server: MLflow raises its own kinds
            log.warning("%s: the registry at %s did not answer (%s)", ref, tracking_uri, exc)
            continue
        found[model.name] = ServedVersion(record.version, uri)
    return found
