"""Model monitoring: payload logs written by the server, references, drift checks.

Import-light (the CLI and the server import it on their start-up paths): pyarrow,
numpy, scipy and MLflow are imported by the functions that need them. See
docs/monitoring.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ame._lazy import lazy_exports

if TYPE_CHECKING:
    from ame.monitoring.check import CheckResult, run_check
    from ame.monitoring.reference import log_reference
    from ame.monitoring.settings import LogSettings
    from ame.monitoring.writer import PayloadLogger

__all__ = ["CheckResult", "LogSettings", "PayloadLogger", "log_reference", "run_check"]

__getattr__ = lazy_exports(
    __name__,
    {
        "CheckResult": "ame.monitoring.check",
        "run_check": "ame.monitoring.check",
        "log_reference": "ame.monitoring.reference",
        "LogSettings": "ame.monitoring.settings",
        "PayloadLogger": "ame.monitoring.writer",
    },
)
