"""With a remote store, logs are uploaded to the tracking server and checked from there."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from tests.monitoring.conftest import FEATURES


def test_logs_upload_and_check_reads_them(mlflow_server: str, tmp_path: Path) -> None:
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from ame.monitoring import log_reference
    from ame.monitoring.check import run_check
    from ame.monitoring.location import location_for
    from ame.monitoring.settings import LogSettings
    from ame.monitoring.writer import PayloadLogger
    from ame.registry.store import activate, ensure_experiment, resolve_store

    model = f"remote-{uuid.uuid4().hex[:8]}"
    store = resolve_store(mlflow_server, tmp_path)
    activate(store)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1000, 4)), columns=FEATURES)
    clf = LogisticRegression().fit(X, (X.a > 0).astype(int))
    with mlflow.start_run(experiment_id=ensure_experiment(store)):
        mlflow.sklearn.log_model(
            clf, name="model", signature=infer_signature(X, clf.predict(X)),
            registered_model_name=model,
        )  # fmt: skip
        log_reference(X)

    logger = PayloadLogger(LogSettings(tracking_uri=mlflow_server), model)
    shifted = X.assign(b=X.b + 3.0)
    for start in range(0, 1000, 100):
        part = shifted.iloc[start : start + 100]
        body = json.dumps({"dataframe_records": part.to_dict(orient="records")}).encode()
        reply = json.dumps({"predictions": [0] * len(part)}).encode()
        logger.offer("mlflow", "1", None, body, "application/json", 200, reply, time.perf_counter())
    logger.close()
    assert logger.counters.files == 1 and logger.counters.errors == 0

    location = location_for(store, model, "1")
    assert location.path is None and location.uri is not None
    assert location.uri.startswith("mlflow-artifacts:")
    assert not list(tmp_path.glob(".ame/monitoring/**/*.parquet"))  # nothing left on local disk
    result = run_check(store, f"{model}/1", since=3600)
    assert result.rows == 1000 and result.requests == 10
    assert {c.name for c in result.features if c.drifted} == {"b"}
    assert result.run_id is not None
