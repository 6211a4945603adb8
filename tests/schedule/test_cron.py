"""Fire times from croniter in a named zone, across both DST changes of a year."""

from __future__ import annotations

from datetime import datetime, timezone

from ame.schedule.cron import fires_between, next_fires
from ame.schedule.state import iso
from ame.spec.model import Schedule

BERLIN = "Europe/Berlin"  # 2026: summer time from 29 March 02:00, back on 25 October 03:00


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def _iso(times: list[datetime]) -> list[str]:
    return [iso(t) for t in times]


def test_daily_time_follows_the_zone_across_spring_forward() -> None:
    daily = Schedule(cron="0 9 * * *", timezone=BERLIN)
    fires = next_fires(daily, _utc(2026, 3, 27, 12), 3)
    # 09:00 Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert _iso(fires) == ["2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"]


def test_a_time_that_does_not_exist_fires_right_after_the_gap() -> None:
    # 02:30 does not exist on 29 March in Berlin: it fires at 03:00 CEST (01:00 UTC), once.
    fires = next_fires(Schedule(cron="30 2 * * *", timezone=BERLIN), _utc(2026, 3, 28, 12), 2)
    assert _iso(fires) == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]


def test_a_time_that_happens_twice_fires_once_at_fall_back() -> None:
    fires = next_fires(Schedule(cron="30 2 * * *", timezone=BERLIN), _utc(2026, 10, 24, 12), 3)
    assert _iso(fires) == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"]
    # Starting inside the repeated hour, after its first 02:30, does not fire the second one.
    fires = next_fires(Schedule(cron="30 2 * * *", timezone=BERLIN), _utc(2026, 10, 25, 1, 10), 1)
    assert _iso(fires) == ["2026-10-26T01:30:00Z"]


def test_an_every_half_hour_job_runs_through_the_repeated_hour() -> None:
    fires = next_fires(
        Schedule(cron="*/30 * * * *", timezone=BERLIN), _utc(2026, 10, 24, 23, 40), 5
    )
    # The day has 25 hours; the job fires every 30 minutes of real time through all of them.
    assert _iso(fires) == [
        "2026-10-25T00:00:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:00:00Z",
        "2026-10-25T01:30:00Z",
        "2026-10-25T02:00:00Z",
    ]


def test_utc_is_the_default_zone() -> None:
    assert Schedule(cron="0 2 * * *").timezone == "UTC"
    assert _iso(next_fires(Schedule(cron="0 2 * * *"), _utc(2026, 3, 28, 12), 2)) == [
        "2026-03-29T02:00:00Z",
        "2026-03-30T02:00:00Z",
    ]


def test_fires_between_counts_and_finds_the_last_even_after_long_downtime() -> None:
    hourly = Schedule(cron="0 * * * *")
    assert fires_between(hourly, _utc(2026, 1, 1, 0), _utc(2026, 1, 1, 5, 30)) == (
        5,
        _utc(2026, 1, 1, 5),
    )
    assert fires_between(hourly, _utc(2026, 1, 1, 0), _utc(2026, 1, 1, 0, 59)) == (0, None)
    # A per-second schedule after two days of downtime: the count is capped, the last exact.
    every_second = Schedule(cron="* * * * * *")
    count, last = fires_between(every_second, _utc(2026, 1, 1), _utc(2026, 1, 3, 7, 8, 9))
    assert count >= 10_000 and last == _utc(2026, 1, 3, 7, 8, 9)
