"""Units: Kubernetes quantities, CPU cores, durations and cron schedules."""

from __future__ import annotations

import re

import pytest

from ame.spec.units import check_cron, parse_bytes, parse_cpu, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10G", 10 * 1000**3),
        ("512Mi", 512 * 1024**2),
        ("1.5Gi", 1536 * 1024**2),
        ("1000", 1000),
        (1000, 1000),
        ("1k", 1000),
        ("2Ki", 2048),
        ("1e3", 1000),
        ("1T", 10**12),
        (1.5, 2),  # a fraction of a byte rounds up, as Kubernetes does
    ],
)
def test_bytes(text: object, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10 gigs", "is not a quantity"),
        ("10GB", "write 10G (10*1000^3 bytes) or 10Gi (10*1024^3 bytes)"),
        ("512MiB", "write 512M"),
        ("ten", "is not a quantity"),
        ("-1G", "is negative"),
        (True, "expected a quantity"),
    ],
)
def test_bad_bytes(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_bytes(text)


@pytest.mark.parametrize(
    ("value", "cores"), [(4, 4.0), (0.5, 0.5), ("500m", 0.5), ("2", 2.0), ("1.5", 1.5)]
)
def test_cpu(value: object, cores: float) -> None:
    assert parse_cpu(value) == cores


@pytest.mark.parametrize("value", ["2 cores", "1Gi", "0", -1, "m"])
def test_bad_cpu(value: object) -> None:
    with pytest.raises(ValueError, match="is not a CPU amount"):
        parse_cpu(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
        ("45", 45.0),
    ],
)
def test_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "h", "1x", 0, "0s"])
def test_bad_duration(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_cron() -> None:
    assert check_cron(" 0 3 * * * ") == "0 3 * * *"
    assert check_cron("@daily") == "@daily"
    with pytest.raises(ValueError, match="is not a cron schedule"):
        check_cron("61 * * * *")
    with pytest.raises(ValueError, match="is not a cron schedule"):
        check_cron("every day")
