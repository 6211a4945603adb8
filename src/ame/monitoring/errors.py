"""The ways a drift check can be refused (exit code 2: there is nothing to check)."""

from __future__ import annotations

from ame.errors import AmeError


class MonitoringError(AmeError):
    """Monitoring could not do what was asked (bad option, unreadable logs...)."""


class NoReferenceError(MonitoringError):
    """The version has no reference sample to compare traffic with."""


class NoTrafficError(MonitoringError):
    """No logged request falls in the window the check looks at."""
