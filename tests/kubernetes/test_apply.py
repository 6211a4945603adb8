"""Everything ``--backend kubernetes`` does before the call into the official client."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ame.backends.kubernetes.apply import (
    Target,
    new_run_id,
    plan_deploy,
    plan_task,
    target_for,
)
from ame.backends.kubernetes.cluster import FIELD_MANAGER
from ame.backends.kubernetes.errors import NoVersionError
from ame.backends.kubernetes.options import RenderOptions, ServedVersion
from ame.backends.kubernetes.source import project_source
from ame.spec import load_project
from ame.tasks.secrets import SecretStore
from tests.kubernetes.conftest import SERVER, write_project

PROJECT = """
    project: applied
    models:
      - name: iris
        deployment: {replicas: 2}
    tasks:
      - name: train
        runcommand: python train.py
        secrets:
          - {key: team/api, injectAs: API_KEY}
        triggers: {schedule: "@daily"}
"""


def _options(project, **extra):  # type: ignore[no-untyped-def]
    return RenderOptions(tracking_uri=SERVER, source=project_source(project, "archive"), **extra)


def test_a_task_run_is_one_job_with_the_projects_secret(
    tmp_path: Path, _secret_store: Path
) -> None:
    SecretStore(_secret_store).set("team/api", "value-1")
    project = load_project(write_project(tmp_path / "applied", PROJECT))
    run_id = new_run_id()
    plan = plan_task(project, project.task("train"), _options(project, run_id=run_id),
                     Target(None, "ml"))  # fmt: skip
    secret, job = plan.manifests(redact=False)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "ame-applied"
    assert base64.b64decode(secret["data"]["team.api"]).decode() == "value-1"
    assert plan.manifests()[0]["data"] == {"team.api": "***"}
    # A scheduled task still runs now, as a Job named for this run.
    assert job["kind"] == "Job" and plan.job == job["metadata"]["name"]
    assert job["metadata"]["name"] == f"train-{run_id}"
    assert plan.source_archive and plan.source_uri and plan.source_uri.endswith(".tar.gz")
    assert FIELD_MANAGER == "ame"


def test_deploy_is_refused_until_a_version_is_promoted(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "applied", PROJECT))
    with pytest.raises(NoVersionError, match="ame train iris"):
        plan_deploy(project, "iris", _options(project), Target(None, "ml"))
    plan = plan_deploy(
        project,
        "iris",
        _options(project, versions={"iris": ServedVersion("4")}),
        Target(None, "ml"),
    )
    assert plan.deployment == "iris" and plan.secret is None
    assert [r.obj["kind"] for r in plan.objects] == ["Deployment", "Service", "PodDisruptionBudget"]


def test_context_and_namespace_come_from_args_then_ame_yml_then_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts:
  - {name: dev, context: {cluster: c, user: u, namespace: team-dev}}
  - {name: prod, context: {cluster: c, user: u}}
current-context: dev
"""
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    bare = load_project(write_project(tmp_path / "bare", "project: bare\n"))
    assert target_for(bare) == Target(None, "team-dev")
    assert target_for(bare, context="prod") == Target("prod", "default")
    assert target_for(bare, namespace="x") == Target(None, "x")
    configured = load_project(
        write_project(
            tmp_path / "conf",
            "project: conf\nbackend:\n  kind: kubernetes\n"
            "  kubernetes: {context: prod, namespace: ml}\n",
        )
    )
    assert target_for(configured) == Target("prod", "ml")
