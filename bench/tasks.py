"""Benchmark of ame's task runner.

1. Overhead of ``ame task run`` over running the same command directly, with a
   warm environment cache, for a ``!custom`` and a ``!pip`` task (median of N).
   Also the overhead of the library call ``run_task`` inside a process that has
   already imported MLflow (what ``ame train`` pays per task).
2. A cold environment build with uv (``prepare_environment`` with empty ame and
   uv caches) against ``python -m venv && pip install --no-cache-dir -r`` of the
   same requirements; prints the ratio.

Usage: python bench/tasks.py [--n 5]. Writes bench/results/tasks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUIREMENTS = "six==1.16.0\nattrs==23.2.0\nidna==3.7\npackaging==24.0\npyparsing==3.1.2\n"
AME = str(Path(sys.executable).parent / "ame")
PROBE = "import six"


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def overhead(n: int, work: Path, env: dict[str, str]) -> dict[str, object]:
    project = work / "proj"
    project.mkdir()
    (project / "requirements.txt").write_text("six==1.16.0\n")
    (project / "ame.yml").write_text(
        "project: bench\ntasks:\n"
        f"  - name: custom\n    executor: !custom\n      command: python -c '{PROBE}'\n"
        f"  - name: pip\n    executor: !pip\n      command: python -c '{PROBE}'\n"
    )
    results: dict[str, object] = {}
    for task in ("custom", "pip"):
        # Warm-up: builds the environment and the embedded store once.
        subprocess.run(
            [AME, "task", "run", task], cwd=project, env=env, check=True, capture_output=True
        )
        info = json.loads(
            subprocess.run(
                [AME, "task", "env", task, "--json"],
                cwd=project,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        direct_cmd = [info["python"], "-c", PROBE]
        ame_times = [timed([AME, "task", "run", task], project, env) for _ in range(n)]
        direct_times = [timed(direct_cmd, project, env) for _ in range(n)]
        results[task] = {
            "ame_median_s": statistics.median(ame_times),
            "direct_median_s": statistics.median(direct_times),
            "overhead_s": statistics.median(ame_times) - statistics.median(direct_times),
        }
    results["library"] = library_overhead(n, project, env)
    # What the CLI pays before it can track anything: importing MLflow.
    imports = [
        timed([sys.executable, "-c", "import mlflow.tracking"], project, env) for _ in range(n)
    ]
    results["mlflow_import_median_s"] = statistics.median(imports)
    return results


def library_overhead(n: int, project: Path, env: dict[str, str]) -> dict[str, float]:
    """run_task in a process that already imported MLflow, vs the bare command."""
    code = f"""
import json, statistics, subprocess, sys, time
from ame.registry.store import resolve_store
from ame.spec import load_project
from ame.tasks import prepare_environment, run_task
project = load_project({str(project)!r})
store = resolve_store(project_root=project.root)
out = {{}}
for name in ("custom", "pip"):
    task = project.task(name)
    run_task(project, task, store)
    python = str(prepare_environment(project, task).python)
    lib, direct = [], []
    for _ in range({n}):
        t = time.perf_counter(); run_task(project, task, store); lib.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([python, "-c", {PROBE!r}], cwd=project.root, check=True)
        direct.append(time.perf_counter() - t)
    out[name] = statistics.median(lib) - statistics.median(direct)
print(json.dumps(out))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {f"{k}_overhead_s": v for k, v in data.items()}


def cold_build(work: Path, env: dict[str, str]) -> dict[str, float]:
    project = work / "cold"
    project.mkdir()
    (project / "requirements.txt").write_text(REQUIREMENTS)
    (project / "ame.yml").write_text(
        "project: cold\ntasks:\n  - name: t\n    executor: !pip\n      command: python -V\n"
    )
    cold_env = dict(env, AME_CACHE_DIR=str(work / "cold-ame"), UV_CACHE_DIR=str(work / "cold-uv"))
    uv_s = timed([AME, "task", "env", "t"], project, cold_env)
    # The CLI's own start-up (imports) is measured separately and left out.
    startup = timed([AME, "task", "env", "t"], project, cold_env)
    venv = work / "pip-venv"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "-r", "requirements.txt"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    pip_s = time.perf_counter() - start
    build_s = max(uv_s - startup, 1e-3)
    return {"uv_build_s": build_s, "pip_build_s": pip_s, "pip_over_uv_ratio": pip_s / build_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="repetitions per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ame-bench-tasks-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(
            MLFLOW_DISABLE_TELEMETRY="true",
            AME_CACHE_DIR=str(work / "cache"),
            AME_CONFIG_DIR=str(work / "config"),
        )
        results = {
            "n": args.n,
            "overhead": overhead(args.n, work, env),
            "cold_build": cold_build(work, env),
            "load_average": os.getloadavg(),
            "cpus": os.cpu_count(),
        }
    out = Path(__file__).parent / "results" / "tasks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    ov = results["overhead"]
    for task in ("custom", "pip"):
        print(
            f"ame task run overhead ({task}): {ov[task]['overhead_s']:.3f} s "
            f"(ame {ov[task]['ame_median_s']:.3f} s vs direct {ov[task]['direct_median_s']:.3f} s)"
        )
    print(f"of which importing MLflow: {ov['mlflow_import_median_s']:.3f} s")
    for key, value in ov["library"].items():
        print(f"run_task library {key}: {value:.3f} s")
    cb = results["cold_build"]
    print(
        f"cold build: uv {cb['uv_build_s']:.2f} s, venv+pip {cb['pip_build_s']:.2f} s, "
        f"ratio pip/uv {cb['pip_over_uv_ratio']:.1f}x"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
