"""Tasks as Ray jobs on a real local cluster, through the real ``ame`` CLI.

Each test costs a job (5-10 s on 2 cores), so each checks several things of
one run: resources, live logs and the exit code in one; SIGTERM in another;
secrets, datasets, the refusals and ``ame backend status`` in their own.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ame.backends.ray.cluster import META_PROJECT, META_TASK
from tests.ray.cluster import Cluster, join_node, start_head, stop, stop_session
from tests.ray.helpers import Live, ame, cli_env, job_client, run_id_from, run_tags, write_project

LIVE_TASK = """\
project: {name}
tasks:
  - name: talk
    executor: !custom
      command: >-
        python -c "import os, sys, time, pathlib;
        print('first line', os.environ['AME_TASK'], flush=True);
        marker = pathlib.Path(os.environ['GO_FILE']);
        [time.sleep(0.1) for _ in range(1200) if not marker.exists()];
        print('second line after', marker.read_text());
        sys.exit(3)"
    resources: {{cpu: 1, memory: 200M}}
    env: {{GO_FILE: '{go}'}}
"""


def test_job_streams_logs_live_passes_exit_code_and_asks_for_resources(
    ray_cluster: Cluster, tmp_path: Path, unique_name: str, shared_store_uri: str
) -> None:
    go = tmp_path / "go"
    root = write_project(tmp_path / "p", LIVE_TASK.format(name=unique_name, go=go))
    env = cli_env(ray_cluster)
    live = Live("task", "run", "talk", "--backend", "ray", "--tracking-uri", shared_store_uri,
                cwd=root, env=env)  # fmt: skip
    # The first line arrives while the task is still waiting for the marker: live.
    assert live.wait_for_line("first line") == "[talk] first line talk"
    # While it runs, its job holds the task's resources (Ray's job supervisor
    # actor carries the entrypoint's resources).
    actors = job_client(ray_cluster)._do_request("GET", "/api/v0/actors?detail=1&limit=1000")
    held = [
        a["required_resources"]
        for a in actors.json()["data"]["result"]["result"]
        if a.get("class_name") == "JobSupervisor" and a.get("state") == "ALIVE"
    ]
    assert {"CPU": 1.0, "memory": 200 * 10**6} in held, held
    go.write_text("the marker")
    code, out, err = live.finish()
    assert code == 3, err
    assert "[talk] second line after the marker" in out
    assert f"backend: ray at {ray_cluster.dashboard} (--backend)" in err
    run_id = run_id_from(err)
    tags, params, status = run_tags(shared_store_uri, run_id)
    assert status == "FAILED"
    assert tags["ame.exit_code"] == "3"
    assert tags["ame.backend"] == "ray"
    assert tags["ame.task"] == "talk" and tags["ame.kind"] == "task"
    assert params["task"] == "talk" and params["executor"] == "custom"
    assert params["python_version"].count(".") == 2
    job_id = tags["ame.ray_job_id"]
    assert job_id == f"ame-{run_id}"
    info = job_client(ray_cluster).get_job_info(job_id)
    assert info.driver_exit_code == 3
    assert info.metadata["ame.run_id"] == run_id
    # The log artifact holds the task's lines, without Ray's own preamble.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=shared_store_uri)
    log_file = client.download_artifacts(run_id, "task.log", str(tmp_path / "dl"))
    text = Path(log_file).read_text()
    assert "first line talk" in text and "second line after the marker" in text
    assert "Running entrypoint" not in text


SLEEPER = """\
project: {name}
tasks:
  - name: sleeper
    executor: !custom
      command: python -c "import time; print('started', flush=True); time.sleep(600)"
  - name: greedy
    executor: !custom
      command: python -c "print('never')"
    resources: {{cpu: 64, nvidia.com/gpu: 1}}
  - name: slow
    executor: !custom
      command: python -c "import time; print('slow started', flush=True); time.sleep(600)"
    timeout: 2
