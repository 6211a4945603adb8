"""The inference server: MLflow scoring and open inference protocol v2 on one port.

Import-light on purpose (the CLI imports this package at start-up): the server
stack (uvicorn, MLflow, pandas) is imported only when ``serve`` or
``build_app`` is called. See docs/serving.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ame._lazy import lazy_exports

if TYPE_CHECKING:
    from ame.serving.app import AppConfig, ServingApp
    from ame.serving.sources import LoadedModel

__all__ = ["build_app", "register_resolver", "serve"]


def serve(
    source: str,
    *,
    host: Optional[str] = None,
    port: Optional[int] = None,
    workers: Optional[int] = None,
    max_batch_size: Optional[int] = None,
    max_latency_ms: Optional[float] = None,
    max_body_bytes: Optional[int] = None,
    poll_interval: Optional[float] = None,
    tracking_uri: Optional[str] = None,
    log_level: str = "info",
    max_memory: Optional[int] = None,
) -> None:
    """Serve the model ``source`` names until SIGTERM/SIGINT (see ``ame.serving.server.serve``).

    Options left None take ``ame.serving.options``' defaults.
    """
    from ame.serving.options import merge_options
    from ame.serving.server import serve as _serve

    flags = {
        "host": host,
        "port": port,
        "workers": workers,
        "max_batch_size": max_batch_size,
        "max_latency_ms": max_latency_ms,
        "max_body_bytes": max_body_bytes,
        "poll_interval": poll_interval,
        "max_memory": max_memory,
    }
    _serve(source, merge_options(flags), tracking_uri=tracking_uri, log_level=log_level)


def build_app(model: LoadedModel, config: Optional[AppConfig] = None) -> ServingApp:
    """The ASGI app serving an already loaded model (for embedding in another ASGI server)."""
    from ame.serving.app import build_app as _build_app

    return _build_app(model, config)


def register_resolver(scheme: str, target: str) -> None:
    """Serve ``SCHEME:REST`` sources through ``target`` ("module:function"); see sources.py."""
    from ame.serving.sources import register_resolver as _register

    _register(scheme, target)


__getattr__ = lazy_exports(
    __name__, {"LoadedModel": "ame.serving.sources", "load_source": "ame.serving.sources"}
)
