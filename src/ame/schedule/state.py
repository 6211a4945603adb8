"""What the scheduler remembers, under ``<project>/.ame/schedule/``: one record per fire.

Layout, one directory per job (``task.nightly``, ``autoTrain.iris``)::

    jobs/<kind>.<target>/state.json        cursor (last fire handled), autoTrain fingerprint
    jobs/<kind>.<target>/fires/<stamp>.json one record per fire time
    jobs/<kind>.<target>/logs/<stamp>.log   what the fired command printed

A fire is *claimed* by creating its record with a hard link from a finished
temporary file: the link fails if the record exists, so a restarted scheduler
(or a second one racing it) never runs one fire twice, and no reader ever sees a
half-written record. Later updates of a record, and the state file, are written
to a temporary file and ``os.replace``d.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from ame.boundedio import loads_json, read_regular_file

# States of a fire record.
RUNNING, FINISHED, FAILED, SKIPPED, MISSED, LOST = (
    "running", "finished", "failed", "skipped", "missed", "lost",
)  # fmt: skip
MAX_RECORD_BYTES = 1 << 20
KEEP_RECORDS = 500


def schedule_dir(root: Path) -> Path:
    """``<project>/.ame/schedule``: everything the scheduler keeps for a project."""
    return root / ".ame" / "schedule"


def job_dir(root: Path, job: str) -> Path:
    """The directory of one job; ``kind:target`` becomes ``kind.target`` (kinds have no dot)."""
    return schedule_dir(root) / "jobs" / job.replace(":", ".", 1)


def stamp(when: datetime) -> str:
    """A fire time as a file name: ``20260329T013000Z`` (UTC, sortable)."""
    return when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def iso(when: datetime) -> str:
    """A fire time as records and tags write it: ISO 8601 in UTC."""
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """The inverse of ``iso``."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass
class FireRecord:
    """One fire of one job: when it was due, what ran, and how it ended (or why it did not)."""

    job: str
    fire_time: str
    state: str
    started: Optional[str] = None
    finished: Optional[str] = None
    exit_code: Optional[int] = None
    pid: Optional[int] = None
    log: Optional[str] = None
    reason: Optional[str] = None
    catch_up: bool = False
    missed: int = 0

    @property
    def path_stamp(self) -> str:
        """The record's file name (without ``.json``)."""
        return stamp(parse_iso(self.fire_time))


@dataclass
class JobState:
    """Per-job memory: the last fire time handled, and autoTrain's last fingerprint."""

    job: str
    cursor: Optional[str] = None
    fingerprint: Optional[dict[str, Any]] = None
    extra: dict[str, Any] = field(default_factory=dict)


def _write_temp(directory: Path, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    return Path(tmp)


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = _write_temp(path.parent, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = loads_json(read_regular_file(path, MAX_RECORD_BYTES).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


class Store:
    """The records of one project's jobs, on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def record_path(self, job: str, fire_stamp: str) -> Path:
        """Where the record of ``job``'s fire at ``fire_stamp`` lives."""
        return job_dir(self.root, job) / "fires" / f"{fire_stamp}.json"

    def log_path(self, job: str, fire_stamp: str) -> Path:
        """Where the fired command's output goes."""
        return job_dir(self.root, job) / "logs" / f"{fire_stamp}.log"

    def claim(self, record: FireRecord) -> bool:
        """Create ``record``; False when a record of that fire exists already (never run twice)."""
        final = self.record_path(record.job, record.path_stamp)
        tmp = _write_temp(final.parent, asdict(record))
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self.prune(record.job)
        return True

    def update(self, record: FireRecord) -> None:
        """Rewrite an existing record (its end, its pid) atomically."""
        _write(self.record_path(record.job, record.path_stamp), asdict(record))

    def records(self, job: str) -> list[FireRecord]:
        """Every record of ``job``, oldest fire first; unreadable files are passed over."""
        directory = job_dir(self.root, job) / "fires"
        if not directory.is_dir():
            return []
        out = []
        for path in sorted(directory.glob("*.json")):
            data = _read(path)
            if data is None:
                continue
            try:
                out.append(FireRecord(**data))
            except TypeError:
                continue
        return out

    def last(self, job: str, *, ran: bool = False) -> Optional[FireRecord]:
        """The record of ``job``'s latest fire (with ``ran``, the latest that ran a command).

        Reads from the newest file back, so it usually opens one file.
        """
        directory = job_dir(self.root, job) / "fires"
        if not directory.is_dir():
            return None
        for path in sorted(directory.glob("*.json"), reverse=True):
            data = _read(path)
            if data is None:
                continue
            try:
                record = FireRecord(**data)
            except TypeError:
                continue
            if not ran or record.state not in (SKIPPED, MISSED):
                return record
        return None

    def running(self) -> list[FireRecord]:
        """The latest record of every job that still says ``running``, whatever the ame.yml."""
        jobs = schedule_dir(self.root) / "jobs"
        out = []
        for directory in sorted(jobs.iterdir()) if jobs.is_dir() else []:
            kind, _, target = directory.name.partition(".")
            last = self.last(f"{kind}:{target}")
            if last is not None and last.state == RUNNING and last.pid:
                out.append(last)
        return out

    def prune(self, job: str, keep: int = KEEP_RECORDS) -> None:
        """Drop the oldest records and logs beyond ``keep``: a per-minute job makes 1440 a day.

        Old records are not needed against double runs: the job's cursor is past them.
        """
        directory = job_dir(self.root, job) / "fires"
        records = sorted(directory.glob("*.json")) if directory.is_dir() else []
        for path in records[: max(0, len(records) - keep)]:
            path.unlink(missing_ok=True)
            self.log_path(job, path.stem).unlink(missing_ok=True)

    def load_state(self, job: str) -> JobState:
        """``job``'s cursor and fingerprint; a fresh state when none was saved."""
        data = _read(job_dir(self.root, job) / "state.json")
        if data is None:
            return JobState(job)
        try:
            return JobState(**data)
        except TypeError:
            return JobState(job)

    def save_state(self, state: JobState) -> None:
        """Persist ``state`` atomically."""
        _write(job_dir(self.root, state.job) / "state.json", asdict(state))
