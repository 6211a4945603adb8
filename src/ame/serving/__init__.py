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
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    max_batch_size: int = 32,
    max_latency_ms: float = 5.0,
    max_body_bytes: int = 16 * 1024 * 1024,
    poll_interval: float = 5.0,
    tracking_uri: Optional[str] = None,
    record_path: Optional[str] = None,
    log_level: str = "info",
    max_memory: Optional[int] = None,
) -> None:
    """Serve the model ``source`` names until SIGTERM/SIGINT (see ``ame.serving.server.serve``)."""
    from ame.serving.server import serve as _serve

    _serve(
        source,
        host=host,
        port=port,
        workers=workers,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        max_body_bytes=max_body_bytes,
        poll_interval=poll_interval,
        tracking_uri=tracking_uri,
        record_path=record_path,
        log_level=log_level,
        max_memory=max_memory,
    )


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
