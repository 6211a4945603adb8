"""Helpers of the fault tests: the real ``ame`` console script, run to completion or killed.

Every test here reproduces one fault of issue 13 the way a tester would: a real
command, a real signal, a real file. ``start`` runs ``ame`` in its own session
so a test can SIGKILL exactly that process and watch what it leaves behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from tests import helpers

AME = str(Path(sys.executable).parent / "ame")


def env_for(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "NO_COLOR": "1", "COLUMNS": "200"}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "AME_DEBUG"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def ame(
    cwd: Path, *args: str, timeout: float = 120, env: Optional[dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """Run ``ame ARGS`` in ``cwd`` to completion."""
    return subprocess.run(
        [AME, *args],
        cwd=cwd,
        env=env_for(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start(
    cwd: Path, *args: str, log: Path, env: Optional[dict[str, str]] = None
) -> subprocess.Popen[bytes]:
    """Start ``ame ARGS`` in its own session, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [AME, *args],
            cwd=cwd,
            env=env_for(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, log: Optional[Path] = None
) -> Any:
    """``tests.helpers.wait_until``, failing with the tail of ``log`` (a CLI or server output)."""
    try:
        return helpers.wait_until(condition, timeout, what, interval=0.05)
    except TimeoutError as exc:
        tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
        raise AssertionError(f"{exc}\n{tail}") from None


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` alone (not its children) and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line a refused command prints (and nothing else on stderr)."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# A training task that registers a model itself, then waits for a file that
# never comes: the test kills ame while it waits (and while the model exists).
TRAIN_PY = """
import os, sys, time
from pathlib import Path
import mlflow
mode = Path("mode").read_text().strip()
mlflow.log_metric("score", 1.0)  # opens the run ame created (MLFLOW_RUN_ID)
if mode in ("register", "log-only"):
    class Constant(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [1] * len(model_input)
    mlflow.pyfunc.log_model(
        name="model",
        python_model=Constant(),
        registered_model_name=os.environ["AME_MODEL_NAME"] if mode == "register" else None,
        pip_requirements=[],
    )
Path("train.pid").write_text(str(os.getpid()))
while Path("block-training").exists():
    time.sleep(0.05)
print("trained")
"""

# A validation task that waits while ``block-validation`` exists.
VALIDATE_PY = """
import os, time
from pathlib import Path
Path("validate.pid").write_text(str(os.getpid()))
while Path("block-validation").exists():
    time.sleep(0.05)
print("validated", os.environ["AME_MODEL_VERSION"])
"""


def write_project(root: Path, model: str, *, validation: bool = True) -> Path:
    """A project whose tasks run in ame's own interpreter (no environment to build)."""
    root.mkdir(parents=True, exist_ok=True)
    validation_block = (
        "    validation:\n      task:\n        taskRef: validate\n" if validation else ""
    )
    (root / "ame.yml").write_text(
        textwrap.dedent(
            f"""\
            project: faults_test
            models:
              - name: {model}
                training:
                  task:
                    taskRef: train
            """
        )
        + validation_block
        + textwrap.dedent(
            f"""\
            tasks:
              - name: train
                executor: !custom
                  command: {sys.executable} train.py
              - name: validate
                executor: !custom
                  command: {sys.executable} validate.py
            """
        )
    )
    (root / "train.py").write_text(TRAIN_PY)
    (root / "validate.py").write_text(VALIDATE_PY)
    (root / "mode").write_text("register")
    return root


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; any still running at the end are killed with their session."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
