"""The scheduler's loop: decide which fires are due, run each as a real ``ame`` command.

Each ``tick`` looks at every job once, with the time from an injected clock
(tests advance it; the product uses the wall clock):

* a cron job whose next fire has come runs it, unless the job's previous run is
  still going (the fire is then *skipped*, and the skip recorded: no overlap);
* fires missed while no scheduler ran (the latest of them later than ``grace``)
  are *missed*: recorded once, with their count, and with ``catchUp`` one run
  makes up for all of them (never more than one);
* an autoTrain job polls its fingerprint (commit, training data) every ``poll``
  seconds and runs ``ame train M`` when it changed;
* a failed run is recorded with its exit code and retried only at the next fire.

A fire is claimed in the store (``state.Store.claim``) before it runs, so a
restarted scheduler never runs it again. The fired command is the CLI itself
(``python -m ame.cli.main task run T -f ame.yml``), in the project directory,
with ``AME_SCHEDULE_JOB``/``AME_SCHEDULE_FIRE_TIME`` (``ame.tasks.runner`` tags
its runs with them) and the backend the scheduler was given as ``AME_BACKEND``;
so a fire does exactly what the command typed by hand does, on whatever backend
that command uses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import IO, Optional

from ame._system import pid_alive
from ame.schedule import autotrain
from ame.schedule.cron import fires_between, utc_now
from ame.schedule.jobs import AUTO_TRAIN, Job, project_jobs
from ame.schedule.state import (
    FAILED,
    FINISHED,
    LOST,
    MISSED,
    RUNNING,
    SKIPPED,
    FireRecord,
    Store,
    iso,
    parse_iso,
)
from ame.spec.model import Project

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# A fire later than this after its time (the scheduler was down, or the machine
# asleep) counts as missed rather than on time.
DEFAULT_GRACE = 30.0
# How long a fired command gets to end after SIGTERM when the scheduler stops.
STOP_GRACE = 20.0


def ame_command() -> list[str]:
    """The CLI as a subprocess: this interpreter, so a fire runs the same ame as the scheduler."""
    return [sys.executable, "-m", "ame.cli.main"]


@dataclass
class _Child:
    record: FireRecord
    proc: subprocess.Popen[bytes]
    log_file: IO[bytes]


def _log_tail(path: Optional[str]) -> Optional[str]:
    """The last non-empty line a fired command printed: the reason a failure is recorded with."""
    if not path:
        return None
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 4096))
            lines = stream.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.strip():
            return line.strip()[:300]
    return None


class Scheduler:
    """One project's jobs, fired on time; ``tick`` is one pass, ``run`` loops until stopped."""

    def __init__(
        self,
        project: Project,
        *,
        clock: Clock = utc_now,
        grace: float = DEFAULT_GRACE,
        backend: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        on_record: Optional[Callable[[FireRecord], None]] = None,
    ) -> None:
        self.project = project
        self.clock = clock
        self.grace = timedelta(seconds=grace)
        self.backend = backend
        self.env = dict(os.environ if env is None else env)
        self.on_record = on_record
        self.store = Store(project.root)
        self.children: dict[str, _Child] = {}
        self._next_poll: dict[str, datetime] = {}
        self._skipped_fingerprint: dict[str, dict[str, object]] = {}
        self._file_mtime = self._mtime()

    # --- the loop ------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """The jobs of the project as last loaded."""
        return project_jobs(self.project)

    def tick(self) -> list[FireRecord]:
        """One pass: reap ended runs, reload an edited ame.yml, fire what is due."""
        events = self._reap()
        self._reload()
        now = self.clock()
        for job in self.jobs():
            try:
                if job.kind == AUTO_TRAIN:
                    events += self._poll_auto_train(job, now)
                else:
                    events += self._cron(job, now)
            except Exception:
                # One job's trouble (a full disk, a git that hangs) must not end the
                # other jobs' schedules: the scheduler is a long-lived process.
                log.exception("job %s", job.name)
        for record in events:
            if self.on_record is not None:
                self.on_record(record)
        return events

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set, then end the running fires."""
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(interval)
        finally:
            self.shutdown()

    def busy(self) -> bool:
        """Whether any fired command is still running."""
        return any(child.proc.poll() is None for child in self.children.values())

    # --- cron jobs -------------------------------------------------------------

    def _cron(self, job: Job, now: datetime) -> list[FireRecord]:
        assert job.schedule is not None
        state = self.store.load_state(job.name)
        if state.cursor is None:
            # First sight of this job: fires before now were never this scheduler's to run.
            state.cursor = iso(now)
            self.store.save_state(state)
            return []
        count, last = fires_between(job.schedule, parse_iso(state.cursor), now)
        if count == 0 or last is None:
            return []
        on_time = now - last <= self.grace
        record = FireRecord(job=job.name, fire_time=iso(last), state=RUNNING)
        if on_time:
            record.missed = count - 1
        else:
            record.missed, record.catch_up = count, job.schedule.catch_up
            if job.schedule.catch_up:
                record.reason = f"catch-up: one run for {count} missed fire{'s' * (count != 1)}"
        events: list[FireRecord] = []
        if not on_time and not job.schedule.catch_up:
            record.state = MISSED
            record.reason = f"{count} fire{'s' * (count != 1)} missed while no scheduler ran"
            if self.store.claim(record):
                events.append(record)
        else:
            fired = self._fire(job, record, now)
            if fired is not None:
                events.append(fired)
        state.cursor = iso(last)
        self.store.save_state(state)
        return events

    # --- autoTrain -------------------------------------------------------------

    def _poll_auto_train(self, job: Job, now: datetime) -> list[FireRecord]:
        assert job.poll is not None
        due = self._next_poll.get(job.name)
        if due is not None and now < due:
            return []
        self._next_poll[job.name] = now + timedelta(seconds=job.poll)
        state = self.store.load_state(job.name)
        current = autotrain.fingerprint(self.project, job.target)
        if state.fingerprint is None:
            state.fingerprint = current
            self.store.save_state(state)
            return []
        if current == state.fingerprint:
            return []
        reason = autotrain.describe_change(state.fingerprint, current)
        record = FireRecord(job=job.name, fire_time=iso(now), state=RUNNING, reason=reason)
        if self._running(job.name):
            # The change is kept (the fingerprint is not advanced): it trains once the
            # running training ends. The skip is recorded once per change.
            if self._skipped_fingerprint.get(job.name) == current:
                return []
            self._skipped_fingerprint[job.name] = current
            record.state = SKIPPED
            record.reason = f"{reason}; a training of this model is still running"
            return [record] if self.store.claim(record) else []
        fired = self._fire(job, record, now)
        state.fingerprint = current
        self.store.save_state(state)
        return [fired] if fired is not None else []

    # --- running a fire --------------------------------------------------------

    def _running(self, job: str) -> bool:
        child = self.children.get(job)
        if child is not None and child.proc.poll() is None:
            return True
        # A run left by a scheduler that was killed (its record still says running).
        last = self.store.last(job)
        return bool(last and last.state == RUNNING and last.pid and pid_alive(last.pid))

    def _fire(self, job: Job, record: FireRecord, now: datetime) -> Optional[FireRecord]:
        """Claim ``record`` and start the command; a skip when the job is still running."""
        if self._running(job.name):
            running = self.children.get(job.name)
            since = running.record.fire_time if running else "an earlier fire"
            record = replace(
                record, state=SKIPPED, reason=f"overlap: the run of {since} is still going"
            )
            return record if self.store.claim(record) else None
        record.started = iso(now)
        log_path = self.store.log_path(job.name, record.path_stamp)
        record.log = str(log_path)
        if not self.store.claim(record):
            return None  # already handled by an earlier scheduler
        # The task runner turns these into the runs' ame.schedule.* tags.
        env = {**self.env, "AME_SCHEDULE_JOB": job.name, "AME_SCHEDULE_FIRE_TIME": record.fire_time}
        if self.backend:
            env["AME_BACKEND"] = self.backend
        argv = [*ame_command(), *job.argv(), "-f", str(self.project.file)]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
        try:
            proc = subprocess.Popen(
                argv, cwd=self.project.root, env=env, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            log_file.close()
            record.state, record.finished, record.reason = FAILED, iso(now), str(exc)
            self.store.update(record)
            return record
        record.pid = proc.pid
        self.store.update(record)
        self.children[job.name] = _Child(record, proc, log_file)
        return record

    def _reap(self) -> list[FireRecord]:
        """Record the end of every fired command that ended since the last tick."""
        events = []
        for name, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            events.append(self._finish(child, code))
            del self.children[name]
        events += self._reap_orphans()
        return events

    def _finish(self, child: _Child, code: int, reason: Optional[str] = None) -> FireRecord:
        child.log_file.close()
        record = child.record
        record.exit_code, record.finished = code, iso(self.clock())
        record.state = FINISHED if code == 0 else FAILED
        if code != 0:
            record.reason = reason or _log_tail(record.log) or f"exit code {code}"
        self.store.update(record)
        return record

    def _reap_orphans(self) -> list[FireRecord]:
        """Runs an earlier scheduler left recorded as running and that have since ended."""
        events = []
        for job in self.jobs():
            if job.name in self.children:
                continue
            last = self.store.last(job.name)
            if last and last.state == RUNNING and not (last.pid and pid_alive(last.pid)):
                last.state, last.finished = LOST, iso(self.clock())
                last.reason = "the scheduler ended before this run did; its exit code is unknown"
                self.store.update(last)
                events.append(last)
        return events

    def shutdown(self, timeout: float = STOP_GRACE) -> list[FireRecord]:
        """End every running fire: SIGTERM (ame records the run as killed), then SIGKILL."""
        import time

        events = []
        for child in self.children.values():
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        # One deadline for all: ``ame scheduler stop`` waits for the whole shutdown.
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            try:
                code = child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                code = child.proc.wait()
            events.append(self._finish(child, code, "stopped with the scheduler"))
        self.children.clear()
        return events

    # --- ame.yml edits -----------------------------------------------------------

    def _mtime(self) -> Optional[int]:
        try:
            return self.project.file.stat().st_mtime_ns
        except OSError:
            return None

    def _reload(self) -> None:
        """Pick up an edited ame.yml; an invalid edit keeps the jobs as they were."""
        mtime = self._mtime()
        if mtime == self._file_mtime:
            return
        self._file_mtime = mtime
        from ame.errors import AmeError
        from ame.spec import load_project

        try:
            self.project = load_project(self.project.file)
        except AmeError as exc:
            log.error("ame.yml changed but does not load; keeping the previous jobs: %s", exc)
