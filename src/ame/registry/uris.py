"""Model references as users write them, parsed into one typed form.

Accepted: ``models:/name/3``, ``models:/name@alias``, ``name@alias``, ``name/3``,
a bare ``name`` (its latest version) and ``runs:/<run_id>/<path>``. Anything
else is an ``InvalidModelURIError`` that shows the accepted forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ame.errors import InvalidModelURIError

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\- ]*"
_ALIAS = r"[A-Za-z_][A-Za-z0-9_\-]*"
_VERSION_RE = re.compile(rf"^(?P<name>{_NAME})/(?P<version>[0-9]+)$")
_ALIAS_RE = re.compile(rf"^(?P<name>{_NAME})@(?P<alias>{_ALIAS})$")
_NAME_RE = re.compile(rf"^(?P<name>{_NAME})$")
_RUN_RE = re.compile(r"^runs:/(?P<run>[0-9a-fA-F]{8,64})(?:/(?P<path>.+))?$")

ACCEPTED_FORMS = (
    "models:/NAME/VERSION, models:/NAME@ALIAS, NAME@ALIAS, NAME/VERSION, NAME, runs:/RUN_ID/PATH"
)


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: exactly one of version, alias, run, or none (= latest)."""

    name: Optional[str] = None
    version: Optional[str] = None
    alias: Optional[str] = None
    run_id: Optional[str] = None
    artifact_path: Optional[str] = None

    @property
    def is_run(self) -> bool:
        return self.run_id is not None

    def to_mlflow_uri(self) -> str:
        """The URI MLflow understands; a bare name needs its latest version resolved first."""
        if self.run_id is not None:
            return (
                f"runs:/{self.run_id}/{self.artifact_path}"
                if self.artifact_path
                else f"runs:/{self.run_id}"
            )
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        raise InvalidModelURIError(
            f"'{self.name}' names a model but no version or alias; resolve its latest version first"
        )

    def __str__(self) -> str:
        if self.run_id is not None:
            return self.to_mlflow_uri()
        if self.version is not None:
            return f"{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return str(self.name)


def parse_model_ref(text: str) -> ModelRef:
    """Parse a user's model reference; raise ``InvalidModelURIError`` with the accepted forms."""
    raw = text.strip()
    body = raw[len("models:/") :] if raw.startswith("models:/") else raw
    if raw.startswith("runs:/"):
        match = _RUN_RE.match(raw)
        if match:
            return ModelRef(run_id=match["run"], artifact_path=match["path"])
    elif match := _VERSION_RE.match(body):
        return ModelRef(name=match["name"].strip(), version=match["version"])
    elif match := _ALIAS_RE.match(body):
        return ModelRef(name=match["name"].strip(), alias=match["alias"])
    elif (match := _NAME_RE.match(body)) and not raw.startswith("models:/"):
        return ModelRef(name=match["name"].strip())
    raise InvalidModelURIError(f"invalid model reference '{text}' (accepted: {ACCEPTED_FORMS})")
