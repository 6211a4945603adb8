"""Who owns a piece of state: a process named by host, pid and start time.

ame leaves marks that outlive a command killed outright (SIGKILL, OOM, a
closed laptop): a decrypted package directory, an MLflow run still RUNNING, a
version still ``pending`` validation. Each mark records its owner as
``HOST:PID:START`` so that a later command can tell a live owner from a dead
one and clean up after the dead. The start time (clock ticks since boot, from
``/proc``) guards against a recycled pid: a new process with the old pid has a
different start. The process facts themselves live in ``ame._system``; any layer
may use this module.
"""

from __future__ import annotations

import os
import socket
from typing import Optional

from ame._system import pid_alive, process_start


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
