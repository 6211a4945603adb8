"""Running the UI: resolve the store, decide the access token, serve with uvicorn.

``ame ui`` calls ``serve``; tests start ``ame ui`` as a real process. The
token rule lives here: bound to loopback no token is needed unless one is
given; bound anywhere else a token is always required (generated when not
given) and checked for every client, loopback ones included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ame.errors import AmeError
from ame.ui.security import is_loopback, new_token

logger = logging.getLogger(__name__)


class UiError(AmeError):
    """``ame ui`` cannot start as asked."""


@dataclass(frozen=True)
class Launch:
    """What ``ame ui`` tells the person starting it."""

    url: str
    token: Optional[str]
    mlflow: Optional[str]
    store: str


def access_token(host: str, token: Optional[str]) -> Optional[str]:
    """The token clients need: the one given, a new one off loopback, else none."""
    if token is not None and not token.strip():
        raise UiError("--token cannot be empty")
    if token:
        return token.strip()
    return None if is_loopback(host) else new_token()


def serve(
    *,
    host: str,
    port: int,
    project_root: Optional[Path],
    tracking_uri: Optional[str],
    token: Optional[str] = None,
    max_upload: int,
    mount_mlflow: bool = True,
    announce: Callable[[Launch], None] = lambda _launch: None,
) -> None:
    """Serve the UI until interrupted; ``announce`` is told the URL (and token) first."""
    import uvicorn

    from ame.registry.store import activate, resolve_store
    from ame.ui.app import MLFLOW_PREFIX, UiConfig, create_app
    from ame.ui.security import LoopbackHosts, TokenGate

    store = resolve_store(tracking_uri, project_root)
    # Saves the pages make (files, packages) must land in this store, not MLflow's default.
    activate(store)
    required = access_token(host, token)
    # Open the store now: a store that cannot be read is one line at start, not on
    # the first page, and the first page does not pay for importing MLflow.
    from ame.registry.facade import Registry

    try:
        Registry(store).list_models(max_results=1)
    except Exception as exc:
        from ame.ui.app import one_line

        raise UiError(f"cannot open the store {store.tracking_uri}: {one_line(exc)}") from None
    mlflow_app = None
    mlflow_url: Optional[str] = None
    if store.embedded and mount_mlflow:
        from ame.ui.mlflow_app import mlflow_asgi_app

        mlflow_app = mlflow_asgi_app(store, MLFLOW_PREFIX)
        mlflow_url = MLFLOW_PREFIX
    elif not store.embedded:
        mlflow_url = store.tracking_uri.rstrip("/")
    config = UiConfig(
        store=store,
        project_root=store.project_root or project_root,
        max_upload=max_upload,
        mlflow_url=mlflow_url,
    )
    app = create_app(config, mlflow_app)
    # With a token, the token keeps other sites out; without one, only loopback names.
    app = TokenGate(app, required) if required else LoopbackHosts(app, (host,))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    announce(
        Launch(
            url=url,
            token=required,
            mlflow=(url.rstrip("/") + mlflow_url)
            if mlflow_app is not None and mlflow_url
            else mlflow_url,
            store=store.tracking_uri,
        )
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
