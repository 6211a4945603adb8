"""Produced datasets of Kubernetes Jobs: made once, kept in the tracking server's artifact store.

Real: the MLflow server (its artifact store over HTTP), the producer task run
as a real process, and the pod's entry point (``python -m
ame.backends.kubernetes.datasets``) run in a subprocess in the project
directory, as the rendered Job runs it. A "new pod" is the project with its
local ``.ame/datasets`` cache removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from ame.backends.kubernetes.datasets import DATASET_TAG, STORED_TAG
from ame.backends.kubernetes.options import RenderOptions
from ame.backends.kubernetes.render import render_project
from ame.backends.kubernetes.source import project_source
from ame.spec import load_project
from tests.kubernetes.conftest import SERVER, write_project

PROJECT = """
    project: {name}
    dataSets:
      - name: raw
        task:
          name: make_raw
          executor: !custom
            command: sh -c 'echo "rows from $AME_TASK" > "$AME_DATASET_RAW/data.txt"'
    tasks:
      - name: train
        dataSets: [raw]
        executor: !custom
          command: cat "$AME_DATASET_RAW/data.txt"
"""


def _pod_step(root: Path, uri: str) -> subprocess.CompletedProcess[str]:
    """What the Job's container runs before ``ame task run train``."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "AME_TRACKING_AGENT": "0"}
    return subprocess.run(
        [sys.executable, "-m", "ame.backends.kubernetes.datasets", "train"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _producer_runs(uri: str, project: str) -> list[dict[str, str]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, uri)
    experiment = client.get_experiment_by_name(project)
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{DATASET_TAG}` = '{project}.raw'"
    )
    return [r.data.tags for r in runs]


def test_a_dataset_is_made_once_and_downloaded_by_later_pods(
    tmp_path: Path, mlflow_server: str
) -> None:
    name = f"ds{uuid.uuid4().hex[:8]}"
    root = write_project(tmp_path / name, PROJECT.format(name=name))
    first = _pod_step(root, mlflow_server)
    assert first.returncode == 0, first.stderr
    assert f"dataset {name}.raw: made and stored" in first.stdout
    (made,) = _producer_runs(mlflow_server, name)
    assert made[STORED_TAG] == "true"
    cached = list((root / ".ame" / "datasets" / "raw").glob("*/data.txt"))
    assert [p.read_text() for p in cached] == ["rows from make_raw\n"]

    # A new pod: no local cache. The files come from the artifact store; no producer runs.
    shutil.rmtree(root / ".ame" / "datasets")
    second = _pod_step(root, mlflow_server)
    assert second.returncode == 0, second.stderr
    assert f"dataset {name}.raw: downloaded" in second.stdout
    assert len(_producer_runs(mlflow_server, name)) == 1
    restored = list((root / ".ame" / "datasets" / "raw").glob("*/data.txt"))
    assert [p.read_text() for p in restored] == ["rows from make_raw\n"]
    assert [p.parent for p in restored] == [p.parent for p in cached]  # the same spec hash

    # With the cache in place (the same pod), nothing is asked or run.
    third = _pod_step(root, mlflow_server)
    assert third.returncode == 0 and third.stdout == ""

    # An edited producer is a new version: made again.
    text = (root / "ame.yml").read_text().replace("rows from", "new rows from")
    (root / "ame.yml").write_text(text)
    shutil.rmtree(root / ".ame" / "datasets")
    fourth = _pod_step(root, mlflow_server)
    assert fourth.returncode == 0 and "made and stored" in fourth.stdout
    assert len(_producer_runs(mlflow_server, name)) == 2


def test_a_failed_producer_stores_nothing(tmp_path: Path, mlflow_server: str) -> None:
    name = f"ds{uuid.uuid4().hex[:8]}"
    text = PROJECT.format(name=name).replace(
        """sh -c 'echo "rows from $AME_TASK" > "$AME_DATASET_RAW/data.txt"'""", "sh -c 'exit 3'"
    )
    root = write_project(tmp_path / name, text)
    done = _pod_step(root, mlflow_server)
    assert done.returncode != 0
    assert "producer task 'make_raw' ended FAILED (exit 3" in done.stderr
    (run,) = _producer_runs(mlflow_server, name)
    assert STORED_TAG not in run
    assert not list((root / ".ame" / "datasets" / "raw").glob("*/data.txt"))


def test_the_job_of_a_reader_fetches_its_datasets_first(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", PROJECT.format(name="p"))
    project = load_project(root)
    options = RenderOptions(tracking_uri=SERVER, source=project_source(project, "archive"))
    scripts = {
        r.obj["metadata"]["name"]: r.obj["spec"]["template"]["spec"]["containers"][0]["command"][-1]
        for r in render_project(project, options)
    }
    assert scripts["train"].splitlines()[-2:] == [
        "python -m ame.backends.kubernetes.datasets train",
        "exec ame task run train",
    ]
    assert "ame.backends.kubernetes.datasets" not in scripts["make-raw"]


def test_the_plan_says_what_to_look_up_and_how_to_tag_it(tmp_path: Path) -> None:
    from ame.backends.kubernetes.datasets import HASH_TAG, _marker, plan
    from ame.tasks.datasets import dataset_dir, spec_hash

    text = PROJECT.format(name="p") + (
        "      - name: shipped\n        dataSets: [files]\n"
        "        executor: !custom\n          command: 'true'\n"
    )
    text = text.replace("dataSets:\n", "dataSets:\n      - name: files\n        path: data/\n", 1)
    root = write_project(tmp_path / "p", text)
    project = load_project(root)
    (step,) = plan(project, project.task("train"))
    owner, ds = step.owner, step.dataset
    assert step.key == "p.raw" and ds.name == "raw"
    digest = spec_hash(ds)
    assert step.search == (
        f"tags.`{DATASET_TAG}` = 'p.raw' and tags.`{HASH_TAG}` = '{digest}' and "
        f"tags.`{STORED_TAG}` = 'true' and attributes.status = 'FINISHED'"
    )
    assert step.producer_tags == {
        "ame.dataset_producer": "true", DATASET_TAG: "p.raw", HASH_TAG: digest,
    }  # fmt: skip
    assert STORED_TAG not in step.producer_tags  # set only once the upload is complete
    # Files the project ships need no step; nor does a dataset this pod has cached.
    assert plan(project, project.task("shipped")) == []
    cached = dataset_dir(owner, ds)
    cached.mkdir(parents=True)
    (cached / _marker()).write_text("{}")
    assert plan(project, project.task("train")) == []
