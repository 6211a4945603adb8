"""Each rendered object checked against the official Kubernetes schemas, offline.

``kubernetes_validate``'s command line only warns (and exits 0) when it has no
schema for an object, which is what a mistyped ``apiVersion`` looks like; its
Python API raises ``SchemaNotFoundError`` instead, and here that is a failure
like any other. Strict mode rejects unknown fields, so a misspelt key in a
rendered object cannot slip through as "ignored by the API server".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Custom resources the library ships no schema for; their golden files are the check.
SCHEMALESS = frozenset({("serving.kserve.io/v1beta1", "InferenceService")})


def supported_versions() -> list[str]:
    """The Kubernetes versions (X.Y) the installed schemas cover."""
    from kubernetes_validate.utils import all_versions, major_minor

    return list(dict.fromkeys(major_minor(v) for v in all_versions()))


def problems(obj: dict[str, Any], versions: Iterable[str]) -> list[str]:
    """What is wrong with ``obj`` for each Kubernetes version (empty when it passes all)."""
    import kubernetes_validate

    if (obj.get("apiVersion"), obj.get("kind")) in SCHEMALESS:
        return []
    found: list[str] = []
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(object)"
            found.append(f"Kubernetes {version}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            found.append(f"Kubernetes {version}: {exc.message}")
        except kubernetes_validate.utils.VersionNotSupportedError as exc:
            found.append(exc.message)
    return found
