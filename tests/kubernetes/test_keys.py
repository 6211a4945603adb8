"""No silent keys: cluster-only keys warn, once, with file:line:col, on the local backend."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ame.backends.kubernetes import keys
from ame.spec import load_project
from tests.kubernetes.conftest import ame, write_project

PROJECT = """
    project: quiet
    models:
      - name: iris
        deployment:
          enable_tls: true
          host: iris.example.com
          path: /iris
          ingressAnnotations: {a: b}
          image: ghcr.io/me/iris:1
    templates:
      - name: big
        resources: {storage: 5G}
    tasks:
      - name: train
        image: python:3.11
        runcommand: python train.py
      - name: prep
        fromTemplate: big
        runcommand: python prep.py
      - name: plain
        runcommand: python plain.py
"""


def test_every_cluster_only_key_is_found_where_written(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "q", PROJECT))
    lines = [str(k) for k in keys.cluster_only_keys(project)]
    where = [line.split(": ", 1)[0].split(" ", 1) for line in lines]
    assert [(pos.split(":", 1)[1], path) for pos, path in where] == [
        ("5:7", "models[0].deployment.enable_tls"),
        ("6:7", "models[0].deployment.host"),
        ("7:7", "models[0].deployment.path"),
        ("8:7", "models[0].deployment.ingressAnnotations"),
        ("9:7", "models[0].deployment.image"),
        ("12:17", "templates[0].resources.storage"),
        ("15:5", "tasks[0].image"),
    ]
    assert "the local backend serves plain HTTP" in lines[0]
    assert all("takes effect on the kubernetes backend (ame render kubernetes)" in x for x in lines)
    assert keys.cluster_only_keys(project, models=[], tasks=["plain"]) == []


def test_validate_warns_on_local_and_not_on_kubernetes(tmp_path: Path) -> None:
    root = write_project(tmp_path / "q", PROJECT)
    done = ame("validate", "-f", str(root / "ame.yml"))
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "takes effect on the kubernetes" in line]
    assert len(warned) == 7
    assert warned[0].endswith(
        "ame.yml:5:7 models[0].deployment.enable_tls: takes effect on the kubernetes backend "
        "(ame render kubernetes); the local backend serves plain HTTP"
    )
    assert done.stdout.startswith("ok: ")
    done = ame("validate", "-f", str(root / "ame.yml"), env={"AME_BACKEND": "kubernetes"})
    assert done.returncode == 0 and "takes effect" not in done.stderr


def test_task_run_warns_only_about_its_own_task(tmp_path: Path) -> None:
    # A secret missing from the store stops the run right after the warning: the
    # warning comes before anything is built or run, and the test stays quick.
    root = write_project(
        tmp_path / "q",
        PROJECT.replace(
            "runcommand: python train.py",
            "runcommand: python train.py\n        secrets: [{key: nope, injectAs: NOPE}]",
        ),
    )
    done = ame("task", "run", "train", "-f", str(root / "ame.yml"))
    assert done.returncode == 2
    warned = [line for line in done.stderr.splitlines() if "takes effect" in line]
    assert len(warned) == 1 and "tasks[0].image" in warned[0]
    assert "secret 'nope' not found" in done.stderr


def test_a_warning_is_logged_once_per_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = load_project(write_project(tmp_path / "once", PROJECT))
    with caplog.at_level(logging.WARNING, logger="ame"):
        keys.warn_local(project, tasks=["train"], models=[])
        keys.warn_local(project, tasks=["train"], models=[])
    assert caplog.text.count("tasks[0].image") == 1
