"""Real task runs: exit codes, tracking, environment variables, limits, stopping."""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from ame import __version__
from ame.errors import ResourceUnavailableError, TaskError
from ame.registry.store import Store
from ame.spec.model import ArtifactConfig, Executor, Project, Resources, Task
from ame.tasks import run_task
from ame.tasks.history import list_runs, read_log
from tests.tasks.helpers import add, custom, py


def client(store: Store) -> MlflowClient:
    return MlflowClient(tracking_uri=store.tracking_uri)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_failing_task_exits_with_its_code_and_is_failed(
    project: Project, task_store: Store
) -> None:
    task = custom("boom", "echo about to fail; echo oops >&2; exit 7")
    lines: list[str] = []
    run = run_task(add(project, task), task, task_store, on_output=lines.append)
    assert (run.status, run.exit_code) == ("FAILED", 7)
    assert lines == ["about to fail", "oops"]
    assert run.tail(1) == ["oops"]
    stored = client(task_store).get_run(run.run_id)
    assert stored.info.status == "FAILED"
    assert stored.data.tags["ame.exit_code"] == "7"
    assert read_log(task_store, run.run_id).splitlines() == ["about to fail", "oops"]


def test_task_metric_lands_in_its_run_with_params_and_tags(
    project: Project, task_store: Store
) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        cwd=project.root,
        check=True,
    )
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True, check=True
    ).stdout.strip()
    code = """
        import os, mlflow
        with mlflow.start_run() as run:
            mlflow.log_metric("accuracy", 0.93)
            print("logged into", run.info.run_id, os.environ["MLFLOW_EXPERIMENT_NAME"])
    """
    task = custom("train", py(code))
    run = run_task(add(project, task), task, task_store, tags={"purpose": "test"})
    assert run.status == "FINISHED", run.tail(30)
    assert f"logged into {run.run_id} {project.name}" in run.tail(5)
    stored = client(task_store).get_run(run.run_id)
    assert stored.data.metrics["accuracy"] == pytest.approx(0.93)
    assert stored.info.status == "FINISHED"
    assert stored.data.params["task"] == "train"
    assert stored.data.params["executor"] == "custom"
    assert stored.data.params["command"] == task.executor.command
    assert stored.data.tags["ame.version"] == __version__
    assert stored.data.tags["ame.task"] == "train"
    assert stored.data.tags["mlflow.source.git.commit"] == commit
    assert stored.data.tags["purpose"] == "test"
    experiment = client(task_store).get_experiment(stored.info.experiment_id)
    assert experiment.name == project.name
    listed = list_runs(task_store, project.name)
    assert [r["run_id"] for r in listed] == [run.run_id]


def test_environment_variables_of_a_pip_task(project: Project, task_store: Store) -> None:
    code = """
        import json, os, six, sys
        keys = ["MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME",
                "AME_PROJECT", "AME_PROJECT_DIR", "AME_TASK", "AME_RUN_ID", "MLFLOW_RUN_ID",
                "VIRTUAL_ENV", "GREETING", "EXTRA", "OMP_NUM_THREADS", "MKL_NUM_THREADS"]
        out = {k: os.environ.get(k) for k in keys}
        out["prefix"] = sys.prefix
        out["cwd"] = os.getcwd()
        out["cores"] = len(os.sched_getaffinity(0))
        print(json.dumps(out))
    """
    task = Task(
        name="envcheck",
        executor=Executor(kind="pip", packages=["six==1.16.0"], command=py(code)),
        env={"GREETING": "hello"},
        resources=Resources(cpu=0.5),
    )
    run = run_task(add(project, task), task, task_store, extra_env={"EXTRA": "x"})
    assert run.status == "FINISHED", run.tail(30)
    seen = json.loads(run.tail(1)[0])
    assert run.environment is not None and run.environment.prefix is not None
    assert seen["MLFLOW_TRACKING_URI"] == task_store.tracking_uri
    assert seen["MLFLOW_REGISTRY_URI"] == task_store.registry_uri
    assert seen["MLFLOW_EXPERIMENT_NAME"] == seen["AME_PROJECT"] == project.name
    assert seen["AME_PROJECT_DIR"] == str(project.root) == seen["cwd"]
    assert seen["AME_TASK"] == "envcheck"
    assert seen["AME_RUN_ID"] == seen["MLFLOW_RUN_ID"] == run.run_id
    assert Path(seen["VIRTUAL_ENV"]) == Path(seen["prefix"]) == run.environment.prefix
    assert (seen["GREETING"], seen["EXTRA"]) == ("hello", "x")
    assert seen["OMP_NUM_THREADS"] == seen["MKL_NUM_THREADS"] == "1"
    assert seen["cores"] == 1


