"""``ame predict --backend ray``: ame's streaming scorer as one Ray job on the real cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.ray.cluster import Cluster
from tests.ray.helpers import ame, cli_env, job_client


@pytest.fixture(scope="module")
def sk_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A LogisticRegression on a, b, c saved as an MLflow model directory."""
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    train = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(train, (train.a + train.b > 0).astype(int))
    path = tmp_path_factory.mktemp("ray-batch") / "sk"
    mlflow.sklearn.save_model(
        model, str(path), signature=infer_signature(train, model.predict(train)),
        pip_requirements=["scikit-learn"],
    )  # fmt: skip
    return path, model


def test_predict_runs_the_scorer_as_a_ray_job_and_writes_atomically(
    ray_cluster: Cluster, tmp_path: Path, sk_model: tuple[Path, object]
) -> None:
    import numpy as np

    path, model = sk_model
    rng = np.random.default_rng(7)
    data = pd.DataFrame(rng.normal(size=(2500, 3)), columns=["a", "b", "c"])
    data.insert(0, "id", np.arange(2500))
    src = tmp_path / "in" / "rows.csv"
    src.parent.mkdir()
    data.to_csv(src, index=False)
    out_dir = tmp_path / "out"
    env = cli_env(ray_cluster, NO_COLOR="1")
    args = ("predict", str(path), "-i", str(src), "-o", str(out_dir / "scored.parquet"),
            "--id-col", "id", "--chunk-rows", "1000", "--backend", "ray", "--json")  # fmt: skip
    done = ame(*args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"backend: ray at {ray_cluster.dashboard} (--backend)" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["input_rows"] == 2500 and summary["chunks"] == 3
    # The job ran on the cluster, as ame's job (its metadata), and succeeded.
    info = job_client(ray_cluster).get_job_info(summary["ray_job_id"])
    assert info.driver_exit_code == 0
    assert info.metadata["ame.kind"] == "predict"
    # The output is the local scorer's: ids in input order and the model's predictions,
    # and only the output is left in its directory (parts and locks are gone).
    scored = pd.read_parquet(out_dir / "scored.parquet")
    assert scored["id"].tolist() == list(range(2500))
    expected = model.predict(data[["a", "b", "c"]])  # type: ignore[attr-defined]
    assert scored.iloc[:, -1].tolist() == expected.tolist()
    assert sorted(p.name for p in out_dir.iterdir()) == ["scored.parquet"]

    # A schema error on the node is the same one line and exit 2 as locally.
    data.drop(columns=["b"]).to_csv(tmp_path / "in" / "bad.csv", index=False)
    bad = ame("predict", str(path), "-i", str(tmp_path / "in" / "bad.csv"),
              "-o", str(out_dir / "bad.parquet"), "--backend", "ray",
              cwd=tmp_path, env=env)  # fmt: skip
    assert bad.returncode == 2, bad.stdout + bad.stderr
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: column 'b' is missing from the input"), bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (out_dir / "bad.parquet").exists()
