"""Private directories for decrypted package files, and removing those a dead process left.

``open_package`` decrypts into a directory of its own and removes it before it
returns; but a process killed outright (SIGKILL, the OOM killer) while loading
runs no cleanup, and its plaintext would stay in ``/dev/shm`` until reboot.
So each directory's name records its owner (``ame-pkg-PID-START-random``, see
``ame._owner``), and every package command, and every ``open_package``, first
removes the directories whose owner is dead. Only this user's directories
with ame's prefix are ever touched; a directory of a live process is left
alone, whoever it belongs to.

No heavy imports: ``ame package ...`` runs the sweep before anything else.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from ame._system import pid_alive, process_start

log = logging.getLogger(__name__)

TMPDIR_ENV = "AME_PACKAGE_TMPDIR"
PREFIX = "ame-pkg-"
_OWNED = re.compile(rf"^{re.escape(PREFIX)}(?P<pid>\d+)-(?P<start>\d*)-")


def temp_root() -> Optional[str]:
    """Parent of private load directories: ``$AME_PACKAGE_TMPDIR``, ``/dev/shm``, or the default."""
    chosen = os.environ.get(TMPDIR_ENV)
    if chosen:
        return chosen
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return None


def make_private_dir() -> Path:
    """A new directory (mode 0700) for one load, named after this process."""
    root = temp_root()
    if root is not None:
        Path(root).mkdir(mode=0o700, parents=True, exist_ok=True)
    start = process_start(os.getpid())
    prefix = f"{PREFIX}{os.getpid()}-{start if start is not None else ''}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def sweep_stale(root: Optional[str] = None) -> list[Path]:
    """Remove the load directories under ``root`` whose owner process is dead; return them.

    ``root`` defaults to where ``make_private_dir`` creates them. Never raises:
    a sweep that cannot read or remove something logs it and goes on.
    """
    parent = Path(root or temp_root() or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        match = _OWNED.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_dir(follow_symlinks=False) or (uid is not None and info.st_uid != uid):
            continue
        start = int(match["start"]) if match["start"] else None
        if pid_alive(int(match["pid"]), start):
            continue
        path = Path(entry.path)
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            log.warning("could not remove stale decrypted files in %s", path)
        else:
            log.info("removed decrypted files left by dead process %s: %s", match["pid"], path)
            removed.append(path)
    return removed
