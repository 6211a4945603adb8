"""One scheduler per project: a lock, a pid file, and the detached background process.

The lock is an ``flock`` on ``.ame/schedule/scheduler.lock`` held for the
scheduler's whole life, in the foreground (``ame scheduler run``) as in the
background (``ame scheduler start``). The kernel drops it when the process
ends, however it ends, so "is a scheduler running?" never trusts a stale pid
file: the pid file only says *which* process holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

from ame._system import pid_alive
from ame.errors import AmeError
from ame.schedule.state import schedule_dir

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Trying for the lock this long covers a concurrent status probe holding it briefly.
ACQUIRE_RETRY = 1.0


class SchedulerError(AmeError):
    """A scheduler could not be started or stopped as asked."""


class SchedulerRunningError(SchedulerError):
    """A scheduler already runs for this project: there is one per project."""


@dataclass(frozen=True)
class SchedulerInfo:
    """The running scheduler of a project: its pid, since when, and where it logs."""

    pid: int
    started: Optional[float]
    log: Optional[str]


def lock_path(root: Path) -> Path:
    """The file whose lock says a scheduler runs for the project at ``root``."""
    return schedule_dir(root) / "scheduler.lock"


def pid_path(root: Path) -> Path:
    """The file saying which process holds the lock."""
    return schedule_dir(root) / "scheduler.pid"


def log_path(root: Path) -> Path:
    """Where a background scheduler writes its log."""
    return schedule_dir(root) / "scheduler.log"


class Lock:
    """The project's scheduler lock, held by the scheduler while it runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._file: Optional[IO[str]] = None

    def acquire(self) -> None:
        """Take the lock and write the pid file; ``SchedulerRunningError`` if another holds it."""
        path = lock_path(self.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
        deadline = time.monotonic() + ACQUIRE_RETRY
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    other = running(self.root)
                    who = f" (pid {other.pid})" if other else ""
                    raise SchedulerRunningError(
                        f"a scheduler is already running for this project{who}; "
                        "`ame scheduler stop` ends it"
                    ) from None
                time.sleep(0.05)
        self._file = handle
        info = {"pid": os.getpid(), "started": time.time(), "log": str(log_path(self.root))}
        tmp = pid_path(self.root).with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, pid_path(self.root))

    def release(self) -> None:
        """Remove the pid file and drop the lock."""
        if self._file is None:
            return
        pid_path(self.root).unlink(missing_ok=True)
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def running(root: Path) -> Optional[SchedulerInfo]:
    """The scheduler running for the project at ``root``, or None.

    Import-light and read-only (no directory is created): ``ame validate`` calls it.
    """
    try:
        handle = lock_path(root).open("r")
    except OSError:
        return None
    with handle:
        try:
            # A shared lock does not conflict with another probe, only with the scheduler.
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    try:
        data = json.loads(pid_path(root).read_text())
        return SchedulerInfo(int(data["pid"]), data.get("started"), data.get("log"))
    except (OSError, ValueError, KeyError, TypeError):
        # Between taking the lock and writing its pid file: running, pid not yet known.
        return SchedulerInfo(0, None, None)


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def start(project_file: Path, root: Path, extra_args: list[str]) -> SchedulerInfo:
    """Start ``ame scheduler run`` detached (its own session, log under ``.ame/``); wait for it."""
    current = running(root)
    if current is not None:
        raise SchedulerRunningError(
            f"a scheduler is already running for this project (pid {current.pid}); "
            "`ame scheduler stop` ends it"
        )
    log = log_path(root)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ame.cli.main", "scheduler", "run", "-f", str(project_file)]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*argv, *extra_args], cwd=root, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def up() -> bool:
        info = running(root)
        return proc.poll() is not None or (info is not None and info.pid == proc.pid)

    _wait(up, START_TIMEOUT)
    if proc.poll() is not None:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        why = f": {tail[0]}" if tail else ""
        raise SchedulerError(f"the scheduler exited at start with code {proc.returncode}{why}")
    info = running(root)
    if info is None or info.pid != proc.pid:
        proc.kill()
        proc.wait()
        raise SchedulerError(f"the scheduler did not start within {START_TIMEOUT:g}s; see {log}")
    return info


def stop(root: Path, timeout: float = STOP_TIMEOUT) -> tuple[Optional[SchedulerInfo], int]:
    """Stop the project's scheduler and the runs it started: (the scheduler or None, runs ended).

    SIGTERM lets the scheduler end its fired commands (each records its run as
    killed); if it has not ended within ``timeout``, its process group is killed.
    Then any fired command still recorded as running (left by a scheduler that was
    SIGKILLed, so never shut down) is ended too: nothing of the scheduler is left.
    """
    info = running(root)
    if info is not None and info.pid <= 0:
        # Between taking the lock and writing its pid file: wait for the pid.
        _wait(lambda: (running(root) or SchedulerInfo(1, None, None)).pid > 0, 5)
        info = running(root)
        if info is not None and info.pid <= 0:
            raise SchedulerError("a scheduler holds the lock but wrote no pid file; try again")
    if info is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
        if not _wait(_ended(info.pid), timeout):
            _kill_group(info.pid)
            _wait(_ended(info.pid), 10)
    return info, _end_orphans(root)


def _end_orphans(root: Path) -> int:
    """End fired commands whose scheduler is gone; how many there were."""
    from ame.schedule.state import Store

    ended = 0
    for record in Store(root).running():
        pid = record.pid
        if pid is None or not pid_alive(pid):
            continue
        # A fired command leads its own process group (``start_new_session``). A pid
        # reused by an unrelated process is not a group leader: killpg cannot reach it.
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        if not _wait(_ended(pid), 20):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        ended += 1
    return ended


def _ended(pid: int) -> Callable[[], bool]:
    return lambda: not pid_alive(pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
