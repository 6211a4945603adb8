"""What a Ray job runs on the node: ``python -m ame.backends.ray.entry``.

A bare ``python`` in a job's entrypoint is the cluster's interpreter, not the
task's environment, so the job runs this wrapper instead of the task's command.
On the node it:

1. reads the task's secrets from the one-use entry ame put in the cluster's
   key-value store, and deletes it (secrets are never in the job's
   runtime_env, metadata or working_dir: Ray shows those to anyone who can
   list jobs);
2. builds the task's environment as its executor says, here, in this node's
   cache (``ame.tasks.prepare_environment``, the same code as a local run);
3. fetches the datasets the task reads (kept as artifacts of their producer's
   MLflow run, so a task on any node finds them) and gives a produced
   dataset an empty directory to write into;
4. runs the command with that environment's interpreter first on PATH,
   supervised as a local run is (``ame.tasks.process.run_process``: memory
   limit, process tree stopped on SIGTERM, which is what ``ray job stop``
   sends), with secrets masked in every line;
5. stores a produced dataset with the run, and exits with the task's code,
   which Ray reports as the job's ``driver_exit_code``.

Lines starting with ``[ame-ray] `` are events for the submitting ame (JSON),
not shown to the user.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

SPEC_ENV = "AME_RAY_TASK"
ENTRY_ENV = "AME_RAY_SECRETS_ENTRY"
EVENT_PREFIX = "[ame-ray] "
DATASET_ARTIFACT = "ame-dataset"
EXIT_SETUP = 2


def _event(**fields: Any) -> None:
    sys.stdout.write(EVENT_PREFIX + json.dumps(fields) + "\n")
    sys.stdout.flush()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def read_entry(key: str) -> dict[str, str]:
    """Read the one-use secrets entry and delete it, so a second reader finds nothing."""
    from ray import _raylet

    # ray._raylet is compiled; its stubs do not declare GcsClient.
    client = _raylet.GcsClient(address=os.environ["RAY_ADDRESS"])  # type: ignore[attr-defined]
    raw = client.internal_kv_get(key.encode(), None)
    client.internal_kv_del(key.encode(), False, None)
    if raw is None:
        raise RuntimeError("the task's secrets entry is gone (was this job started twice?)")
    data = json.loads(raw)
    return {str(k): str(v) for k, v in data.items()}


def _fetch_dataset(run_id: str, where: Path) -> Path:
    from ame.registry.runs import download_run_artifacts
    from ame.registry.store import resolve_store

    # The job's environment names the store (MLFLOW_TRACKING_URI), as for the task.
    where.mkdir(parents=True, exist_ok=True)
    return download_run_artifacts(resolve_store(), run_id, DATASET_ARTIFACT, where)


def _store_dataset(run_id: str, folder: Path) -> None:
    from ame.registry.runs import RunRecorder
    from ame.registry.store import resolve_store

    RunRecorder(resolve_store()).log_artifacts(run_id, str(folder), DATASET_ARTIFACT)


def main() -> int:
    """Run the task described by ``AME_RAY_TASK`` here and return its exit code.

    Everything the run puts on the node's disk (datasets fetched, the produced
    one, the log copy) lives in one scratch directory removed at the end.
    """
    scratch = Path(tempfile.mkdtemp(prefix="ame-ray-"))
    try:
        return _main(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _main(scratch: Path) -> int:
    from ame.spec.model import Project, Resources, Task
    from ame.tasks.environments import prepare_environment
    from ame.tasks.process import run_process
    from ame.tasks.resources import limits_for
    from ame.tasks.secrets import Redactor

    spec = json.loads(os.environ[SPEC_ENV])
    secrets: dict[str, str] = {}
    entry = os.environ.pop(ENTRY_ENV, "")
    try:
        if entry:
            secrets = read_entry(entry)
        root = Path.cwd()
        task = Task.model_validate(spec["task"])
        task.project = None  # the working_dir is the task's own directory
        project = Project(name=spec["project"], root=root, file=root / "ame.yml", tasks=[task])

        def progress(line: str) -> None:
            _say(f"[ame] {line[-200:]}")

        environment = prepare_environment(
            project, task, rebuild=bool(spec.get("rebuild")), on_progress=progress
        )
        _event(event="environment", python_version=environment.python_version, how=environment.how)
        dataset_env: dict[str, str] = {}
        for variable, run_id in (spec.get("datasets_in") or {}).items():
            dataset_env[variable] = str(_fetch_dataset(run_id, scratch / variable))
        produced = spec.get("dataset_out")
        if produced:
            out = scratch / "out"
            out.mkdir()
            dataset_env[produced] = str(out)
    except Exception as exc:  # a setup failure is the job's result, told in one line
        _say(f"[ame] error: the task could not start on this node: {exc}")
        return EXIT_SETUP
    # Ray schedules logical CPUs and GPUs; ame sizes thread pools and keeps the
    # memory limit as locally, but pins no cores (other jobs share the node).
    local = Resources(cpu=task.resources.cpu, memory=task.resources.memory)
    limits = limits_for(local)
    limits.cores = None
    env = dict(os.environ)
    for stale in ("PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(stale, None)
    env.update(environment.variables(env.get("PATH", "")))
    env["AME_PROJECT_DIR"] = str(root)
    env.update(limits.env)
    if spec.get("cpu_only"):
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.update(dataset_env)
    env.update(secrets)
    log_path = scratch / "task.log"
    result = run_process(
        spec["command"],
        cwd=root,
        env=env,
        log_path=log_path,
        on_output=_say,
        redact=Redactor(secrets.values()),
        timeout=None,  # the submitting ame enforces the timeout (it stops the job)
        limits=limits,
    )
    if result.reason:
        _say(f"[ame] {result.reason}")
    if produced and result.exit_code == 0:
        try:
            _store_dataset(spec["run_id"], scratch / "out")
        except Exception as exc:
            _say(f"[ame] error: could not store dataset output with run {spec['run_id']}: {exc}")
            return 1
        _event(event="dataset_stored", run_id=spec["run_id"])
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
