"""Golden files: the exact bytes ``ame render kubernetes`` writes for known projects.

Regenerate after an intended change with ``AME_UPDATE_GOLDEN=1 pytest tests/kubernetes``
and review the diff like code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT
from tests.kubernetes.conftest import SERVER, ame, write_project

GOLDEN = Path(__file__).parent / "golden"
XGBOOST = REPO_ROOT / "examples" / "xgboost_project"

# Seed 000's second example: the same model with a deployment section, plus the
# Ingress keys; rendered for KServe as well as plain.
SEED_DEPLOYMENT = """
    project: xgboost_project
    models:
      - name: product_recommendor
        training:
          task:
            taskRef: train_my_model
        deployment:
          resources:
            memory: 10G
            cpu: 4
            storage: 10G
            nvidia.com/gpu: 1
          autoDeploy: true
          replicas: 2
          host: recommend.example.com
          enableTls: true
          ingressAnnotations:
            cert-manager.io/cluster-issuer: letsencrypt
    tasks:
      - name: train_my_model
        executor:
          !poetry
          pythonVersion: 3.11
          command: python train.py
        resources:
          memory: 10G
          cpu: 4
          storage: 30G
          nvidia.com/gpu: 1
"""


def _check(out_dir: Path, name: str) -> None:
    """Compare every file in ``out_dir`` with ``golden/<name>/`` (or rewrite it on request)."""
    golden = GOLDEN / name
    if os.environ.get("AME_UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(out_dir, golden)
    produced = sorted(p.name for p in out_dir.iterdir())
    assert produced == sorted(p.name for p in golden.iterdir())
    for file in produced:
        assert (out_dir / file).read_text() == (golden / file).read_text(), file


def _render(project: Path, out: Path, *extra: str) -> str:
    done = ame(
        "render", "kubernetes", "-f", str(project), "--tracking-uri", SERVER,
        "--offline", "--source", "archive", "-o", str(out), *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_xgboost_project_as_written(tmp_path: Path) -> None:
    stderr = _render(XGBOOST, tmp_path / "out")
    _check(tmp_path / "out", "xgboost_project")
    assert "valid for Kubernetes 1.25, 1.37" in stderr
    job = yaml.safe_load((tmp_path / "out" / "task-train_my_model.yaml").read_text())
    # The template's env reached the pod: the merge happened before rendering.
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PYTHONHASHSEED"] == "0"


def test_render_is_deterministic(tmp_path: Path) -> None:
    _render(XGBOOST, tmp_path / "a")
    _render(XGBOOST, tmp_path / "b")
    for file in (tmp_path / "a").iterdir():
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes()


def test_seed_deployment_plain_and_kserve(tmp_path: Path) -> None:
    # The directory name is part of the source archive: keep it fixed.
    project = write_project(tmp_path / "xgboost_project", SEED_DEPLOYMENT)
    stderr = _render(project, tmp_path / "plain")
    assert "no version is promoted to @champion yet" in stderr
    _check(tmp_path / "plain", "seed_deployment_plain")
    stderr = _render(project, tmp_path / "kserve", "--format", "kserve", "--model",
                     "product_recommendor")  # fmt: skip
    _check(tmp_path / "kserve", "seed_deployment_kserve")
    (isvc,) = yaml.safe_load_all(
        (tmp_path / "kserve" / "model-product_recommendor.yaml").read_text()
    )
    assert isvc["kind"] == "InferenceService"
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"} and model["protocolVersion"] == "v2"
    assert "KServe exposes the InferenceService through its own ingress" in stderr
