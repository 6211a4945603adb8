"""MLflow's own UI, served by the ``ame ui`` process under ``/mlflow/``.

MLflow's server is an ASGI app (FastAPI around its Flask app) configured
through environment variables read when its modules are imported: the store,
the artifact root and the URL prefix its routes and pages use. Mounting it
here, rather than starting ``mlflow server`` beside ``ame ui``, keeps one
process, one port, and puts MLflow's pages behind the same access token. It
is imported only by ``ame ui`` (never by tests of the pages, nor by
``import ame``), because those variables are process-wide.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ame.registry.store import Store


def mlflow_asgi_app(store: Store, prefix: str) -> Any:
    """MLflow's server app on ``store``, its routes under ``prefix`` (``/mlflow``)."""
    os.environ["_MLFLOW_SERVER_FILE_STORE"] = store.tracking_uri
    os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = store.registry_uri
    if store.artifact_root:
        os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = str(store.artifact_root)
    os.environ["_MLFLOW_STATIC_PREFIX"] = prefix
    # The UI needs no background job runner (GenAI evaluation jobs).
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    from mlflow.server.fastapi_app import app

    return app
