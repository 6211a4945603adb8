"""The tracking agent behind ``ame task run``: reused while warm, replaced when gone, optional.

Every case drives the real console script against a real embedded store and
checks what the store recorded; the agent is a real process on a real socket.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ame.errors import StoreError
from ame.registry.store import Store, embedded_store
from ame.tasks.agent import AgentTracker, AgentUnavailable, agent_key, runtime_dir

# The agent outlives the command that started it: process trees are the point here.
from tests.tasks.helpers import ame_process as ame


@pytest.fixture
def project(tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "agentproj"
    root.mkdir()
    (root / "ame.yml").write_text(
        f"""\
project: {unique_name}
tasks:
  - name: hello
    executor: !custom
      command: echo "hello from $AME_TASK"
  - name: kill-agent
    executor: !custom
      command: kill -9 $AGENT_PID; sleep 0.2; echo "agent gone"
"""
    )
    # The agent is chosen per working directory: talk to the one the CLI uses.
    monkeypatch.chdir(root)
    yield root
    _stop_agent(embedded_store(root))


def _stop_agent(store: Store) -> None:
    with_socket = runtime_dir() / f"{agent_key(store)}.sock"
    with_socket.unlink(missing_ok=True)  # the agent leaves when its socket goes


def _runs(store: Store, experiment: str) -> list[dict[str, object]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.tracking_uri)
    found = client.search_runs(
        [client.get_experiment_by_name(experiment).experiment_id],
        order_by=["attributes.start_time ASC"],
    )
    return [
        {
            "status": r.info.status,
            "task": r.data.params.get("task"),
            "log": [a.path for a in client.list_artifacts(r.info.run_id)],
        }
        for r in found
    ]


def _pid(store: Store) -> int:
    tracker = AgentTracker(store)
    try:
        answer = tracker.ping()
    finally:
        tracker.close()  # an open connection would keep the agent from idling out
    assert "direct" not in answer, answer
    return int(answer["pid"])


def test_runs_share_one_warm_agent_and_a_killed_one_is_replaced(
    project: Path, unique_name: str
) -> None:
    store = embedded_store(project)
    first = ame("task", "run", "hello", cwd=project)
    assert first.returncode == 0, first.stderr
    agent = _pid(store)
    assert psutil.Process(agent).cmdline()[1:3] == ["-m", "ame.tasks.agent"]
    second = ame("task", "run", "hello", cwd=project)
    assert second.returncode == 0, second.stderr
    assert _pid(store) == agent  # reused, not restarted
    os.kill(agent, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(agent) and time.monotonic() < deadline:
        time.sleep(0.05)  # the agent is not our child: wait for init to reap it
    third = ame("task", "run", "hello", cwd=project)
    assert third.returncode == 0, third.stderr
    assert _pid(store) != agent
    runs = _runs(store, unique_name)
    assert [r["status"] for r in runs] == ["FINISHED"] * 3
    assert all(r["task"] == "hello" and r["log"] == ["task.log"] for r in runs)


def test_agent_dying_mid_run_loses_nothing(project: Path, unique_name: str) -> None:
    store = embedded_store(project)
    assert ame("task", "run", "hello", cwd=project).returncode == 0
    agent = _pid(store)
    # The task kills the agent; the CLI must finish recording the run itself.
    done = ame("task", "run", "kill-agent", "-e", f"AGENT_PID={agent}", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "agent gone" in done.stdout
    assert not psutil.pid_exists(agent) or psutil.Process(agent).status() == "zombie"
    runs = _runs(store, unique_name)
    assert runs[-1] == {"status": "FINISHED", "task": "kill-agent", "log": ["task.log"]}


def test_idle_agent_leaves_and_removes_its_socket(project: Path) -> None:
    store = embedded_store(project)
    done = ame("task", "run", "hello", cwd=project, AME_AGENT_IDLE_SECONDS="1")
    assert done.returncode == 0, done.stderr
    sock = runtime_dir() / f"{agent_key(store)}.sock"
    deadline = time.monotonic() + 30
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sock.exists()


def test_agent_can_be_turned_off(project: Path, unique_name: str) -> None:
    store = embedded_store(project)
    done = ame("task", "run", "hello", cwd=project, AME_TRACKING_AGENT="0")
    assert done.returncode == 0, done.stderr
    assert not (runtime_dir() / f"{agent_key(store)}.sock").exists()
    assert _runs(store, unique_name)[0]["status"] == "FINISHED"


def test_a_refused_call_is_an_error_and_the_agent_lives_on(project: Path) -> None:
    store = embedded_store(project)
    tracker = AgentTracker(store)
    with pytest.raises(StoreError, match="the store refused set_tag"):
        tracker.set_tag("0" * 32, "k", "v")
    try:
        assert tracker.via_agent and _pid(store) == tracker.ping()["pid"]
    finally:
        tracker.close()


def test_socket_directory_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "runtime"
    (shared / "ame").mkdir(parents=True)
    (shared / "ame").chmod(0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    with pytest.raises(AgentUnavailable, match="not a private directory"):
        runtime_dir()


def test_agent_leaves_when_its_store_is_deleted(project: Path) -> None:
    store = embedded_store(project)
    assert ame("task", "run", "hello", cwd=project).returncode == 0
    agent = _pid(store)
    shutil.rmtree(project / ".ame")
    deadline = time.monotonic() + 20
    while psutil.pid_exists(agent) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(agent)
    assert not (runtime_dir() / f"{agent_key(store)}.sock").exists()
