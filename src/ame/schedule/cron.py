"""Fire times of a schedule: croniter does the cron, zoneinfo the time zone.

Times go in and come out as aware UTC datetimes; the expression is read in the
schedule's zone, so ``0 2 * * *`` in ``Europe/Berlin`` is 02:00 Berlin time in
winter and in summer. Two DST rules, those of Vixie cron, are decided here
rather than left to chance:

* a wall-clock time that does not exist (spring forward) fires at the first
  instant after the gap (croniter's behaviour, kept);
* a wall-clock time that happens twice (fall back) fires once, the first time,
  for an expression with a fixed hour. An expression whose hour is ``*`` fires
  on both passes, as it means "every hour" and the day has one more.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from ame.spec.model import Schedule

# Fires listed at most per call: a per-second schedule after a day of downtime
# has 86 400 missed fires, and the scheduler needs only the count and the last.
MAX_LISTED = 10_000


@lru_cache(maxsize=256)
def _hour_is_wildcard(cron: str) -> bool:
    from croniter import croniter

    return bool(croniter(cron).expanded[1] == ["*"])


def _iterate(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    from croniter import croniter

    zone = ZoneInfo(schedule.timezone)
    start = after.astimezone(zone)
    it = croniter(schedule.cron, start)
    skip_repeats = not _hour_is_wildcard(schedule.cron)
    previous_wall: datetime | None = None
    while True:
        fire = it.get_next(datetime)
        wall = fire.replace(tzinfo=None)
        if skip_repeats and fire.fold == 1 and wall == previous_wall:
            continue
        # fold=1 happens only in the repeated hour; the first pass of the same wall
        # time may have been before ``after`` (then it already fired), so compare it.
        if skip_repeats and fire.fold == 1 and _was_first_pass(fire, zone, after):
            continue
        previous_wall = wall
        yield fire.astimezone(timezone.utc)


def _was_first_pass(fire: datetime, zone: ZoneInfo, after: datetime) -> bool:
    """Whether the first occurrence of ``fire``'s wall time was already at or before ``after``."""
    first = fire.replace(fold=0, tzinfo=zone)
    return first.astimezone(timezone.utc) <= after.astimezone(timezone.utc)


def next_fires(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, in UTC."""
    out: list[datetime] = []
    for fire in _iterate(schedule, after):
        if len(out) >= count:
            break
        out.append(fire)
    return out


def fires_between(
    schedule: Schedule, after: datetime, until: datetime
) -> tuple[int, datetime | None]:
    """How many fires fall in ``(after, until]``, and the last of them (None if none).

    Counting stops at ``MAX_LISTED``; the last one is then found by starting
    again just before ``until``, so a long downtime costs no more than a short one.
    """
    count, last = 0, None
    for fire in _iterate(schedule, after):
        if fire > until:
            return count, last
        count, last = count + 1, fire
        if count >= MAX_LISTED:
            break
    # Long downtime: the last fire is the one before ``until`` (croniter walks back).
    from croniter import croniter

    zone = ZoneInfo(schedule.timezone)
    it = croniter(schedule.cron, until.astimezone(zone))
    previous = it.get_prev(datetime)
    probe = it.get_next(datetime)  # ``until`` itself, when it is a fire time
    latest = probe if probe.astimezone(timezone.utc) <= until else previous
    return count, latest.astimezone(timezone.utc)


def utc_now() -> datetime:
    """The current time, aware, in UTC: the scheduler's default clock."""
    return datetime.now(timezone.utc)
