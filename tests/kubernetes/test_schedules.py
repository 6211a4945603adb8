"""Monitoring and batchInference schedules as CronJobs, and the scheduler's double-run warning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ame.backends.kubernetes.apply import Target, plan_deploy
from ame.backends.kubernetes.options import RenderOptions, ServedVersion
from ame.backends.kubernetes.render import Rendered, render_project, validate_rendered
from ame.backends.kubernetes.source import project_source
from ame.schedule.cronjobs import cluster_schedules, double_run_warning
from ame.spec import load_project
from tests.conftest import REPO_ROOT
from tests.kubernetes.conftest import SERVER, VERSIONS, ame, write_project

PROJECT = """
    project: watched
    models:
      - name: iris
        deployment: {replicas: 1}
        monitoring:
          schedule: {cron: "30 6 * * 1-5", timezone: Europe/Berlin, catchUp: true}
        batchInference:
          input: data/in.csv
          output: out/scored.parquet
          schedule: "0 2 * * *"
      - name: churn
        monitoring:
          task:
            name: drift
            runcommand: python drift.py
            image: registry.example/drift:1
            resources: {cpu: 2, memory: 1Gi}
            secrets: [{key: team/slack, injectAs: SLACK_TOKEN}]
          schedule: "@hourly"
    tasks:
      - name: nightly
        runcommand: python nightly.py
        triggers: {schedule: "0 3 * * *"}
"""


def _render(root: Path, **options: Any) -> list[Rendered]:
    project = load_project(root)
    opts = RenderOptions(tracking_uri=SERVER, source=project_source(project, "archive"), **options)
    rendered = render_project(project, opts)
    validate_rendered(rendered, VERSIONS)  # every object, strict, 1.25 and 1.37
    return rendered


def _cron(rendered: list[Rendered], name: str) -> dict[str, Any]:
    (found,) = [r.obj for r in rendered if r.obj["kind"] == "CronJob" and
                r.obj["metadata"]["name"] == name]  # fmt: skip
    return found


def _container(cron: dict[str, Any]) -> dict[str, Any]:
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_monitoring_and_batch_schedules_are_cronjobs(tmp_path: Path) -> None:
    rendered = _render(write_project(tmp_path / "watched", PROJECT),
                       versions={"iris": ServedVersion("4")})  # fmt: skip
    monitor = _cron(rendered, "iris-monitor")
    spec = monitor["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "30 6 * * 1-5", "Europe/Berlin", "Forbid",
    )  # fmt: skip
    assert "startingDeadlineSeconds" not in spec  # catchUp: true
    container = _container(monitor)
    script = container["command"][-1]
    assert script.rstrip().endswith("exec ame monitor iris -f ame.yml")
    assert _env(container)["AME_SCHEDULE_JOB"] == "monitor:iris"
    assert _env(container)["MLFLOW_TRACKING_URI"] == SERVER
    # The built-in check runs in the model's serving image (ame + the model's requirements).
    assert container["image"] == "ame-watched-iris:4"
    assert monitor["metadata"]["labels"]["ame.dev/schedule"] == "monitor"
    assert monitor["metadata"]["labels"]["ame.dev/model"] == "iris"

    batch = _cron(rendered, "iris-batch")
    assert batch["spec"]["timeZone"] == "UTC"
    assert batch["spec"]["startingDeadlineSeconds"] == 300  # catchUp defaults to false
    assert batch["spec"]["concurrencyPolicy"] == "Forbid"
    assert _container(batch)["command"][-1].rstrip().endswith("exec ame batch iris -f ame.yml")
    assert _env(_container(batch))["AME_SCHEDULE_JOB"] == "batch:iris"

    # The task trigger's CronJob says which scheduled job it is, too.
    nightly = _cron(rendered, "nightly")
    assert _env(_container(nightly))["AME_SCHEDULE_JOB"] == "task:nightly"

    # Each CronJob is written with its model, after the serving objects.
    groups = [(r.group, r.obj["kind"]) for r in rendered if r.group == "model-iris"]
    assert groups[-2:] == [("model-iris", "CronJob"), ("model-iris", "CronJob")]
    # An object that failed its schema would be reported at the schedule's line.
    place = str(next(r.place for r in rendered if r.obj is monitor))
    assert place.endswith("ame.yml:6:7 models[0].monitoring.schedule"), place


def test_a_monitoring_task_runs_in_its_own_image_with_its_settings(tmp_path: Path) -> None:
    rendered = _render(write_project(tmp_path / "watched", PROJECT))
    # churn has no deployment: its schedule still makes a CronJob.
    cron = _cron(rendered, "churn-monitor")
    container = _container(cron)
    assert container["image"] == "registry.example/drift:1"
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "1Gi"}
    env = _env(container)
    assert env["AME_SCHEDULE_JOB"] == "monitor:churn" and env["AME_TASK"] == "drift"
    assert env["SLACK_TOKEN"] == {"secretKeyRef": {"name": "ame-watched", "key": "team.slack"}}
    assert cron["spec"]["schedule"] == "@hourly"
    assert not [r for r in rendered if r.obj["kind"] == "Deployment" and
                r.obj["metadata"]["name"] == "churn"]  # fmt: skip


def test_deploy_applies_no_cronjob(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "watched", PROJECT))
    options = RenderOptions(tracking_uri=SERVER, source=project_source(project, "archive"),
                            versions={"iris": ServedVersion("4")})  # fmt: skip
    plan = plan_deploy(project, "iris", options, Target(None, "ml"))
    assert [o["kind"] for o in plan.manifests()] == ["Deployment", "Service"]


def test_render_cli_writes_the_cronjobs(tmp_path: Path) -> None:
    root = write_project(tmp_path / "watched", PROJECT)
    done = ame("render", "kubernetes", "-f", str(root), "--tracking-uri", SERVER, "--offline",
               "--model", "churn")  # fmt: skip
    assert done.returncode == 0, done.stderr
    (cron,) = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert (cron["kind"], cron["metadata"]["name"]) == ("CronJob", "churn-monitor")


def test_double_run_warning_names_the_jobs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = load_project(write_project(tmp_path / "watched", PROJECT))
    assert [j.name for j in cluster_schedules(project)] == [
        "task:nightly", "monitor:iris", "batch:iris", "monitor:churn",
    ]  # fmt: skip
    assert double_run_warning(project, "local") is None
    line = double_run_warning(project, "kubernetes")
    assert line is not None and "\n" not in line
    assert "task:nightly, monitor:iris, batch:iris, monitor:churn" in line
    assert "CronJobs" in line and "twice" in line
    quiet = load_project(write_project(tmp_path / "quiet", "project: q\ntasks: []\n"))
    assert double_run_warning(quiet, "kubernetes") is None


def test_scheduler_run_warns_once_on_the_kubernetes_backend(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "yearly",
        'project: yearly\ntasks:\n  - name: t\n    runcommand: "true"\n'
        '    triggers: {schedule: "0 3 1 1 *"}\n',
    )
    env = {**os.environ, "AME_TRACKING_AGENT": "0", "AME_BACKEND": "kubernetes"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ame.cli.main", "scheduler", "run", "-f", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("scheduler for yearly"):
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = "".join(lines)
    assert "scheduler for yearly" in text, text
    warnings = [line for line in lines if "CronJobs" in line]
    assert len(warnings) == 1 and "task:t" in warnings[0] and "twice" in warnings[0]
