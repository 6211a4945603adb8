"""Units in ame.yml: CPU cores, byte quantities, durations and cron schedules.

Quantities follow Kubernetes' rules, because AME files were written for
Kubernetes: ``G`` is 1000**3 and ``Gi`` is 1024**3, a bare number is bytes and
``500m`` CPU is half a core. Each parser returns a number or raises
``ValueError`` with a message meant for the person who wrote the value.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exp>[+-]?\d+))?$"
)
_LOOKS_LIKE_UNIT = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-z]+)$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_BYTES = Decimal(2) ** 63
_MAX_INT_BYTES = 2**63
# Exponents beyond this are typos (1e999999), and Decimal would overflow on them.
_MAX_EXPONENT = 30


def _quantity(text: str) -> Decimal:
    """A Kubernetes quantity as an exact decimal; ValueError if it is not one."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(text)
    value = Decimal(match["num"])
    if match["suffix"] in _BINARY:
        return value * (Decimal(1024) ** _BINARY[match["suffix"]])
    if match["suffix"]:
        return value * (Decimal(10) ** _DECIMAL[match["suffix"]])
    if match["exp"]:
        exponent = match["exp"]
        if len(exponent.lstrip("+-")) > 3 or abs(int(exponent)) > _MAX_EXPONENT:
            raise ValueError(text)
        return value * (Decimal(10) ** int(exponent))
    return value


def parse_bytes(value: object) -> int:
    """Memory or storage in bytes: ``10G``, ``512Mi``, ``1.5Gi``, ``1000`` (bytes)."""
    if type(value) is int and 0 <= value <= _MAX_INT_BYTES:
        return value  # already bytes (a resolved project is checked again)
    if isinstance(value, bool):
        raise ValueError(f"expected a quantity such as 10G or 512Mi, got {value}")
    if isinstance(value, (int, float)):
        number = Decimal(str(value))
    else:
        text = str(value).strip()
        try:
            number = _quantity(text)
        except (ValueError, InvalidOperation):
            raise ValueError(_bad_bytes(text)) from None
    if number < 0:
        raise ValueError(f"'{value}' is negative; expected a size such as 10G or 512Mi")
    if not number.is_finite() or number > _MAX_BYTES:
        raise ValueError(f"'{value}' is larger than any machine (at most 8Ei)")
    return math.ceil(number)


def _bad_bytes(text: str) -> str:
    unit = _LOOKS_LIKE_UNIT.match(text)
    if unit is not None:
        number, suffix = unit.groups()
        head = suffix[:1].upper()
        if head in "KMGTPE" and suffix.upper() in (head + "B", head + "IB", head):
            dec = "k" if head == "K" else head
            power = "KMGTPE".index(head) + 1
            return (
                f"'{text}' is not a quantity: write {number}{dec} "
                f"({number}*1000^{power} bytes) or {number}{head}i ({number}*1024^{power} bytes)"
            )
    return (
        f"'{text}' is not a quantity: expected a number of bytes with an optional "
        "unit, such as 1000, 10G, 512Mi or 1.5Gi"
    )


def parse_cpu(value: object) -> float:
    """CPU in cores: ``4``, ``0.5`` or ``500m`` (millicores)."""
    if isinstance(value, bool):
        raise ValueError(f"expected CPU cores such as 4, 0.5 or 500m, got {value}")
    if isinstance(value, (int, float)):
        cores = float(value)
    else:
        text = str(value).strip()
        match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)(m?)", text)
        if match is None:
            raise ValueError(f"'{text}' is not a CPU amount: expected cores such as 4, 0.5 or 500m")
        cores = float(match[1]) / (1000 if match[2] else 1)
    if cores <= 0 or not math.isfinite(cores):
        raise ValueError(f"'{value}' is not a CPU amount: it must be more than 0")
    return cores


def parse_duration(value: object) -> float:
    """A duration in seconds: ``90``, ``30s``, ``5m``, ``1h``, ``1h30m``, ``500ms``, ``2d``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and _DURATION_PART.sub("", text) == "":
            seconds = sum(float(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(
                f"'{value}' is not a duration: expected seconds or a value such as 30s, 5m, "
                "1h or 1h30m"
            )
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"'{value}' is not a duration: it must be more than 0 seconds")
    return seconds


def check_cron(expression: str) -> str:
    """Return ``expression`` if croniter accepts it as a schedule, else raise ValueError."""
    text = expression.strip()
    try:
        _cron_ok(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"'{expression}' is not a cron schedule ({exc}); expected five fields such as "
            "'0 3 * * *' or a macro such as '@daily'"
        ) from None
    return text


@functools.lru_cache(maxsize=256)
def _cron_ok(text: str) -> None:
    # Cached: a schedule is checked where the file gives it and again in the
    # resolved project, and croniter builds a whole iterator to check one.
    # croniter is imported here: it is slow to import and most files have no schedule.
    from croniter import croniter

    croniter(text)


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone zoneinfo knows, else raise ValueError."""
    import zoneinfo

    text = name.strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; expected an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None
    return text
