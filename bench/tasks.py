"""Benchmark of ame's task runner, every figure against a baseline measured in the same run.

1. Overhead of ``ame task run`` with a warm environment cache over running the
   same command directly (``/bin/sh -c`` with the PATH the task gets), for a
   ``!custom`` and a ``!pip`` task (median of N), as seconds and as a ratio.
   ``ame task run`` records through its warm tracking agent, which the first
   run starts (timed separately). The overhead is broken down into the CLI's own start-up
   (``ame task env``, which imports no MLflow), importing MLflow, and the
   library call ``run_task`` in a process that already imported MLflow (what
   ``ame train`` pays per task: creating, logging and closing the run).
2. Environments: a cold uv build (``prepare_environment`` with empty ame and uv
   caches), a rebuild with uv's cache warm, and reuse of the cached environment,
   against the plain baseline ``python -m venv && pip install -r`` of the same
   requirements, cold (empty pip cache) and warm (pip cache filled). Builds are
   timed inside one Python process, so no CLI start-up is counted on either side.

Usage: python bench/tasks.py [--n 5]. Writes bench/results/tasks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def median_of(n: int, args: list[str], cwd: Path, env: dict[str, str]) -> float:
    return statistics.median(timed(args, cwd, env) for _ in range(n))


def overhead(n: int, work: Path, env: dict[str, str]) -> dict[str, object]:
    project = work / "proj"
    project.mkdir()
    (project / "ame.yml").write_text(
        "project: bench\ntasks:\n"
        f"  - name: custom\n    executor: !custom\n      command: python -c '{PROBE}'\n"
        f"  - name: pip\n    executor: !pip\n      packages: [six==1.16.0]\n"
        f"      command: python -c '{PROBE}'\n"
    )
    results: dict[str, object] = {}
    for task in ("custom", "pip"):
        # Warm-up: builds the environment and the embedded store once; the first
        # run on the store also starts the tracking agent the others reuse.
        first_s = timed([AME, "task", "run", task], project, env)
        if task == "custom":
            results["first_run_starting_agent_s"] = first_s
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
        assert info["cached"] or not info["isolated"], info
        ame_s = median_of(n, [AME, "task", "run", task], project, env)
        # "The same command directly": through the same shell and the same PATH
        # the task gets (the environment's bin first when it is isolated), so
        # that `python` means the same program on both sides.
        direct_env = dict(env)
        if info["isolated"]:
            bin_dir = str(Path(info["python"]).parent)
            direct_env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        direct_s = median_of(n, ["/bin/sh", "-c", f"python -c '{PROBE}'"], project, direct_env)
        results[task] = {
            "ame_median_s": ame_s,
            "direct_median_s": direct_s,
            "overhead_s": ame_s - direct_s,
            "ame_over_direct_ratio": ame_s / direct_s,
        }
    # The parts of the overhead: the CLI without MLflow, and importing MLflow.
    results["cli_startup_median_s"] = median_of(n, [AME, "task", "env", "pip"], project, env)
    results["mlflow_import_median_s"] = median_of(
        n, [sys.executable, "-c", "import mlflow.tracking"], project, env
    )
    results["python_startup_median_s"] = median_of(n, [sys.executable, "-c", "pass"], project, env)
    results["library"] = library_overhead(n, project, env)
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


BUILD = """
import json, sys, time
from ame.spec import load_project
from ame.tasks import prepare_environment
project = load_project(sys.argv[1])
task = project.task("t")
t = time.perf_counter(); env = prepare_environment(project, task); cold = time.perf_counter() - t
assert not env.cached
t = time.perf_counter(); again = prepare_environment(project, task); reuse = time.perf_counter() - t
assert again.cached and again.prefix == env.prefix
t = time.perf_counter(); prepare_environment(project, task, rebuild=True)
warm = time.perf_counter() - t
print(json.dumps({"cold": cold, "reuse": reuse, "warm": warm}))
"""

PIP = """
import subprocess, sys, time
venv, requirements = sys.argv[1], sys.argv[2]
t = time.perf_counter()
subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
subprocess.run([venv + "/bin/pip", "install", "-q", "--disable-pip-version-check",
                "-r", requirements], check=True, capture_output=True)
