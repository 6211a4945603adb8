"""What ``ame serve`` can be pointed at, and how it refuses what it cannot serve.

A registered model by name is covered everywhere else and ``models:/`` by the
shared ``lr_server``; here: a local MLflow model directory, the one-line errors
for sources that are not models, and a per-worker memory limit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.helpers import AME, FEATURES, Store, rows, split_body, start_ame

pytestmark = pytest.mark.timeout(1200)


def test_serves_a_local_model_directory(
    store: Store, lr_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import mlflow.artifacts
    import pandas as pd

    tmp = tmp_path_factory.mktemp("local-dir")
    model_dir = Path(
        mlflow.artifacts.download_artifacts(f"models:/{store.lr}/1", dst_path=str(tmp / "download"))
    )
    assert (model_dir / "MLmodel").is_file()
    server = start_ame(store, [str(model_dir)], tmp)
    try:
        data = rows(4, seed=9)
        resp = httpx.post(server.url + "/invocations", json=split_body(data))
        expected = lr_model.predict(pd.DataFrame(data, columns=FEATURES)).tolist()
        assert resp.status_code == 200 and resp.json() == {"predictions": expected}
        meta = httpx.get(f"{server.url}/v2/models/{model_dir.name}").json()
        assert meta["name"] == model_dir.name and meta["versions"] == ["1"]
    finally:
        assert server.stop() == 0


def _serve(store: Store, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AME, "serve", *args],
        cwd=store.root,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_sources_that_are_not_models_are_one_line_errors(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    no_mlmodel = _serve(store, str(empty), "--port", "0")
    assert no_mlmodel.returncode == 2
    assert "holds no MLmodel file" in no_mlmodel.stderr and "Traceback" not in no_mlmodel.stderr
    package = _serve(store, "package:/nowhere.ame")
    assert package.returncode == 2 and "no package resolver is registered" in package.stderr
    missing_alias = _serve(store, f"{store.lr}@nosuchalias")
    assert missing_alias.returncode == 2 and "has no alias 'nosuchalias'" in missing_alias.stderr
    bad_size = _serve(store, f"{store.lr}/1", "--max-memory", "10GB")
    assert bad_size.returncode == 2 and "--max-memory" in bad_size.stderr


def test_worker_over_memory_limit_is_killed_and_restarted(store: Store) -> None:
    # No worker fits in 20Mi: each is killed as soon as it starts, and after
    # the crash limit the server gives up with a one-line error.
    out = _serve(store, f"{store.pyf}/1", "--max-memory", "20Mi", "--port", "0")
    assert out.returncode == 2, out.stderr[-3000:]
    assert "memory limit 20Mi exceeded" in out.stderr
    assert "starting a new one" in out.stderr
    assert "workers died more than 5 times" in out.stderr.splitlines()[-1]
