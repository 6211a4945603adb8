"""A project with a registered model that has a reference, and helpers to log traffic.

The model is a real scikit-learn classifier registered in the project's
embedded store; its training run carries the reference written by
``ame.monitoring.log_reference``. Traffic is logged by a real ``PayloadLogger``
(the server's writer) into the project's ``.ame/monitoring``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FEATURES = ["a", "b", "c", "d"]


@dataclass(frozen=True)
class Project:
    root: Path
    model: str
    uri: str


AME_YML = """\
project: montests
models:
  - name: {model}
    monitoring:
      log: {{sampleRate: 1.0, maxBytes: 64Mi}}
      thresholds: {{psi: 0.2, pValue: 0.01}}
"""


def make_project(root: Path, model: str, reference: bool = True) -> Project:
    """Write ame.yml, train and register ``model`` version 1 (with a reference unless told not)."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from ame.monitoring import log_reference
    from ame.registry.store import activate, embedded_store, ensure_experiment

    (root / "ame.yml").write_text(AME_YML.format(model=model))
    store = embedded_store(root)
    activate(store)
    experiment = ensure_experiment(store)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 4)), columns=FEATURES)
    y = ((X.a + X.b) > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(
            clf, name="model", signature=infer_signature(X, clf.predict(X)),
            registered_model_name=model,
        )  # fmt: skip
        if reference:
            log_reference(X, clf.predict(X))
    return Project(root, model, store.tracking_uri)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The session's monitoring project (model version 1 with a reference)."""
    root = tmp_path_factory.mktemp("monitoring-project")
    yield make_project(root, f"mon-{uuid.uuid4().hex[:8]}")


def log_traffic(
    project: Project, frame: Any, *, version: str = "1", per_request: int = 50,
    protocol: str = "mlflow", at: float | None = None,
) -> int:  # fmt: skip
    """Log ``frame``'s rows as requests of ``per_request`` rows through a real PayloadLogger."""
    import time

    from ame.monitoring.settings import LogSettings
    from ame.monitoring.writer import PayloadLogger

    settings = LogSettings(local_dir=str(project.root / ".ame" / "monitoring"))
    logger = PayloadLogger(settings, project.model)
    count = 0
    for start in range(0, len(frame), per_request):
        part = frame.iloc[start : start + per_request]
        body = json.dumps(
            {"dataframe_split": {"columns": list(part.columns), "data": part.values.tolist()}}
        ).encode()
        preds = [int(v > 0) for v in (part["a"] + part["b"]).tolist()] if "a" in part else []
        reply = json.dumps({"predictions": preds}).encode()
        logger.offer(protocol, version, uuid.uuid4().hex, body, "application/json", 200, reply,
                     time.perf_counter())  # fmt: skip
        count += 1
    if at is not None:
        for item in logger._queue:
            item.at = at
    logger.close()
    return count


def clear_traffic(project: Project, version: str = "1") -> None:
    import shutil

    shutil.rmtree(
        project.root / ".ame" / "monitoring" / project.model / version, ignore_errors=True
    )
