"""``ame monitor`` end to end: exit codes, JSON, HTML, the tracked run, the section's task."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import AmeResult, run_ame
from tests.monitoring.conftest import FEATURES, Project, clear_traffic, log_traffic, make_project

BIN = Path(sys.executable).parent


def ame(project: Project, *args: str) -> AmeResult:
    """``ame`` in this process, in the project, with this interpreter's scripts on PATH."""
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return run_ame(*args, cwd=project.root, env={"PATH": path})


def _frame(n: int, shift: float = 0.0, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=FEATURES)
    frame["c"] += shift
    return frame


def test_no_traffic_exits_2_with_one_line(project: Project) -> None:
    clear_traffic(project)
    done = ame(project, "monitor", f"{project.model}/1")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: no logged traffic for") and "Traceback" not in done.stderr


def test_within_bounds_then_drift(project: Project, tmp_path: Path) -> None:
    clear_traffic(project)
    log_traffic(project, _frame(3000))
    calm = ame(project, "monitor", project.model, "--json", "--html", str(tmp_path / "calm.html"))
    assert calm.returncode == 0, calm.stderr + calm.stdout
    data = json.loads(calm.stdout)
    assert data["requests"] == 60 and data["rows"] == 3000 and not data["drifted"]
    assert {f["name"] for f in data["features"]} == set(FEATURES)
    assert [p["name"] for p in data["predictions"]] == ["prediction"]
    assert (tmp_path / "calm.html").read_text().count("<svg") == 5

    log_traffic(project, _frame(3000, shift=2.0, seed=4))
    report = tmp_path / "drift.html"
    drifted = ame(project, "monitor", f"{project.model}/1", "--since", "1h", "--html", str(report))
    assert drifted.returncode == 1, drifted.stderr + drifted.stdout
    assert "DRIFT" in drifted.stdout and "drift detected" in drifted.stdout
    page = report.read_text()
    assert "drift detected" in page and page.count('class="drift"') >= 1

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=project.uri)
    experiment = client.get_experiment_by_name(f"monitoring/{project.model}")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    assert len(runs) == 2
    latest = runs[0].data
    assert latest.tags["ame.model_version"] == "1" and latest.tags["ame.drifted"] == "true"
    assert {f"psi.{f}" for f in FEATURES} <= set(latest.metrics)
    assert latest.metrics["psi.c"] > 0.2 > latest.metrics["psi.a"]


def test_old_traffic_is_outside_the_window(project: Project) -> None:
    clear_traffic(project)
    log_traffic(project, _frame(500), at=time.time() - 3 * 3600)
    assert ame(project, "monitor", project.model, "--since", "1h", "--no-track").returncode == 2
    assert ame(project, "monitor", project.model, "--since", "4h", "--no-track").returncode == 0


def test_no_reference_names_the_option(tmp_path: Path) -> None:
    other = make_project(tmp_path, f"noref-{tmp_path.name[-6:]}", reference=False)
    log_traffic(other, _frame(400))
    done = ame(other, "monitor", other.model)
    assert done.returncode == 2 and "--reference" in done.stderr.strip().splitlines()[-1]
    missing = ame(other, "monitor", other.model, "--reference", str(tmp_path / "missing.csv"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    reference = tmp_path / "ref.csv"
    _frame(200).to_csv(reference, index=False)
    ok = ame(other, "monitor", other.model, "--reference", str(reference), "--json", "--no-track")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["reference"] == str(reference) and data["predictions"] == []


SECTION = """\
project: montests
models:
  - name: {model}
    monitoring:
      schedule: "0 * * * *"
      thresholds: {{pValue: 0.001}}
{task}"""
TASK = """\
      task:
        executor: !custom
          command: {python} dump_env.py
"""


@pytest.mark.parametrize("with_task", [True, False])
def test_section_with_and_without_a_task(project: Project, with_task: bool) -> None:
    clear_traffic(project)
    log_traffic(project, _frame(500))
    out = project.root / "env.json"
    out.unlink(missing_ok=True)
    (project.root / "dump_env.py").write_text(
        "import json, os\n"
        "json.dump({k: v for k, v in os.environ.items() if k.startswith('AME_')},"
        " open('env.json', 'w'))\n"
    )
    original = (project.root / "ame.yml").read_text()
    task = TASK.format(python=sys.executable) if with_task else ""
    (project.root / "ame.yml").write_text(SECTION.format(model=project.model, task=task))
    try:
        done = ame(project, "monitor", project.model)
    finally:
        (project.root / "ame.yml").write_text(original)
    assert "is not run by anything: no scheduler runs" in done.stderr
    assert done.returncode == 0, done.stderr + done.stdout
    if with_task:
        env = json.loads(out.read_text())
        assert env["AME_MODEL_NAME"] == project.model and env["AME_MODEL_VERSION"] == "1"
        assert env["AME_MODEL_URI"] == f"models:/{project.model}/1"
        logs = project.root / ".ame" / "monitoring" / project.model / "1"
        assert Path(env["AME_MONITORING_LOGS"]).resolve() == logs.resolve()
        assert "within thresholds" not in done.stdout
    else:
        assert not out.exists() and "within thresholds" in done.stdout
