"""Who owns a piece of state: a process named by host, pid and start time.

ame leaves marks that outlive a command killed outright (SIGKILL, OOM, a
closed laptop): a decrypted package directory, an MLflow run still RUNNING, a
version still ``pending`` validation. Each mark records its owner as
``HOST:PID:START`` so that a later command can tell a live owner from a dead
one and clean up after the dead. The start time (clock ticks since boot, from
``/proc``) guards against a recycled pid: a new process with the old pid has a
different start. No ame imports: any layer may use it.
"""

from __future__ import annotations

import os
import socket
from typing import Optional


def process_start(pid: int) -> Optional[int]:
    """When ``pid`` started (clock ticks since boot) on Linux; None elsewhere or if gone."""
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
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return False
    return raw[raw.rfind(b")") + 2 :][:1] in (b"Z", b"X")


def pid_alive(pid: int, start: Optional[int] = None) -> bool:
    """Whether ``pid`` runs (and, given ``start``, is the same process that started then)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive, and certainly not ours to judge
    if _zombie(pid):
        return False
    if start is not None:
        now = process_start(pid)
        if now is not None and now != start:
            return False
    return True


def hostname() -> str:
    """This machine's name as owners record it."""
    return socket.gethostname()


def owner_token(pid: Optional[int] = None) -> str:
    """``HOST:PID:START`` for ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    start = process_start(pid)
    return f"{hostname()}:{pid}:{start if start is not None else ''}"


def owner_gone(token: str) -> Optional[bool]:
    """True when the owner ``token`` names is dead; None when it cannot be told from here.

    Only this host's processes can be checked: an owner on another machine
    (a shared remote store) is never declared dead.
    """
    parts = token.rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid_text, start_text = parts
    if host != hostname():
        return None
    try:
        pid = int(pid_text)
        start = int(start_text) if start_text else None
    except ValueError:
        return None
    return not pid_alive(pid, start)