def test_timeout_kills_the_whole_tree(project: Project, task_store: Store) -> None:
    command = "sleep 300 & echo $! > grandchild.pid; echo started; wait"
    task = custom("slow", command, timeout=2.0)
    started = time.monotonic()
    run = run_task(add(project, task), task, task_store)
    assert time.monotonic() - started < 60
    assert run.status == "KILLED"
    assert run.reason == "killed: timeout of 2s exceeded"
    assert run.tail(1) == ["[ame] killed: timeout of 2s exceeded"]
    grandchild = int((project.root / "grandchild.pid").read_text())
    assert gone(grandchild)
    assert client(task_store).get_run(run.run_id).info.status == "KILLED"


def test_memory_limit_kills_the_task(project: Project, task_store: Store) -> None:
    code = """
        import time
        print("allocating", flush=True)
        blob = b"x" * (400 * 1024 * 1024)
        time.sleep(60)
    """
    task = custom("hog", py(code), resources=Resources(memory=100 * 1024**2))
    run = run_task(add(project, task), task, task_store)
    assert run.status == "KILLED"
    assert run.reason is not None
    assert run.reason.startswith("killed: memory limit 100Mi exceeded")
    assert run.exit_code == 137
    assert client(task_store).get_run(run.run_id).data.tags["ame.reason"] == run.reason


