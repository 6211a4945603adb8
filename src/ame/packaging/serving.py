"""The ``package:PATH`` source for ``ame.serving``: serve a package without registering it.

Registered with ``ame.serving.sources.register_resolver("package", ...)`` by
``ame package serve``; each worker process calls ``resolve`` and finds its key
in the environment it inherited (``AME_PACKAGE_KEY_FILE`` and friends).
"""

from __future__ import annotations

from typing import Any, Optional

RESOLVER_TARGET = "ame.packaging.serving:resolve"


def resolve(rest: str, tracking_uri: Optional[str] = None) -> Any:
    """Open the package at ``rest`` for a serving worker and describe it as a ``LoadedModel``."""
    from ame.packaging.opener import open_package
    from ame.serving.sources import LoadedModel

    del tracking_uri  # a package is self-contained
    model = open_package(rest)
    return LoadedModel(
        predictor=model,
        name=model.name,
        version=model.version,
        source=f"package:{rest}",
        extra={"key_id": model.key_id, "package_id": model.manifest.package_id},
    )
