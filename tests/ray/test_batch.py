"""``ame predict`` and ``ame batch`` on the ray backend: Ray jobs on the real local cluster."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The batch tests' models: a saved scikit-learn model, and it registered @champion.
from tests.batch.conftest import (
    FEATURES,
    Project,
    SavedModel,
    batch_project,
    frame,
    sk_model,
    write,
)
from tests.batch.conftest import ame as ame_here
from tests.ray.cluster import Cluster
from tests.ray.helpers import ame, cli_env, job_client

__all__ = ["batch_project", "sk_model"]  # fixtures, used by name


def test_predict_runs_the_scorer_as_a_ray_job_and_writes_atomically(
    ray_cluster: Cluster, tmp_path: Path, sk_model: SavedModel
) -> None:
    path, model = sk_model.path, sk_model.model
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
    expected = model.predict(data[["a", "b", "c"]])
    assert scored.iloc[:, -1].tolist() == expected.tolist()
    assert sorted(p.name for p in out_dir.iterdir()) == ["scored.parquet"]

    # A schema error on the node is the same one line and exit 2 as locally; the input,
    # named by URI this time, reaches the node as given (pyarrow reads it there).
    data.drop(columns=["b"]).to_csv(tmp_path / "in" / "bad.csv", index=False)
    bad = ame("predict", str(path), "-i", (tmp_path / "in" / "bad.csv").as_uri(),
              "-o", str(out_dir / "bad.parquet"), "--backend", "ray",
              cwd=tmp_path, env=env)  # fmt: skip
    assert bad.returncode == 2, bad.stdout + bad.stderr
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: column 'b' is missing from the input"), bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (out_dir / "bad.parquet").exists()


SECTION = """\
project: {project}
models:
  - name: {model}
    batchInference:
      input: {input}
      output: scored/predictions.parquet
"""


def _run(uri: str, run_id: str) -> tuple[Any, list[str]]:
    """An MLflow run and the paths of its ``output/`` artifacts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    return client.get_run(run_id), [a.path for a in client.list_artifacts(run_id, "output")]


