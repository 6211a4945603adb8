"""Everything a render needs beyond the ame.yml, decided once by the caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Optional

from ame.backends.kubernetes.source import ProjectSource

Format = Literal["plain", "kserve"]
# The oldest and newest Kubernetes the schemas cover: every object must pass both.
DEFAULT_KUBE_VERSIONS = ("1.25", "1.37")
SERVING_PORT = 8080
WORKSPACE = "/workspace"


@dataclass(frozen=True)
class ServedVersion:
    """A registry version a deployment pins, and where its files are (for KServe)."""

    version: str
    storage_uri: Optional[str] = None


@dataclass(frozen=True)
class RenderOptions:
    """The cluster-side facts of a render: store, source, versions, format, schemas.

    ``versions`` holds the version each model's champion alias names now; a
    model missing from it is rendered for ``M@<alias>`` (nothing promoted yet,
    or the registry was not asked). ``run_id`` names one run of a task: ``apply``
    gives each run its own Job, ``render`` leaves it out.
    """

    tracking_uri: str
    source: ProjectSource
    format: Format = "plain"
    kube_versions: tuple[str, ...] = DEFAULT_KUBE_VERSIONS
    versions: Mapping[str, ServedVersion] = field(default_factory=dict)
    image: Optional[str] = None
    run_id: Optional[str] = None
