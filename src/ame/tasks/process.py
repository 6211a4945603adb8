"""Running a task's command as a supervised process tree.

The command runs under ``/bin/sh -c`` in its own session, so the task and
everything it starts share one process group that can be stopped as a whole.
Its stdout and stderr are merged and read line by line: each line has secrets
masked, is appended to the log file and handed to the caller as it arrives.

The supervisor loop watches for what ends a task early: Ctrl-C or SIGTERM sent
to ame, the task's ``timeout``, and its memory limit (resident memory of the
whole tree). Any of those stops the tree (SIGTERM, a grace period, SIGKILL)
and the result says why. When the task's main process exits, whatever it left
running in its group is stopped too, so a finished task leaves nothing behind.
When ame itself is killed outright, a small watchdog stops the group instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from ame._system import GRACE_SECONDS, format_bytes, kill_tree, killpg, tree_rss
from ame.tasks.resources import Limits

log = logging.getLogger(__name__)

_POLL = 0.1

# Exit codes for tasks ame stopped, following shell conventions.
EXIT_TIMEOUT = 124
EXIT_MEMORY = 137


@dataclass(frozen=True)
class ProcessResult:
    """How a supervised command ended."""

    exit_code: int
    status: str  # FINISHED, FAILED or KILLED
    reason: str | None
    duration: float


class StopSignals:
    """Ctrl-C / SIGTERM received while a task runs (handlers live only during the run).

    Shared by local runs and by backends that follow a remote job (Ray), so both
    stop the same way.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _pump(
    stream: IO[bytes],
    log_file: IO[str],
    redact: Callable[[str], str],
    on_output: Callable[[str], None] | None,
) -> None:
    for raw in iter(stream.readline, b""):
        line = redact(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        log_file.write(line + "\n")
        log_file.flush()
        if on_output is not None:
            try:
                on_output(line)
            except Exception:  # a broken display must not stop the log
                log.exception("output callback failed")


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait_for_exit(proc: subprocess.Popen[bytes], pidfd: int | None, timeout: float) -> None:
    """Wait up to ``timeout`` for ``proc`` to end, waking the moment it does.

    ``Popen.wait(timeout)`` polls with growing sleeps (up to 50 ms), which a quick
    task pays at its end; a pidfd wakes ``select`` as soon as the process exits.
    """
    if pidfd is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        return
    select.select([pidfd], [], [], timeout)


# Stops the task's process group when ame dies without stopping it (SIGKILL,
# the OOM killer). It reads the group id, then waits on a pipe only ame holds:
# "done" means ame ended the task itself; end-of-file without it means ame is
# gone. /bin/sh, not Python: it costs a millisecond, not an interpreter start.
_WATCHDOG = """
read -r pg || exit 0
case "$pg" in ''|*[!0-9]*) exit 0;; esac
read -r line
[ "$line" = done ] && exit 0
kill -TERM -"$pg" 2>/dev/null || exit 0
i=0
while [ "$i" -lt "$1" ] && kill -0 -"$pg" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -KILL -"$pg" 2>/dev/null
exit 0
"""


class _Watchdog:
    """A detached ``sh`` that stops the task's group if ame dies first (see ``_WATCHDOG``).

    A parent-death signal (``PR_SET_PDEATHSIG``) would reach only the task's
    first process, and only while the thread that started it lives; the task
    runs in its own session, so its children would survive ame. The watchdog
    signals the whole group instead, and it is started before the task, so
    there is no moment when a task runs unwatched but for the write of its pid.
    """

    def __init__(self, grace: float) -> None:
        read_end, self._pipe = os.pipe()  # both ends non-inheritable by the task
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "ame-watchdog", str(max(1, int(grace * 10)))],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to ame's terminal must not end it first
            )
        except OSError as exc:  # no /bin/sh: run unwatched rather than not at all
            log.warning("cannot start the task watchdog: %s", exc)
            self._proc = None
        finally:
            os.close(read_end)

    def watch(self, pgid: int) -> None:
        self._send(f"{pgid}\n")

    def _send(self, text: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self._pipe, text.encode("ascii"))

    def release(self) -> None:
        """The task is over and ame stopped what it left: the watchdog exits quietly."""
        self._send("done\n")
        with contextlib.suppress(OSError):
            os.close(self._pipe)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=GRACE_SECONDS)


def run_process(
    command: str,
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    on_output: Callable[[str], None] | None = None,
    redact: Callable[[str], str] = lambda s: s,
    timeout: float | None = None,
    limits: Limits | None = None,
) -> ProcessResult:
    """Run ``command`` to completion (or until stopped) and say how it ended."""
    limits = limits or Limits()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("a", encoding="utf-8") as log_file, StopSignals() as stop:
        watchdog = _Watchdog(GRACE_SECONDS)
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=limits.preexec(),
            )
        except BaseException:
            watchdog.release()
            raise
        watchdog.watch(proc.pid)
        assert proc.stdout is not None
        pidfd = _open_pidfd(proc.pid)
        try:
            reader = threading.Thread(
                target=_pump, args=(proc.stdout, log_file, redact, on_output), daemon=True
            )
            reader.start()
            reason: str | None = None
            code: int | None = None
            next_memory_check = 0.0
            while proc.poll() is None:
                now = time.monotonic()
                if stop.signum is not None:
                    name = signal.Signals(stop.signum).name
                    reason = f"killed: interrupted by {name}"
                    code = 128 + stop.signum
                elif timeout is not None and now - started > timeout:
                    reason = f"killed: timeout of {timeout:g}s exceeded"
                    code = EXIT_TIMEOUT
                elif limits.memory and now >= next_memory_check:
                    next_memory_check = now + _POLL
                    used = tree_rss(proc.pid)
                    if used > limits.memory:
                        reason = (
                            f"killed: memory limit {format_bytes(limits.memory)} exceeded "
                            f"(using {format_bytes(used)})"
                        )
                        code = EXIT_MEMORY
                if reason is not None:
                    log.info("stopping task process %d: %s", proc.pid, reason)
                    kill_tree(proc)
                    break
                _wait_for_exit(proc, pidfd, _POLL)
            if reason is None:
                # The main process is done: stop whatever it left running in its
                # group, which would otherwise also hold the output pipe open.
                killpg(proc.pid, signal.SIGTERM)
                reader.join(timeout=GRACE_SECONDS)
                killpg(proc.pid, signal.SIGKILL)
            reader.join()
            proc.stdout.close()
            returncode = proc.wait()
        finally:
            if pidfd is not None:
                os.close(pidfd)
            if proc.poll() is None:  # left by an exception: never leave the task running
                kill_tree(proc)
            watchdog.release()
        if reason is not None:
            log_file.write(f"[ame] {reason}\n")
            status = "KILLED"
            exit_code = code if code is not None else 1
        else:
            exit_code = returncode if returncode >= 0 else 128 - returncode
            status = "FINISHED" if exit_code == 0 else "FAILED"
    return ProcessResult(exit_code, status, reason, time.monotonic() - started)
