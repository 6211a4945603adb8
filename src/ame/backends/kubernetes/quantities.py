"""Numbers from the resolved ame.yml (cores, bytes) as Kubernetes quantity strings.

The spec parses ``10G`` to 10000000000 and ``500m`` to 0.5; a manifest reads
better, and diffs less, with the shortest exact quantity: ``10G``, ``512Mi``,
``500m``. Only exact conversions are used, so the value never changes.
"""

from __future__ import annotations

from typing import Any

from ame.spec.model import Resources

_BYTE_SUFFIXES = (
    ("Ei", 1024**6), ("Pi", 1024**5), ("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2),
    ("Ki", 1024), ("E", 1000**6), ("P", 1000**5), ("T", 1000**4), ("G", 1000**3),
    ("M", 1000**2), ("k", 1000),
)  # fmt: skip


def cpu(cores: float) -> str:
    """``4.0`` -> ``4``, ``0.5`` -> ``500m``."""
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def size(value: int) -> str:
    """Bytes as the shortest exact quantity: 10000000000 -> ``10G``, 536870912 -> ``512Mi``."""
    exact = [f"{value // f}{suffix}" for suffix, f in _BYTE_SUFFIXES if value % f == 0]
    return min([*exact, str(value)], key=len) if value else "0"


def resources(spec: Resources) -> dict[str, Any]:
    """``requests`` and ``limits`` (equal, so the pod gets what it asks and no more).

    AME set limits only, which lets a pod be scheduled on a node without room for it.
    """
    amounts: dict[str, str] = {}
    if spec.cpu is not None:
        amounts["cpu"] = cpu(spec.cpu)
    if spec.memory is not None:
        amounts["memory"] = size(spec.memory)
    if spec.storage is not None:
        amounts["ephemeral-storage"] = size(spec.storage)
    if spec.gpu:
        amounts["nvidia.com/gpu"] = str(spec.gpu)
    if not amounts:
        return {}
    return {"requests": dict(amounts), "limits": dict(amounts)}
