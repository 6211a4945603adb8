"""``ame batch M``: the batchInference section, with the built-in scorer and with a task."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from tests.batch.conftest import FEATURES, Project, SavedModel, ame, frame, write

TASK_SCRIPT = textwrap.dedent(
    """
    import json, os
    import mlflow.pyfunc
    import pandas as pd

    keys = ["AME_MODEL_NAME", "AME_MODEL_VERSION", "AME_MODEL_URI", "AME_OUTPUT",
            "AME_DATASET_TOSCORE", "MLFLOW_TRACKING_URI"]
    with open("seen.json", "w") as fh:
        json.dump({k: os.environ.get(k) for k in keys}, fh)
    model = mlflow.pyfunc.load_model(os.environ["AME_MODEL_URI"])
    data = pd.read_csv(os.environ["AME_DATASET_TOSCORE"])
    data["prediction"] = model.predict(data[["a", "b", "c"]])
    data[["id", "prediction"]].to_csv(os.environ["AME_OUTPUT"], index=False)
    print("scored", len(data))
    """
)


def _runs(project: Project, run_id: str) -> Any:
    client = MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)
    run = client.get_run(run_id)
    artifacts = [a.path for a in client.list_artifacts(run_id, "output")]
    return run, artifacts


def test_section_without_task_runs_the_builtin_scorer_tracked(
    tmp_path: Path, batch_project: Project, sk_model: SavedModel
) -> None:
    data = frame(1200, seed=31)
    write(data, tmp_path / "data" / "in.csv")
    (tmp_path / "ame.yml").write_text(
        textwrap.dedent(
            f"""
            project: batchsection
            models:
              - name: {batch_project.model}
                batchInference:
                  input: data/in.csv
                  output: scored/predictions.parquet
                  schedule: "0 3 * * *"
            """
        )
    )
    done = ame("batch", batch_project.model, "--json", "--chunk-rows", "500", cwd=tmp_path,
               env={"MLFLOW_TRACKING_URI": batch_project.tracking_uri})  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The schedule is never silently ignored: no scheduler runs for this project.
    assert "note: batchInference.schedule '0 3 * * *'" in done.stderr
    assert f"`ame batch {batch_project.model}` runs it by hand" in done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == batch_project.version and result["rows"] == 1200
    out = pd.read_parquet(tmp_path / "scored" / "predictions.parquet")
    assert out["row"].tolist() == list(range(1200))
    assert np.array_equal(out["prediction"], sk_model.model.predict(data[FEATURES]))

    run, artifacts = _runs(batch_project, result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["rows"] == 1200 and run.data.metrics["seconds"] > 0
    assert run.data.tags["ame.model_version"] == batch_project.version
    assert run.data.params["model"] == f"models:/{batch_project.model}/{batch_project.version}"
    assert artifacts == ["output/predictions.parquet"]


def test_section_with_task_gets_model_dataset_and_output(
    tmp_path: Path, batch_project: Project
) -> None:
    write(frame(300, seed=32), tmp_path / "data" / "in.csv")
    (tmp_path / "score.py").write_text(TASK_SCRIPT)
    (tmp_path / "ame.yml").write_text(
        textwrap.dedent(
            f"""
            project: batchtask
            models:
              - name: {batch_project.model}
                batchInference:
                  dataSet: toscore
                  output: scored.csv
                  task:
                    executor: !custom
                      command: {sys.executable} score.py
            dataSets:
              - name: toscore
                path: data/in.csv
            """
        )
    )
    # On a cluster backend the section still runs here, and says so in one line.
    done = ame("batch", batch_project.model, "--json", cwd=tmp_path,
               env={"MLFLOW_TRACKING_URI": batch_project.tracking_uri,
                    "AME_BACKEND": "kubernetes"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "note: ame batch runs on this machine, not on the kubernetes backend; its schedule "
        "runs on the cluster as a CronJob (`ame render kubernetes`)"
    ) in done.stderr.splitlines()
    result = json.loads(done.stdout)
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["AME_MODEL_NAME"] == batch_project.model
    assert seen["AME_MODEL_VERSION"] == batch_project.version
    assert seen["AME_MODEL_URI"] == f"models:/{batch_project.model}/{batch_project.version}"
    assert seen["AME_DATASET_TOSCORE"] == str(tmp_path / "data" / "in.csv")
    assert seen["AME_OUTPUT"] == str(tmp_path / "scored.csv")
    assert len(pd.read_csv(tmp_path / "scored.csv")) == 300

    run, artifacts = _runs(batch_project, result["run_id"])
    assert result["task"] == f"{batch_project.model}.batchInference"
    assert run.data.metrics["rows"] == 300
    assert run.data.tags["ame.model_version"] == batch_project.version
    assert artifacts == ["output/scored.csv"]


def test_section_errors_are_one_line(tmp_path: Path, batch_project: Project) -> None:
    (tmp_path / "ame.yml").write_text(
        f"project: nobatch\nmodels:\n  - name: {batch_project.model}\n"
    )
    done = ame("batch", batch_project.model, cwd=tmp_path,
               env={"MLFLOW_TRACKING_URI": batch_project.tracking_uri})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: model '{batch_project.model}' has no batchInference section in "
        f"{tmp_path / 'ame.yml'}; score a file directly with `ame predict`"
    ]