"""


def test_sigterm_and_timeout_stop_the_job_and_an_over_ask_is_refused(
    ray_cluster: Cluster, tmp_path: Path, unique_name: str, shared_store_uri: str
) -> None:
    root = write_project(tmp_path / "p", SLEEPER.format(name=unique_name))
    env = cli_env(ray_cluster)
    jobs = job_client(ray_cluster)

    refused = ame("task", "run", "greedy", "--backend", "ray", "--tracking-uri", shared_store_uri,
                  cwd=root, env=env)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "asks for 64 CPUs, 1 GPUs (nvidia.com/gpu)" in refused.stderr
    assert "127.0.0.1: 2 CPUs, 0 GPUs, 4G memory" in refused.stderr
    assert "Traceback" not in refused.stderr
    # The cluster is shared by the whole test run: look only for this project's job.
    submitted = [
        j.submission_id
        for j in jobs.list_jobs()
        if (j.metadata or {}).get(META_PROJECT) == unique_name
        and (j.metadata or {}).get(META_TASK) == "greedy"
    ]
    assert submitted == [], "nothing was submitted"

    live = Live("task", "run", "sleeper", "--backend", "ray", "--tracking-uri", shared_store_uri,
                cwd=root, env=env)  # fmt: skip
    live.wait_for_line("started")
    live.proc.send_signal(signal.SIGTERM)
    code, _, err = live.finish()
    assert code == 128 + signal.SIGTERM, err
    assert "killed: interrupted by SIGTERM" in err
    run_id = run_id_from(err)
    tags, _, status = run_tags(shared_store_uri, run_id)
    assert status == "KILLED"
    assert str(jobs.get_job_status(tags["ame.ray_job_id"])) in ("STOPPED", "JobStatus.STOPPED")

    timed = ame("task", "run", "slow", "--backend", "ray", "--tracking-uri", shared_store_uri,
                cwd=root, env=env)  # fmt: skip
    assert timed.returncode == 124, timed.stderr
    assert "killed: timeout of 2s exceeded" in timed.stderr
    assert "[slow] slow started" in timed.stdout


SECRET_TASK = """\
project: {name}
tasks:
  - name: uses_secret
    executor: !custom
      command: >-
        python -c "import os, hashlib;
        v = os.environ['API_TOKEN'];
        print('token is', v);
        print('digest', hashlib.sha256(v.encode()).hexdigest())"
    secrets:
      - key: api/token
        injectAs: API_TOKEN
"""


def test_secrets_reach_the_task_but_never_the_job_record(
    ray_cluster: Cluster, tmp_path: Path, unique_name: str, shared_store_uri: str
) -> None:
    import hashlib

    secret = "s3cr3t-" + unique_name
    root = write_project(tmp_path / "p", SECRET_TASK.format(name=unique_name))
    env = cli_env(ray_cluster)
    saved = ame("secret", "set", "api/token", cwd=root, env=env, stdin=secret)
    assert saved.returncode == 0, saved.stderr
    result = ame("task", "run", "uses_secret", "--backend", "ray",
                 "--tracking-uri", shared_store_uri, cwd=root, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[uses_secret] token is ***" in result.stdout
    assert f"digest {hashlib.sha256(secret.encode()).hexdigest()}" in result.stdout
    assert secret not in result.stdout + result.stderr
    run_id = run_id_from(result.stderr)
    tags, params, _ = run_tags(shared_store_uri, run_id)
    jobs = job_client(ray_cluster)
    info = jobs.get_job_info(tags["ame.ray_job_id"])
    record = json.dumps(
        {"runtime_env": info.runtime_env, "metadata": info.metadata, "entrypoint": info.entrypoint}
    )
    assert secret not in record
    listing = jobs._do_request("GET", "/api/jobs/").text
    assert secret not in listing
    assert secret not in json.dumps({**tags, **params})
    # The one-use entry is gone from the cluster once the task read it.
    entry = info.runtime_env["env_vars"]["AME_RAY_SECRETS_ENTRY"]
    assert entry.startswith("gcs://_ame_entry_")
    from ray import _raylet

    gcs = _raylet.GcsClient(address=ray_cluster.gcs)
    assert gcs.internal_kv_get(entry.encode(), None) is None
    # The working_dir package holds only the project's files.
    package = info.runtime_env["working_dir"]
    data = gcs.internal_kv_get(package.encode(), None)
    assert data is not None and secret.encode() not in data


DATASETS = """\
project: {name}
dataSets:
  - name: numbers
    task:
      name: make_numbers
      executor: !custom
        command: >-
          python -c "import os, pathlib;
          out = pathlib.Path(os.environ['AME_DATASET_NUMBERS']);
          (out / 'n.txt').write_text('1 2 3');
          print('produced')"
  - name: big
    path: data