print(time.perf_counter() - t)
"""


def environments(work: Path, env: dict[str, str]) -> dict[str, float]:
    project = work / "cold"
    project.mkdir()
    (project / "requirements.txt").write_text(REQUIREMENTS)
    (project / "ame.yml").write_text(
        "project: cold\ntasks:\n  - name: t\n    executor: !pip\n      command: python -V\n"
    )
    uv_env = dict(env, AME_CACHE_DIR=str(work / "cold-ame"), UV_CACHE_DIR=str(work / "cold-uv"))
    built = subprocess.run(
        [sys.executable, "-c", BUILD, str(project)],
        env=uv_env,
        check=True,
        capture_output=True,
        text=True,
    )
    uv = json.loads(built.stdout.strip().splitlines()[-1])
    pip_env = dict(env, PIP_CACHE_DIR=str(work / "cold-pip"))
    pip_times = []
    for name in ("pip-cold", "pip-warm"):  # the first fills pip's cache, the second uses it
        out = subprocess.run(
            [sys.executable, "-c", PIP, str(work / name), str(project / "requirements.txt")],
            env=pip_env,
            check=True,
            capture_output=True,
            text=True,
        )
        pip_times.append(float(out.stdout.strip().splitlines()[-1]))
        shutil.rmtree(work / name, ignore_errors=True)
    pip_cold, pip_warm = pip_times
    return {
        "uv_cold_s": uv["cold"],
        "uv_warm_cache_s": uv["warm"],
        "reuse_s": uv["reuse"],
        "pip_cold_s": pip_cold,
        "pip_warm_cache_s": pip_warm,
        "cold_pip_over_uv_ratio": pip_cold / uv["cold"],
        "warm_pip_over_uv_ratio": pip_warm / uv["warm"],
        "warm_pip_over_reuse_ratio": pip_warm / uv["reuse"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="repetitions per measurement")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ame-bench-tasks-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(
            MLFLOW_DISABLE_TELEMETRY="true",
            AME_CACHE_DIR=str(work / "cache"),
            AME_CONFIG_DIR=str(work / "config"),
        )
        env.pop("VIRTUAL_ENV", None)
        results = {
            "n": args.n,
            "overhead": overhead(args.n, work, env),
            "environments": environments(work, env),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "cpus": os.cpu_count(),
        }
    out = Path(__file__).parent / "results" / "tasks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    ov = results["overhead"]
    assert isinstance(ov, dict)
    print(f"ame task run, warm cache, median of {args.n} (target: overhead under 0.5 s)")
    print(
        "  first run on a new store (creates it, starts the tracking agent): "
        f"{ov['first_run_starting_agent_s']:.2f} s"
    )
    for task in ("custom", "pip"):
        r = ov[task]
        print(
            f"  {task:<6} ame {r['ame_median_s']:.3f} s vs direct {r['direct_median_s']:.3f} s: "
            f"overhead {r['overhead_s']:.3f} s, ratio {r['ame_over_direct_ratio']:.1f}x"
        )
    print(
        f"  parts: python start-up {ov['python_startup_median_s']:.3f} s, "
        f"ame CLI without MLflow (task env) {ov['cli_startup_median_s']:.3f} s, "
        f"import mlflow.tracking {ov['mlflow_import_median_s']:.3f} s"
    )
    for key, value in ov["library"].items():
        print(f"  run_task in a process with MLflow loaded, {key}: {value:.3f} s")
    e = results["environments"]
    assert isinstance(e, dict)
    print("environment for 5 small packages")
    print(
        f"  cold (empty caches): uv {e['uv_cold_s']:.2f} s vs venv+pip {e['pip_cold_s']:.2f} s, "
        f"pip/uv {e['cold_pip_over_uv_ratio']:.1f}x"
    )
    print(
        f"  package caches warm: uv {e['uv_warm_cache_s']:.2f} s vs venv+pip "
        f"{e['pip_warm_cache_s']:.2f} s, pip/uv {e['warm_pip_over_uv_ratio']:.1f}x"
    )
    print(
        f"  cached environment reused: {e['reuse_s'] * 1000:.1f} ms, "
        f"{e['warm_pip_over_reuse_ratio']:.0f}x faster than reinstalling with pip"
    )
    print(
        f"  load average before/after: {results['load_average_before']} / "
        f"{results['load_average_after']} on {results['cpus']} CPUs"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
