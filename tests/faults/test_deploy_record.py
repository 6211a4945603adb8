"""Issue 13, item 2: ``ame deploy`` killed after starting its server leaves no orphan.

The server runs detached on purpose, so the record is written before it is
ready (state ``starting``, with the server's pid): ``deployment list`` shows it
and ``deployment stop`` stops it, whatever happened to the CLI. A record whose
server died is listed as dead and ``stop`` cleans it up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ame._system import pid_alive as alive
from tests.faults.conftest import ame, sigkill, start, wait_until


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deploy")
    (root / "ame.yml").write_text("project: faults_deploy\n")
    (root / "weights.txt").write_text("0.5\n")
    made = ame(root, "model", "register", "orphan", "--files", "weights.txt")
    assert made.returncode == 0, made.stderr
    return root


def _record(project: Path) -> dict[str, Any]:
    path = project / ".ame" / "deployments" / "orphan.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _listed(project: Path) -> list[dict[str, Any]]:
    result = ame(project, "deployment", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_killed_deploy_leaves_a_record_that_list_and_stop_find(
    project: Path, tmp_path: Path, reap: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "deploy.log"
    proc = start(project, "deploy", "orphan", log=log)
    reap.append(proc)
    record = wait_until(lambda: _record(project).get("pid"), 120, "the record's pid", log)
    assert _record(project)["state"] == "starting"
    sigkill(proc)  # the CLI only: the server is in a session of its own
    server = int(record)
    assert alive(server)

    [listed] = _listed(project)
    assert listed["pid"] == server and listed["alive"] is True

    stopped = ame(project, "deployment", "stop", "orphan", "--timeout", "10")
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not alive(server), 30, f"server {server} to stop")
    assert _listed(project) == []


def test_record_of_a_dead_server_is_listed_dead_and_stop_cleans_it(
    project: Path, reap: list[subprocess.Popen[bytes]]
) -> None:
    deployed = ame(project, "deploy", "orphan", "--json", timeout=300)
    assert deployed.returncode == 0, deployed.stderr
    info = json.loads(deployed.stdout)
    assert info["state"] == "running" and alive(info["pid"])
    os.killpg(info["pid"], signal.SIGKILL)
    wait_until(lambda: not alive(info["pid"]), 30, "the server to die")

    [listed] = _listed(project)
    assert listed["alive"] is False and listed["healthy"] is False
    stopped = ame(project, "deployment", "stop", "orphan")
    assert stopped.returncode == 0, stopped.stderr
    assert _record(project) == {} and _listed(project) == []
