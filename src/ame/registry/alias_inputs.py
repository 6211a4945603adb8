"""What the alias policy needs to know from ame.yml: does the model have a validation task.

``Registry.set_alias`` and ``register_new_version`` refuse to point an alias at
a version whose validation is pending or failed, unless the model has no
validation task at all; the registry never reads ame.yml itself, so the
caller passes that fact in. ``ame model alias``, ``ame model register --alias``
and the web UI's alias form all ask it here, so they answer alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ame.errors import AmeError


def has_validation_task(name: str, project: Optional[Path]) -> Optional[bool]:
    """Whether ame.yml gives model ``name`` a validation task; None when it cannot say.

    ``project`` is an ame.yml or its folder, or None to search upwards from the
    working directory as every command does. None (no ame.yml, an invalid one,
    a model it does not define) leaves the alias policy to the version's own
    validation tag.
    """
    from ame.spec import load_project

    try:
        return load_project(project).model(name).validation is not None
    except (AmeError, KeyError):
        return None