def test_batch_section_scores_on_ray_as_it_does_here_and_is_tracked(
    ray_cluster: Cluster, tmp_path: Path, batch_project: Project, sk_model: SavedModel
) -> None:
    data = frame(1200, seed=41)
    write(data, tmp_path / "data" / "in.csv")
    yml = tmp_path / "ame.yml"
    yml.write_text(SECTION.format(project="raybatch", model=batch_project.model,
                                  input="data/in.csv"))  # fmt: skip
    uri = batch_project.tracking_uri
    env = cli_env(ray_cluster, NO_COLOR="1", MLFLOW_TRACKING_URI=uri)
    args = ("batch", batch_project.model, "--json", "--chunk-rows", "500")
    done = ame(*args, "--backend", "ray", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"backend: ray at {ray_cluster.dashboard} (--backend)" in done.stderr
    assert "runs on this machine" not in done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == batch_project.version and result["rows"] == 1200
    # The scorer ran as ame's predict job on the cluster, on the champion's version.
    job_id = result["ray_job_id"]
    info = job_client(ray_cluster).get_job_info(job_id)
    assert info.driver_exit_code == 0 and info.metadata["ame.kind"] == "predict"
    # The run is recorded here as a local one is, plus where it ran.
    run, artifacts = _run(uri, result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["rows"] == 1200 and run.data.metrics["errors"] == 0
    assert run.data.tags["ame.ray_job_id"] == job_id and run.data.tags["ame.backend"] == "ray"
    assert run.data.tags["ame.model_version"] == batch_project.version
    assert artifacts == ["output/predictions.parquet"]

    # The same section scored on this machine writes the same file, byte for byte.
    out = tmp_path / "scored" / "predictions.parquet"
    on_ray = out.read_bytes()
    out.unlink()
    here = ame_here(*args, "--backend", "local", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert here.returncode == 0, here.stderr
    assert "ray_job_id" not in json.loads(here.stdout)
    assert out.read_bytes() == on_ray
    scored = pd.read_parquet(out)
    assert np.array_equal(scored["prediction"], sk_model.model.predict(data[FEATURES]))

    # A schema error on the node: the same one line and exit 2, the run FAILED with its job.
    write(data.drop(columns=["b"]), tmp_path / "data" / "bad.csv")
    yml.write_text(SECTION.format(project="raybatch", model=batch_project.model,
                                  input="data/bad.csv"))  # fmt: skip
    bad = ame("batch", batch_project.model, "--backend", "ray", cwd=tmp_path, env=env)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: column 'b' is missing from the input"), bad.stderr
    assert "Traceback" not in bad.stderr
    from mlflow.tracking import MlflowClient

    failed = MlflowClient(tracking_uri=uri).search_runs(
        [run.info.experiment_id], "attributes.status = 'FAILED'", max_results=1
    )
    assert failed and failed[0].data.tags["ame.ray_job_id"].startswith("ame-predict-")


TASK_SCRIPT = textwrap.dedent(
    """
    import json, os, pathlib
    import mlflow.pyfunc
    import pandas as pd

    keys = ["AME_MODEL_NAME", "AME_MODEL_VERSION", "AME_MODEL_URI", "AME_OUTPUT",
            "AME_DATASET_TOSCORE", "AME_PROJECT_DIR"]
    out = pathlib.Path(os.environ["AME_OUTPUT"])
    (out.parent / "seen.json").write_text(json.dumps({k: os.environ.get(k) for k in keys}))
    model = mlflow.pyfunc.load_model(os.environ["AME_MODEL_URI"])
    data = pd.read_csv(os.environ["AME_DATASET_TOSCORE"])
    data["prediction"] = model.predict(data[["a", "b", "c"]])
    data[["id", "prediction"]].to_csv(out, index=False)
    print("scored", len(data))
    """
)


def test_batch_section_task_runs_as_a_ray_job_with_the_model_and_dataset(
    ray_cluster: Cluster, tmp_path: Path, batch_project: Project, sk_model: SavedModel
) -> None:
    data = frame(300, seed=42)
    write(data, tmp_path / "data" / "in.csv")
    (tmp_path / "score.py").write_text(TASK_SCRIPT)
    (tmp_path / "ame.yml").write_text(
        textwrap.dedent(
            f"""
            project: raybatchtask
            models:
              - name: {batch_project.model}
                batchInference:
                  dataSet: toscore
                  output: scored/scored.csv
                  task:
                    executor: !custom
                      command: python score.py
            dataSets:
              - name: toscore
                path: data/in.csv
            """
        )
    )
    uri = batch_project.tracking_uri
    env = cli_env(ray_cluster, NO_COLOR="1", MLFLOW_TRACKING_URI=uri, AME_BACKEND="ray")
    done = ame("batch", batch_project.model, "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"backend: ray at {ray_cluster.dashboard} (AME_BACKEND)" in done.stderr
    assert "scored 300" in done.stderr  # the task's own line, live
    result = json.loads(done.stdout)
    # The task ran on the node (in the job's working_dir), given the champion and the data.
    seen = json.loads((tmp_path / "scored" / "seen.json").read_text())
    assert seen["AME_PROJECT_DIR"] != str(tmp_path)
    assert seen["AME_MODEL_NAME"] == batch_project.model
    assert seen["AME_MODEL_VERSION"] == batch_project.version
    assert seen["AME_MODEL_URI"] == f"models:/{batch_project.model}/{batch_project.version}"
    assert seen["AME_DATASET_TOSCORE"] == str(tmp_path / "data" / "in.csv")
    assert seen["AME_OUTPUT"] == str(tmp_path / "scored" / "scored.csv")
    scored = pd.read_csv(tmp_path / "scored" / "scored.csv")
    assert np.array_equal(scored["prediction"], sk_model.model.predict(data[FEATURES]))

    info = job_client(ray_cluster).get_job_info(result["ray_job_id"])
    assert info.driver_exit_code == 0 and info.metadata["ame.kind"] == "task"
    run, artifacts = _run(uri, result["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == f"batch {batch_project.model}"
    assert run.data.tags["ame.ray_job_id"] == result["ray_job_id"]
    assert run.data.tags["ame.batch"] == "true" and run.data.tags["ame.backend"] == "ray"
    assert run.data.tags["ame.model_version"] == batch_project.version
    assert run.data.metrics["rows"] == 300
    assert artifacts == ["output/scored.csv"]
