"""A real Ray cluster for the tests: started once, shared by xdist workers, then left clean.

``ray start`` costs 15-30 s and 1-2 GB, so one head node serves the whole test
run. Workers share it through a file lock beside the run's temporary
directory and a count of users: the first one in starts it, the last one out
stops it. It is started in a session of its own (``start_new_session``), and
every Ray process it forks stays in that session, so stopping it means
signalling exactly those processes by id: never ``ray stop``, which stops
every Ray process on the machine, another person's cluster included.

Every Ray port binds to 127.0.0.1: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in
the environment of ``ray start`` and of every client keeps Ray from replacing
127.0.0.1 with the machine's public address.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import free_port

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
BIN = Path(sys.executable).parent
START_TIMEOUT = 180.0


def ray_env() -> dict[str, str]:
    """The environment for ``ray start``: loopback only, and this venv's python first on PATH.

    A job's entrypoint runs ``python`` from the node's PATH, the cluster's
    interpreter, which must have ame installed: here, the test venv.
    """
    env = {**os.environ, **LOOPBACK_ENV}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        env.pop(var, None)
    return env


@dataclass
class Cluster:
    """A running head node: its dashboard URL, GCS address and the session to stop."""

    dashboard: str
    gcs: str
    temp_dir: str
    sid: int

    def as_dict(self) -> dict[str, object]:
        return {
            "dashboard": self.dashboard,
            "gcs": self.gcs,
            "temp_dir": self.temp_dir,
            "sid": self.sid,
        }


def _wait_nodes(dashboard: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            resp = httpx.get(f"{dashboard}/api/v0/nodes?detail=1", timeout=5.0)
            rows = resp.json()["data"]["result"]["result"]
            if sum(1 for r in rows if r["state"] == "ALIVE") == count:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the Ray cluster at {dashboard} did not have {count} alive node(s)")


def start_head(temp_dir: Path, log: Path, cpus: int = 2) -> Cluster:
    """``ray start --head`` with ``cpus`` CPUs and 4 GB on 127.0.0.1, in a session of its own."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    port, dash = free_port(), free_port()
    cmd = [
        str(BIN / "ray"), "start", "--head",
        f"--num-cpus={cpus}", "--memory=4000000000", "--object-store-memory=200000000",
        "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
        f"--port={port}", f"--dashboard-port={dash}",
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        "--disable-usage-stats", f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=ray_env(), start_new_session=True
        )
        code = proc.wait(timeout=START_TIMEOUT)
    cluster = Cluster(f"http://127.0.0.1:{dash}", f"127.0.0.1:{port}", str(temp_dir), proc.pid)
    try:
        if code != 0:
            raise RuntimeError(f"ray start failed ({code}); see {log}")
        _wait_nodes(cluster.dashboard, 1, START_TIMEOUT)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def join_node(cluster: Cluster, ip: str, log: Path) -> int:
    """Join a worker node that says it is host ``ip`` (127.0.0.2: a second host here).

    Returns the session id of its processes, to stop it alone with ``stop_session``.
    """
    cmd = [
        sys.executable, str(Path(__file__).with_name("join_node.py")), f"--address={cluster.gcs}",
        f"--node-ip-address={ip}", "--num-cpus=1", "--memory=500000000",
        "--object-store-memory=100000000", "--disable-usage-stats",
        f"--metrics-export-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=ray_env(), start_new_session=True
        )
        code = proc.wait(timeout=START_TIMEOUT)
    if code != 0:
        stop_session(proc.pid)
        raise RuntimeError(f"ray start --address failed ({code}); see {log}")
    _wait_nodes(cluster.dashboard, 2, START_TIMEOUT)
    return proc.pid


def wait_nodes(cluster: Cluster, count: int, timeout: float = 120.0) -> None:
    """Wait until the cluster has exactly ``count`` alive nodes."""
    _wait_nodes(cluster.dashboard, count, timeout)


def session_pids(sid: int) -> list[int]:
    """Every process of session ``sid`` (the Ray processes one ``ray start`` forked)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getsid(proc.pid) == sid:
                found.append(proc.pid)
    return found


def stop_session(sid: int, grace: float = 5.0) -> None:
    """SIGTERM every process of the session, then SIGKILL what is left after ``grace``."""
    import psutil

    procs = []
    for pid in session_pids(sid):
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)


def stop(cluster: Cluster) -> None:
    """Stop the head's whole session and remove its files; afterwards nothing of it is left."""
    stop_session(cluster.sid)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)


class Shared:
    """The cluster shared by the workers of one test run: lock, user count, state file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.state = folder / "cluster.json"
        self.lock_path = folder / "cluster.lock"

    def acquire(self) -> Cluster:
        from filelock import FileLock

        with FileLock(str(self.lock_path), timeout=600):
            data = json.loads(self.state.read_text()) if self.state.exists() else {"users": 0}
            if data["users"] > 0:
                cluster = Cluster(**data["cluster"])
            else:
                cluster = start_head(self.folder / "ray", self.folder / "ray-start.log")
            data = {"users": data["users"] + 1, "cluster": cluster.as_dict()}
            self.state.write_text(json.dumps(data))
            return cluster

    def release(self) -> bool:
        """One user less; the last one stops the cluster (and gets True)."""
        from filelock import FileLock

        with FileLock(str(self.lock_path), timeout=600):
            data = json.loads(self.state.read_text())
            data["users"] -= 1
            if data["users"] <= 0:
                stop(Cluster(**data["cluster"]))
                self.state.unlink()
                return True
            self.state.write_text(json.dumps(data))
            return False
