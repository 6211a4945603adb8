"""Builders for the ray tests: projects on disk and the real ``ame`` CLI against the cluster."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.helpers import AME
from tests.ray.cluster import Cluster


def write_project(root: Path, text: str) -> Path:
    """An ame.yml (``text``) in ``root``; returns the directory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ame.yml").write_text(text)
    return root


# A model trained by ``train`` and gated by ``validate`` (tests.lifecycle's scripts).
TRAINED_PROJECT = """\
project: {name}
models:
  - name: {name}
    training:
      task: {{taskRef: train}}
    validation:
      task: {{taskRef: validate}}
{deployment}tasks:
  - name: train
    executor: !custom
      command: python train.py
{train_extra}  - name: validate
    executor: !custom
      command: python validate.py
"""


def write_trained_project(
    root: Path, name: str, *, deployment: str = "", train_extra: str = ""
) -> Path:
    """A project whose model ``name`` trains and validates with tests.lifecycle's scripts.

    ``deployment`` and ``train_extra`` are YAML lines added to the model and to
    the training task, indented as they go.
    """
    from tests.lifecycle.conftest import TRAIN_PY, VALIDATE_PY

    root = write_project(
        root, TRAINED_PROJECT.format(name=name, deployment=deployment, train_extra=train_extra)
    )
    (root / "train.py").write_text(TRAIN_PY)
    (root / "validate.py").write_text(VALIDATE_PY)
    return root


def cli_env(cluster: Cluster, **extra: str) -> dict[str, str]:
    """The environment of an ``ame`` pointed at the test cluster (through RAY_ADDRESS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    env["RAY_ADDRESS"] = cluster.dashboard
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def ame(
    *args: str, cwd: Path, env: dict[str, str], stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``ame`` console script to its end."""
    return subprocess.run(
        [AME, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


class Live:
    """``ame`` running in the background, its stdout read line by line as it comes."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [AME, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, text: str, timeout: float = 120.0) -> str:
        """Block until a stdout line containing ``text`` arrives (fails if ame ends first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"ame ended before printing {text!r}: {self.lines}")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout}s: {self.lines}")

    def finish(self, timeout: float = 120.0) -> tuple[int, str, str]:
        """Wait for ame to end: (exit code, all stdout, stderr)."""
        code = self.proc.wait(timeout=timeout)
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        assert self.proc.stderr is not None
        return code, "\n".join(self.lines), self.proc.stderr.read()


def job_client(cluster: Cluster) -> Any:
    """Ray's own job client on the test cluster (to look at what ame submitted)."""
    from ray.job_submission import JobSubmissionClient

    os.environ["RAY_API_SERVER_ADDRESS"] = cluster.dashboard
    try:
        return JobSubmissionClient(cluster.dashboard)
    finally:
        os.environ.pop("RAY_API_SERVER_ADDRESS", None)


def run_tags(tracking_uri: str, run_id: str) -> tuple[dict[str, str], dict[str, str], str]:
    """(tags, params, status) of an MLflow run."""
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    return dict(run.data.tags), dict(run.data.params), run.info.status


def run_id_from(stderr: str) -> str:
    """The run id in ame's summary line (``run <id> FINISHED in ...``)."""
    for word_line in stderr.splitlines():
        words = word_line.split()
        if "run" in words:
            index = words.index("run")
            if index + 1 < len(words) and len(words[index + 1]) == 32:
                return words[index + 1]
    raise AssertionError(f"no run id in: {stderr}")
