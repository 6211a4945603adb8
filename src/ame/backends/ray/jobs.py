"""One task as one Ray job: checked, submitted, followed live, recorded like a local run.

``RayTaskHandle.start`` makes every check that can fail cheaply first (the
command, the secrets, an over-ask, an embedded store on a multi-host cluster,
files that would not reach the node), then produces the datasets the task
reads, then creates the MLflow run with the tags a local run has plus
``ame.backend=ray`` and ``ame.ray_job_id``, uploads the working_dir and submits
``python -m ame.backends.ray.entry``. ``wait`` streams the job's log with
secrets masked, writes it to ``.ame/logs/<run>/task.log`` (stored with the run,
as locally), and stops the job on Ctrl-C, SIGTERM or the task's timeout. The
exit code is the job's ``driver_exit_code``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

from ame.backends.base import FAILED, FINISHED, KILLED, PENDING, RUNNING, TaskRequest
from ame.backends.ray import entry as entry_mod
from ame.backends.ray.cluster import (
    META_KIND,
    META_NAMESPACE,
    META_PROJECT,
    META_RUN,
    META_TASK,
    RayCluster,
)
from ame.backends.ray.follow import GRACE_SECONDS, final_info, follow, status_of
from ame.errors import TaskError

if TYPE_CHECKING:
    from ame.tasks.runner import TaskRun
    from ame.tasks.secrets import Redactor
    from ame.tasks.tracking import Tracker

log = logging.getLogger(__name__)

ENTRYPOINT = "python -m ame.backends.ray.entry"
EXIT_TIMEOUT = 124


class RayTaskHandle:
    """A task running (or about to) as a Ray job."""

    backend = "ray"

    def __init__(
        self,
        cluster: RayCluster,
        request: TaskRequest,
        *,
        dataset_out: Optional[str] = None,
        stack: tuple[str, ...] = (),
    ) -> None:
        self.cluster = cluster
        self.request = request
        self.dataset_out = dataset_out
        self.stack = stack
        self.job_id: Optional[str] = None
        self.run_id: Optional[str] = None
        self._state = PENDING
        self._exit_code: Optional[int] = None
        self._cancel: Optional[str] = None
        self._run: Optional[TaskRun] = None
        self._submitted = 0.0
        self._tracker: Optional[Tracker] = None
        self._redact: Optional[Redactor] = None
        self._timeout = request.task.timeout

    # --- the protocol ----------------------------------------------------------

    @property
    def id(self) -> Optional[str]:
        """The Ray job id (``ame-<run id>``) once submitted."""
        return self.job_id

    def status(self) -> str:
        """PENDING, RUNNING, or how it ended (FINISHED, FAILED, KILLED)."""
        if self._run is not None or self.job_id is None:
            return self._state
        return {
            "PENDING": PENDING,
            "RUNNING": RUNNING,
            "SUCCEEDED": FINISHED,
            "STOPPED": KILLED,
        }.get(status_of(self.cluster.info(self.job_id)), FAILED)

    @property
    def exit_code(self) -> Optional[int]:
        """The job's exit code once it ended."""
        return self._exit_code

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the job on the cluster; ``wait`` returns it as KILLED."""
        self._cancel = reason
        if self.job_id is not None:
            self.cluster.stop(self.job_id)

    # --- starting ----------------------------------------------------------------

    def start(self) -> RayTaskHandle:
        """Check, produce datasets, create the run, upload and submit. Returns self."""
        from ame.backends.ray import checks, datasets, workdir
        from ame.tasks.environments import task_root
        from ame.tasks.runner import task_command, task_run_tags
        from ame.tasks.secrets import Redactor, resolve_secrets
        from ame.tasks.tracking import open_tracker

        r = self.request
        project, task, store = r.project, r.task, r.store
        command = task_command(project, task)
        secret_env = resolve_secrets(task.secrets)
        self._redact = redact = Redactor(secret_env.values())
        wanted = checks.job_resources(task.resources, cpu_only=r.cpu_only)
        nodes = self.cluster.nodes()
        checks.check_fits(wanted, nodes, self.cluster.address)
        checks.check_store(store, nodes)
        root = task_root(project, task)
        limit = workdir.max_file_size()
        package = workdir.build_workdir(root, limit)
        needed = datasets.declared_paths(project, task)
        workdir.check_paths(root, package, needed, limit)
        self.left_out = package.left_out
        tracker = self._tracker = r.tracker or open_tracker(store)
        datasets_in = datasets.ensure(self, tracker)

        experiment_id = tracker.ensure_experiment(project.name)
        tags = task_run_tags(project, task, root)
        tags["ame.backend"] = "ray"
        tags.update(r.tags)
        run_id = self.run_id = tracker.create_run(
            experiment_id, r.run_name or task.name, {k: redact(v) for k, v in tags.items()}
        )
        try:
            tracker.log_params(
                run_id,
                {
                    "task": task.name,
                    "executor": task.executor.kind,
                    "command": redact(command)[:6000],
                },
            )
            self.cluster.upload_package(package.uri, package.data)
            env_vars = self._job_env(run_id, experiment_id, command, datasets_in)
            if secret_env:
                env_vars[entry_mod.ENTRY_ENV] = self.cluster.put_entry(
                    json.dumps(secret_env).encode()
                )
            job_id = f"ame-{run_id}"
            self.cluster.submit(
                submission_id=job_id,
                entrypoint=ENTRYPOINT,
                runtime_env={"working_dir": package.uri, "env_vars": env_vars},
                metadata={
                    META_KIND: "task",
                    META_PROJECT: project.name,
                    META_TASK: task.name,
                    META_RUN: run_id,
                    META_NAMESPACE: self.cluster.namespace,
                },
                num_cpus=wanted.num_cpus,
                num_gpus=wanted.num_gpus,
                memory=wanted.memory,
            )
            self.job_id = job_id
            self._submitted = time.monotonic()
            self._state = RUNNING
            tracker.set_tag(run_id, "ame.ray_job_id", job_id)
            if package.left_out:
                names = ", ".join(p for p, _ in package.left_out[:20])
                tracker.set_tag(run_id, "ame.ray_left_out", names[:5000])
        except BaseException:
            with contextlib.suppress(Exception):
                tracker.set_terminated(run_id, FAILED)
            raise
        return self

    def _job_env(
        self, run_id: str, experiment_id: str, command: str, datasets_in: dict[str, str]
    ) -> dict[str, str]:
        """The job's env_vars: the environment of a local run, without any secret."""
        from ame.tasks.runner import SCHEDULE_ENV_TAGS

        r = self.request
        env = dict(r.store.env())
        env.update(
            {
                "MLFLOW_EXPERIMENT_NAME": r.project.name,
                "MLFLOW_EXPERIMENT_ID": experiment_id,
                "MLFLOW_RUN_ID": run_id,
                "AME_RUN_ID": run_id,
                "AME_PROJECT": r.project.name,
                "AME_TASK": r.task.name,
                "PYTHONUNBUFFERED": "1",
            }
        )
        # A fired command's schedule variables, which a local task inherits.
        env.update({k: os.environ[k] for k in SCHEDULE_ENV_TAGS if k in os.environ})
        env.update(r.task.env)
        env.update(r.extra_env)
        spec = {
            "task": r.task.model_dump(mode="json", by_alias=True, exclude={"triggers"}),
            "project": r.project.name,
            "command": command,
            "run_id": run_id,
            "rebuild": r.rebuild,
            "cpu_only": r.cpu_only,
            "datasets_in": datasets_in,
            "dataset_out": self.dataset_out,
        }
        env[entry_mod.SPEC_ENV] = json.dumps(spec)
        return env

    # --- following -----------------------------------------------------------------

    def wait(self, on_output: Optional[Callable[[str], None]] = None) -> TaskRun:
        """Stream the job's log until it ends; stop it on Ctrl-C, SIGTERM or timeout."""
        if self._run is not None:
            return self._run
        if self.job_id is None or self.run_id is None or self._tracker is None:
            raise TaskError("the Ray job was not started (call start() first)")
        on_output = on_output or self.request.on_output
        from ame.tasks.runner import LOG_ARTIFACT, TaskRun

        tracker, run_id, job_id = self._tracker, self.run_id, self.job_id
        redact = self._redact or (lambda s: s)
        log_path = self.request.project.root / ".ame" / "logs" / run_id / LOG_ARTIFACT
        log_path.parent.mkdir(parents=True, exist_ok=True)
        reason: Optional[str] = None
        code: Optional[int] = None
        started_command: Optional[float] = None
        stop_sent_at: Optional[float] = None
        status = FAILED
        try:
            with log_path.open("a", encoding="utf-8") as log_file:

                def emit(line: str) -> None:
                    nonlocal started_command
                    if line.startswith(entry_mod.EVENT_PREFIX):
                        started_command = started_command or self._event(line)
                        return
                    line = redact(line)
                    log_file.write(line + "\n")
                    log_file.flush()
                    if on_output is not None:
                        try:
                            on_output(line)
                        except Exception:
                            log.exception("output callback failed")

                def tick(signum: Optional[int]) -> bool:
                    """Stop the job on a signal, a cancel or the timeout; give up after grace."""
                    nonlocal reason, code, stop_sent_at
                    now = time.monotonic()
                    if reason is not None:
                        return stop_sent_at is not None and now - stop_sent_at > GRACE_SECONDS
                    if signum is not None:
                        reason = f"killed: interrupted by {signal.Signals(signum).name}"
                        code = 128 + signum
                    elif self._cancel is not None:
                        reason = f"killed: {self._cancel}"
                        code = 128 + signal.SIGTERM
                    elif (
                        self._timeout is not None
                        and started_command is not None
                        and now - started_command > self._timeout
                    ):
                        reason = f"killed: timeout of {self._timeout:g}s exceeded"
                        code = EXIT_TIMEOUT
                    if reason is not None:
                        log.info("stopping Ray job %s: %s", job_id, reason)
                        self.cluster.stop(job_id)
                        stop_sent_at = now
                    return False

                follow(self.cluster, job_id, emit, tick)
                if reason is not None:
                    log_file.write(f"[ame] {reason}\n")
            info = final_info(self.cluster, job_id)
            ray_status = status_of(info)
            if reason is not None:
                status, exit_code = KILLED, code if code is not None else 1
            elif info.driver_exit_code is not None:
                exit_code = int(info.driver_exit_code)
                status = FINISHED if exit_code == 0 and ray_status == "SUCCEEDED" else FAILED
            else:
                exit_code = 1
                status = KILLED if ray_status == "STOPPED" else FAILED
                reason = f"the Ray job ended {ray_status}: {str(info.message or '')[:500]}"
            self._exit_code, self._state = exit_code, status
            tracker.set_tag(run_id, "ame.exit_code", str(exit_code))
            if reason:
                tracker.set_tag(run_id, "ame.reason", reason[:5000])
            try:
                tracker.log_artifact(run_id, str(log_path), None)
            except Exception as exc:
                log.warning("could not store the log of run %s: %s", run_id, exc)
        except BaseException:
            # ame itself is going away (a second Ctrl-C, an error): never leave the job running.
            with contextlib.suppress(Exception):
                self.cluster.stop(job_id)
            status = KILLED
            raise
        finally:
            with contextlib.suppress(Exception):
                tracker.set_terminated(run_id, status)
        self._run = TaskRun(
            run_id=run_id,
            task=self.request.task.name,
            exit_code=exit_code,
            status=status,
            log_path=log_path,
            duration=time.monotonic() - self._submitted,
            reason=reason,
        )
        return self._run

    def _event(self, line: str) -> Optional[float]:
        """Act on an event line of the node's wrapper; the time the command started, if it did."""
        try:
            event = json.loads(line[len(entry_mod.EVENT_PREFIX) :])
        except ValueError:
            return None
        if event.get("event") == "environment" and self._tracker and self.run_id:
            with contextlib.suppress(Exception):
                self._tracker.log_params(
                    self.run_id, {"python_version": str(event.get("python_version"))}
                )
            return time.monotonic()
        return None