tasks:
  - name: total
    executor: !custom
      command: >-
        python -c "import os, pathlib;
        n = (pathlib.Path(os.environ['AME_DATASET_NUMBERS']) / 'n.txt').read_text();
        print('total', sum(map(int, n.split())))"
    dataSets: [numbers]
  - name: reads_big
    executor: !custom
      command: python -c "print('never')"
    dataSets: [big]
"""


def test_dataset_produced_by_one_job_is_read_by_the_next(
    ray_cluster: Cluster, tmp_path: Path, unique_name: str, shared_store_uri: str
) -> None:
    root = write_project(tmp_path / "p", DATASETS.format(name=unique_name))
    (root / "data").mkdir()
    (root / "data" / "huge.bin").write_bytes(b"0" * 3000)
    env = cli_env(ray_cluster, AME_RAY_MAX_FILE_SIZE="2k")
    first = ame("task", "run", "total", "--backend", "ray", "--tracking-uri", shared_store_uri,
                cwd=root, env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "[total] (dataset producer make_numbers) produced" in first.stdout
    assert "[total] total 6" in first.stdout
    again = ame("task", "run", "total", "--backend", "ray", "--tracking-uri", shared_store_uri,
                cwd=root, env=env)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "produced" not in again.stdout, "an unchanged dataset is not made again"
    assert "[total] total 6" in again.stdout
    refused = ame("task", "run", "reads_big", "--backend", "ray",
                  "--tracking-uri", shared_store_uri, cwd=root, env=env)  # fmt: skip
    assert refused.returncode == 2
    assert "dataset 'big': data/huge.bin (3k) is over the 2k limit" in refused.stderr


def test_backend_status_shows_nodes_and_ame_jobs(ray_cluster: Cluster, tmp_path: Path) -> None:
    env = cli_env(ray_cluster)
    result = ame("backend", "status", "--backend", "ray", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["backend"] == "ray" and status["hosts"] == 1
    (node,) = status["nodes"]
    assert (node["address"], node["cpus"], node["memory"], node["head"]) == (
        "127.0.0.1",
        2.0,
        4000000000,
        True,
    )
    assert all(job["id"].startswith("ame-") for job in status["jobs"])
    table = ame("backend", "status", "--backend", "ray", cwd=tmp_path, env=env)
    assert table.returncode == 0
    assert "127.0.0.1  alive  2     0     4G      head" in table.stdout
    down = ame("backend", "status", "--backend", "ray", cwd=tmp_path,
               env=cli_env(ray_cluster, RAY_ADDRESS="http://127.0.0.1:9"))  # fmt: skip
    assert down.returncode == 2
    assert down.stderr.strip().endswith(
        "start one with `ray start --head` or fix RAY_ADDRESS / backend.ray.address"
    )


@pytest.fixture
def private_cluster() -> Iterator[Cluster]:
    """A head node of this test's own, for a test that changes the cluster's shape.

    Joining a second node to the run's shared cluster would leave it two hosts
    wide for any test that runs while that node is still being taken down.
    (Not under pytest's tmp_path: Ray's socket paths must stay short.)
    """
    folder = Path(tempfile.mkdtemp(prefix="ame-ray-", dir=tempfile.gettempdir()))
    cluster = start_head(folder / "ray", folder / "ray-start.log", cpus=1)
    try:
        yield cluster
    finally:
        stop(cluster)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(600)
def test_embedded_store_is_refused_when_the_cluster_spans_two_hosts(
    private_cluster: Cluster, tmp_path: Path, unique_name: str
) -> None:
    root = write_project(
        tmp_path / "p",
        f"project: {unique_name}\ntasks:\n  - name: t\n    executor: !custom\n"
        "      command: python -c \"print('never')\"\n",
    )
    sid = join_node(private_cluster, "127.0.0.2", tmp_path / "worker.log")
    try:
        result = ame(
            "task", "run", "t", "--backend", "ray", cwd=root, env=cli_env(private_cluster)
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("error: the Ray cluster spans 2 host(s) (127.0.0.1, 127.0.0.2)")
        assert "pass --tracking-uri" in line
    finally:
        stop_session(sid)
