"""The server and the CLI import monitoring on their start-up paths: it must stay light."""

from __future__ import annotations

import subprocess
import sys


def test_importing_monitoring_loads_no_heavy_library() -> None:
    code = (
        "import sys, ame.monitoring, ame.monitoring.writer, ame.monitoring.serving, "
        "ame.monitoring.check, ame.cli.monitor_cmds\n"
        "heavy = [m for m in ('mlflow', 'pyarrow', 'numpy', 'scipy', 'pandas')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
