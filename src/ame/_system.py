"""The machine ame runs on: process trees, resident memory, kill and alive checks, byte sizes.

Several layers need the same few facts about processes. The task runner stops
a task's whole tree and watches its memory; the inference server watches its
workers' memory; deployments, the scheduler and package scratch directories ask
whether a recorded pid still runs; every layer prints byte counts. Each of them
had its own copy. They live here, at the bottom of the layer table
(docs/architecture.md), so that any layer imports them from below and none
reaches into another's internals (``serving`` into ``tasks``, say).

No ame imports, and nothing heavy at import time: ``psutil`` is imported by the
functions that need it, since ``ame task run`` must not pay for it on every run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import psutil

GRACE_SECONDS = 5.0


# --- alive checks -----------------------------------------------------------


def process_start(pid: int) -> Optional[int]:
    """When ``pid`` started (clock ticks since boot) on Linux; None elsewhere or if gone.

    A recorded pid may be reused by a new process; its start time tells them apart.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of proc(5), the third being fields[0]
    except (IndexError, ValueError):
        return None


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and only waits to be reaped (read from ``/proc``).

    ``/proc`` is read rather than calling ``waitpid``: reaping a child here would
    steal its exit status from its parent (a scheduler or server in this process).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return False  # gone, or no /proc (macOS): signal 0 is all there is
    return raw[raw.rfind(b")") + 2 :][:1] in (b"Z", b"X")


def pid_alive(pid: int, start: Optional[int] = None) -> bool:
    """Whether ``pid`` runs (and, given ``start``, is the same process that started then).

    A zombie does not count as running, and a pid of 0 or less (a record written
    before its process was launched) never does. Someone else's process (signal 0
    refused) counts as alive: it is certainly not ours to declare dead.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _zombie(pid):
        return False
    if start is not None:
        now = process_start(pid)
        if now is not None and now != start:
            return False
    return True


# --- process trees ----------------------------------------------------------


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants (empty when ``pid`` is gone)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes.

    RSS rather than address space: a Python that imports numpy or starts threads
    reserves gigabytes it never touches, and RSS is what Kubernetes enforces.
    """
    import psutil

    total = 0
    for proc in process_tree(pid):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def killpg(pgid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pgid``; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_tree(proc: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """Stop ``proc``, its process group and every descendant: SIGTERM, wait, SIGKILL.

    Descendants are collected before signalling, because a child whose parent
    dies is re-parented and can no longer be found from the task's pid; the
    process group catches those that were started after the snapshot.
    """
    import psutil

    others = [p for p in process_tree(proc.pid) if p.pid != proc.pid]
    killpg(proc.pid, signal.SIGTERM)
    for other in others:
        with contextlib.suppress(psutil.Error):
            other.terminate()
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    _, alive = psutil.wait_procs(others, timeout=max(0.0, deadline - time.monotonic()))
    killpg(proc.pid, signal.SIGKILL)
    for other in alive:
        with contextlib.suppress(psutil.Error):
            other.kill()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    psutil.wait_procs(alive, timeout=grace)


# --- byte sizes -------------------------------------------------------------

_BINARY_UNITS = (("Ei", 1024**6), ("Pi", 1024**5), ("Ti", 1024**4), ("Gi", 1024**3))
_BINARY_SMALL = (("Mi", 1024**2), ("Ki", 1024))
_DECIMAL_UNITS = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6))


def format_bytes(amount: int) -> str:
    """Bytes back in the unit a person most likely wrote: ``10G``, ``512Mi``, ``1.5Gi``.

    ame.yml follows Kubernetes (``G`` = 1000**3, ``Gi`` = 1024**3); an exact
    multiple of a unit is printed in that unit, largest first.
    """
    for name, size in (*_BINARY_UNITS, *_DECIMAL_UNITS, *_BINARY_SMALL, ("k", 1000)):
        if amount >= size and amount % size == 0:
            return f"{amount // size}{name}"
    for name, size in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if amount >= size:
            return f"{amount / size:.1f}{name}"
    return f"{amount}B"


# --- short commands ---------------------------------------------------------


def command_output(
    args: Sequence[str],
    *,
    cwd: Optional[Path] = None,
    timeout: float = 20.0,
    env: Optional[Mapping[str, str]] = None,
) -> Optional[str]:
    """What a short command printed (stripped), or None if it failed, timed out or is missing.

    For the facts ame asks a tool for (a commit, an interpreter's version, a
    path): a failure there means "unknown", never an error of ame's.
    """
    try:
        out = subprocess.run(
            list(args),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# --- the work tree ----------------------------------------------------------


def git_commit(root: Path) -> Optional[str]:
    """The commit checked out in ``root``, if it is a git work tree.

    Task runs, training and autoTrain all record it; it is a fact about the
    directory, not about any one of them.
    """
    return command_output(["git", "rev-parse", "HEAD"], cwd=root, timeout=10) or None
