"""The ``package:PATH`` source for ``ame.serving``: serve a package without registering it.

Registered with ``ame.serving.sources.register_resolver("package", ...)`` by
``ame package serve``; each worker process calls ``resolve`` and finds its key
in the environment it inherited (``AME_PACKAGE_KEY_FILE`` and friends).

The resolver hands back the opened ``PackagedModel`` itself: it has
``predict``, ``metadata``, ``name`` and ``version``, which is all a resolver's
answer needs (``ame.serving.sources``), so packaging, which sits above serving
in the layer table (docs/architecture.md), never imports it.
"""

from __future__ import annotations

from typing import Any, Optional

RESOLVER_TARGET = "ame.packaging.serving:resolve"


def resolve(rest: str, tracking_uri: Optional[str] = None) -> Any:
    """Open the package at ``rest`` for a serving worker; serving describes it from its manifest."""
    from ame.packaging.opener import open_package

    del tracking_uri  # a package is self-contained
    return open_package(rest)