class StallingArtifactServer:
    """A real HTTP artifact store on 127.0.0.1 whose uploads hang until released.

    It holds ame inside the upload of a run's log, after the task has ended,
    so that a signal can be sent at exactly that moment.
    """

    def __init__(self) -> None:
        self.upload_started = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.upload_started.set()
                outer.release.wait(120)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/artifacts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_ctrl_c_and_sigterm_to_the_runner_kill_the_tree_and_the_run(
    project: Project, task_store: Store
) -> None:
    # One driver process (importing MLflow once) runs a task three times: stopped
    # with SIGINT (Ctrl-C) while it runs, with SIGTERM while it runs, and with
    # SIGTERM after it ended, while ame uploads its log: every run ends KILLED.
    artifacts = StallingArtifactServer()
    uploading = f"{project.name}-upload"
    client(task_store).create_experiment(uploading, artifact_location=artifacts.url)
    driver = project.root.parent / "driver.py"
    driver.write_text(
        textwrap.dedent(
            f"""
            import json
            from pathlib import Path
            from ame.registry.store import Store
            from ame.spec.model import Executor, Project, Task
            from ame.tasks import run_task

            root = Path({str(project.root)!r})
            store = Store({task_store.tracking_uri!r}, {task_store.registry_uri!r},
                          {task_store.artifact_root!r}, True)
            for name, experiment in (("first", {project.name!r}), ("second", {project.name!r}),
                                     ("third", {uploading!r})):
                command = f"sleep 300 & echo $! > {{name}}.pid; wait"
                if name == "third":
                    command = "echo done"
                task = Task(name="sleeper", executor=Executor(kind="custom", command=command))
                project = Project(name=experiment, root=root, file=root / "ame.yml",
                                  tasks=[task])
                try:
                    run = run_task(project, task, store)
                except KeyboardInterrupt:
                    print(json.dumps({{"interrupted": True}}), flush=True)
                    continue
                print(json.dumps({{"status": run.status, "code": run.exit_code,
                                  "reason": run.reason, "run_id": run.run_id}}), flush=True)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(driver)], stdout=subprocess.PIPE, text=True, cwd=project.root
    )
    assert proc.stdout is not None
    try:
        for name, sig in (("first", signal.SIGINT), ("second", signal.SIGTERM)):
            pid_file = project.root / f"{name}.pid"
            deadline = time.monotonic() + 180
            while not (pid_file.exists() and pid_file.read_text().strip()):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            grandchild = int(pid_file.read_text())
            assert not gone(grandchild)
            proc.send_signal(sig)
            result = json.loads(proc.stdout.readline())
            assert result["status"] == "KILLED"
            assert result["code"] == 128 + sig
            assert result["reason"] == f"killed: interrupted by {sig.name}"
            assert gone(grandchild)
            assert client(task_store).get_run(result["run_id"]).info.status == "KILLED"
        assert artifacts.upload_started.wait(120), "the log upload never started"
        proc.send_signal(signal.SIGTERM)
        assert json.loads(proc.stdout.readline()) == {"interrupted": True}
        assert proc.wait(timeout=60) == 0
        (stored,) = client(task_store).search_runs(
            [client(task_store).get_experiment_by_name(uploading).experiment_id]
        )
        assert stored.info.status == "KILLED"  # not left RUNNING
        assert stored.data.tags["ame.exit_code"] == "0"
        assert stored.data.tags["ame.reason"] == (
            "killed: interrupted by SIGTERM while ame was recording the run"
        )
    finally:
        artifacts.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_output_streams_live_to_the_caller_and_the_log(project: Project, task_store: Store) -> None:
    # The task waits for a file that only the output callback creates, once it
    # has seen the task's first line: it can finish only if lines arrive live.
    command = (
        "echo ready; i=0; while [ ! -f go ]; do sleep 0.05; i=$((i+1)); "
        '[ "$i" -gt 600 ] && echo "never got go" && exit 9; done; echo got it'
    )
    task = custom("live", command)
    lines: list[str] = []
    logged: list[str] = []

    def on_output(line: str) -> None:
        lines.append(line)
        if line == "ready":
            log_file = next((project.root / ".ame" / "logs").glob("*/task.log"))
            logged.append(log_file.read_text())
            (project.root / "go").touch()

    run = run_task(add(project, task), task, task_store, on_output=on_output)
    assert run.status == "FINISHED", run.tail(5)
    assert lines == ["ready", "got it"]
    assert logged == ["ready\n"]  # written to the log file before the task ended


def test_finished_task_leaves_no_background_process(project: Project, task_store: Store) -> None:
    task = custom("leaky", "sleep 300 & echo $! > bg.pid; echo done")
    run = run_task(add(project, task), task, task_store)
    assert run.status == "FINISHED"
    assert gone(int((project.root / "bg.pid").read_text()))


def test_gpu_request_beyond_the_machine_is_refused_unless_cpu_only(
    project: Project, task_store: Store
) -> None:
    from ame.tasks.resources import gpu_count

    task = custom(
        "gpu",
        'echo "cuda=[${CUDA_VISIBLE_DEVICES-unset}]"',
        resources=Resources(gpu=gpu_count() + 1),
    )
    with pytest.raises(ResourceUnavailableError, match="GPU"):
        run_task(add(project, task), task, task_store)
    assert not (project.root / ".ame" / "logs").exists()  # refused before any run was made
    run = run_task(project, task, task_store, cpu_only=True)
    assert run.status == "FINISHED"
    assert run.tail(1) == ["cuda=[]"]


def test_task_without_command_is_refused(project: Project, task_store: Store) -> None:
    task = Task(name="empty", executor=Executor(kind="custom"))
    with pytest.raises(TaskError, match="no command"):
        run_task(add(project, task), task, task_store)


def test_artifacts_paths_and_changed_files(project: Project, task_store: Store) -> None:
    (project.root / "config.txt").write_text("before")
    (project.root / "untouched.txt").write_text("same")
    # A named pipe is left behind too: opening it to upload would block forever.
    command = (
        "mkdir -p out && echo 1 > out/metrics.json && echo 2 > out/notes.md && "
        "echo after > config.txt && mkfifo out/pipe.json && ln -s untouched.txt link.txt"
    )
    task = custom(
        "files",
        command,
        artifacts=ArtifactConfig(paths=["out/*.json"], save_changed_files=True),
    )
    run = run_task(add(project, task), task, task_store)
    assert run.status == "FINISHED"
    c = client(task_store)
    top = {a.path for a in c.list_artifacts(run.run_id)}
    assert {"task.log", "out", "changed_files"} <= top
    assert [a.path for a in c.list_artifacts(run.run_id, "out")] == ["out/metrics.json"]
    changed = {a.path for a in c.list_artifacts(run.run_id, "changed_files")}
    assert "changed_files/config.txt" in changed
    assert "changed_files/untouched.txt" not in changed
    assert "changed_files/link.txt" not in changed  # only regular files are kept
    assert {a.path for a in c.list_artifacts(run.run_id, "changed_files/out")} == {
        "changed_files/out/metrics.json",
        "changed_files/out/notes.md",
    }


def test_mlflow_executor_runs_the_entry_point(project: Project, task_store: Store) -> None:
    # No env file: the entry point runs in ame's own environment, parameters filled in.
    (project.root / "MLproject").write_text(
        "name: demo\nentry_points:\n  main:\n    parameters:\n"
        "      alpha: {type: float, default: 0.5}\n"
        "    command: echo alpha={alpha} task=$AME_TASK\n"
    )
    task = Task(name="mlp", executor=Executor(kind="mlflow"))
    run = run_task(add(project, task), task, task_store)
    assert run.status == "FINISHED", run.tail(5)
    assert run.tail(1) == ["alpha=0.5 task=mlp"]
    assert run.environment is not None and not run.environment.isolated
    params = client(task_store).get_run(run.run_id).data.params
    assert (params["executor"], params["command"]) == ("mlflow", "echo alpha=0.5 task=$AME_TASK")
