"""Fixtures for the lifecycle's end-to-end tests: small projects run through the real CLI."""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import AmeResult, run_ame

REPO = Path(__file__).resolve().parents[2]

TRAIN_PY = """
import os
import mlflow, mlflow.sklearn, numpy as np
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

X = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0], [3.0]])
y = np.array([0, 0, 0, 1, 1, 1])
flip = os.path.exists("flip")  # a different model: predicts the opposite class
model = LogisticRegression().fit(X, 1 - y if flip else y)
mlflow.log_metric("score", model.score(X, y))
mode = open("mode").read().strip() if os.path.exists("mode") else "register"
if mode == "register":
    mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name=os.environ["AME_MODEL_NAME"],
        signature=infer_signature(X, model.predict(X)),
        pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
    )
elif mode == "log-only":
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X, model.predict(X)),
        pip_requirements=["scikit-learn"],
    )
print("trained", mode)
"""

VALIDATE_PY = """
import os, sys
print("validating", os.environ["AME_MODEL_URI"], "version", os.environ["AME_MODEL_VERSION"])
assert os.environ["MLFLOW_TRACKING_URI"]
if os.path.exists("fail-validation"):
    print("score below threshold")
    sys.exit(1)
"""


def ame(cwd: Path, *args: str, timeout: float = 300, check: bool = False) -> AmeResult:
    """Run ``ame`` in this process, in ``cwd`` (``tests.helpers.run_ame``).

    ``timeout`` is kept for callers; pytest's own timeout bounds an in-process command.
    """
    del timeout
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "NO_COLOR": "1", "COLUMNS": "200"}
    proc = run_ame(*args, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"ame {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def write_project(
    root: Path, model: str, *, validation: bool = True, auto_deploy: bool = False
) -> Path:
    """A project whose tasks run in ame's own environment (fast: no environment to build)."""
    root.mkdir(parents=True, exist_ok=True)
    validation_block = (
        "    validation:\n      task:\n        taskRef: validate\n" if validation else ""
    )
    (root / "ame.yml").write_text(
        textwrap.dedent(
            f"""\
            project: lifecycle_test
            models:
              - name: {model}
                training:
                  task:
                    taskRef: train
            """
        )
        + validation_block
        + textwrap.indent(
            textwrap.dedent(
                f"""\
                deployment:
                  autoDeploy: {"true" if auto_deploy else "false"}
                  batching: {{maxBatchSize: 8, maxLatencyMs: 2}}
                """
            ),
            "    ",
        )
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
    return root


@pytest.fixture
def project_factory(tmp_path: Path) -> Iterator:
    """Make projects; stop every deployment they started when the test ends."""
    made: list[tuple[Path, str]] = []

    def make(model: str, **kwargs: bool) -> Path:
        root = write_project(tmp_path / model, model, **kwargs)
        made.append((root, model))
        return root

    yield make
    for root, model in made:
        ame(root, "deployment", "stop", model, timeout=60)


def copy_example(names: list[str], dest: Path) -> None:
    """Copy example projects (and the template projects they refer to) side by side."""
    for name in names:
        shutil.copytree(
            REPO / "examples" / name, dest / name, ignore=shutil.ignore_patterns(".ame")
        )
