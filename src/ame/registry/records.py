"""Small typed records of registry entities, for callers and the CLI.

MLflow's entities carry stage fields, millisecond timestamps and attributes
that differ between the SQLite and REST stores. These records keep only what
ame shows and acts on, convert cleanly to JSON (``--json``), and never need
mlflow imported to be used.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Generic, Optional, TypeVar

from pydantic import BaseModel, Field

# The one record of "a resolved version" lives in a module of its own, without
# pydantic, so that a server can import it before it forks (serving/prefetch.py).
from ame.registry.resolved import ResolvedVersion as ResolvedVersion

T = TypeVar("T")


def _when(ms: Optional[int]) -> Optional[datetime]:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms else None


class VersionRecord(BaseModel):
    """One registered model version."""

    name: str
    version: str
    source: Optional[str] = None
    run_id: Optional[str] = None
    model_id: Optional[str] = None
    status: Optional[str] = None
    description: Optional[str] = None
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    created: Optional[datetime] = None

    @property
    def uri(self) -> str:
        """The ``models:/name/version`` URI that plain MLflow loads."""
        return f"models:/{self.name}/{self.version}"

    @classmethod
    def from_mlflow(cls, mv: Any, aliases: Optional[list[str]] = None) -> VersionRecord:
        """Build from an ``mlflow.entities.model_registry.ModelVersion``.

        ``aliases`` replaces the entity's own: MLflow's ``search_model_versions``
        returns versions without their aliases, which live on the registered
        model (``alias_table`` gives them per version).
        """
        return cls(
            name=mv.name,
            version=str(mv.version),
            source=mv.source,
            run_id=mv.run_id or None,
            model_id=getattr(mv, "model_id", None) or None,
            status=str(mv.status) if mv.status is not None else None,
            description=mv.description or None,
            tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
            aliases=sorted(aliases if aliases is not None else (mv.aliases or [])),
            created=_when(mv.creation_timestamp),
        )


def alias_table(rm: Any) -> dict[str, list[str]]:
    """Version -> the aliases pointing at it, read from a ``RegisteredModel``.

    This is where MLflow keeps aliases (every store type returns them with the
    registered model), so listings of versions show them truthfully.
    """
    aliases = rm.aliases or {}
    if isinstance(aliases, list):  # some stores return alias entities
        aliases = {a.alias: a.version for a in aliases}
    table: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        table.setdefault(str(version), []).append(str(alias))
    return table


class ModelRecord(BaseModel):
    """One registered model, with its aliases and latest version number."""

    name: str
    description: Optional[str] = None
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)
    latest_version: Optional[str] = None
    created: Optional[datetime] = None
    updated: Optional[datetime] = None

    @classmethod
    def from_mlflow(cls, rm: Any) -> ModelRecord:
        """Build from an ``mlflow.entities.model_registry.RegisteredModel``."""
        aliases = rm.aliases or {}
        if isinstance(aliases, list):  # some stores return alias entities
            aliases = {a.alias: a.version for a in aliases}
        latest = [int(v.version) for v in (rm.latest_versions or [])]
        return cls(
            name=rm.name,
            description=rm.description or None,
            tags={str(k): str(v) for k, v in (rm.tags or {}).items()},
            aliases={str(k): str(v) for k, v in aliases.items()},
            latest_version=str(max(latest)) if latest else None,
            created=_when(rm.creation_timestamp),
            updated=_when(rm.last_updated_timestamp),
        )


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass ``next_page_token`` back to get the next one."""

    items: list[T]
    next_page_token: Optional[str] = None
