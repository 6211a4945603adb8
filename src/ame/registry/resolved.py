"""The one record of "a resolved version", importable without pydantic or mlflow.

Kept apart from ``ame.registry.records`` (which re-exports it) because the
server imports it on its start-up path, before it forks the child that
resolves the version (``ame.serving.prefetch``): there every import counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class ResolvedVersion:
    """What a model reference points at now: the URI MLflow loads, and which version it is.

    The one record of "a resolved version": loaders, packaging and serving
    resolve a reference (``name@champion``, ``name/3``, ``runs:/...``) into
    this and add what they know besides (a local path, a loaded model, the
    files' manifest) next to it, rather than each keeping its own copy of
    name, version and URI. ``follows`` is the alias it was reached through,
    which may move later (servers that follow an alias poll it); ``name`` and
    ``version`` are None for a run's model, which is not registered.
    """

    uri: str
    name: Optional[str] = None
    version: Optional[str] = None
    run_id: Optional[str] = None
    follows: Optional[str] = None

    @classmethod
    def from_mlflow(cls, mv: Any, follows: Optional[str] = None) -> ResolvedVersion:
        """Build from an ``mlflow.entities.model_registry.ModelVersion``."""
        return cls(
            uri=f"models:/{mv.name}/{mv.version}",
            name=str(mv.name),
            version=str(mv.version),
            run_id=mv.run_id or None,
            follows=follows,
        )

    @property
    def label(self) -> str:
        """``name/version`` for a registered version, else the URI (for messages)."""
        return f"{self.name}/{self.version}" if self.name else self.uri
