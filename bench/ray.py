"""Benchmark of the ray backend's task path, against ``ray job submit`` on the same cluster.

One private Ray head (2 CPUs, 4 GB, every port on 127.0.0.1) is started for the
run and stopped at the end. For the same trivial command (``python -c
"print(1)"``) it measures, as the median of N runs after one warm-up:

1. ``ray job submit --working-dir DIR -- CMD`` (Ray's CLI, waits for the end)
   against ``ame task run T --backend ray`` (ame's CLI: checks, working_dir zip,
   MLflow run through the warm tracking agent, submission, live log, exit code);
2. the same two in one Python process that already imported everything
   (``JobSubmissionClient.submit_job`` + polling, against
   ``RayBackend.run_task(...).wait()``): what ``ame train`` pays per task.

The target is ame within 1.2x of ``ray job submit``. The serving figures of
the issue (ame on Ray Serve against a plain Serve deployment and local ``ame
serve``, deploy to first prediction) are bench/ray_serve.py's.

Usage: python bench/ray.py [--n 5]. Writes bench/results/ray.json.
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

HERE = Path(__file__).resolve().parent
# Run as a script, this file's folder is first on sys.path, where this file
# (ray.py) would hide the real ``ray`` package; the repo root instead gives the
# test suite's private-cluster helper.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from tests.ray.cluster import LOOPBACK_ENV, Cluster, start_head, stop  # noqa: E402

BIN = Path(sys.executable).parent
COMMAND = 'python -c "print(1)"'


def _env(cluster: Cluster) -> dict[str, str]:
    env = {**os.environ, **LOOPBACK_ENV, "RAY_ADDRESS": cluster.dashboard}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def _median(n: int, fn: object) -> float:
    assert callable(fn)
    fn()  # warm-up: first upload, tracking agent, store
    return statistics.median(fn() for _ in range(n))


def cli_overhead(n: int, cluster: Cluster, project: Path) -> dict[str, float]:
    env = _env(cluster)
    ray_cmd = [str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard,
               "--working-dir", str(project), "--", "python", "-c", "print(1)"]  # fmt: skip
    ame_cmd = [str(BIN / "ame"), "task", "run", "t", "--backend", "ray"]
    ray_s = _median(n, lambda: _timed(ray_cmd, project, env))
    ame_s = _median(n, lambda: _timed(ame_cmd, project, env))
    return {"ray_job_submit_s": ray_s, "ame_task_run_s": ame_s, "ratio": ame_s / ray_s}


def library_overhead(n: int, cluster: Cluster, project: Path) -> dict[str, float]:
    os.environ.update(LOOPBACK_ENV)
    os.environ["RAY_API_SERVER_ADDRESS"] = cluster.dashboard
    from ray.job_submission import JobSubmissionClient

    from ame.backends.base import TaskRequest
    from ame.backends.ray.backend import RayBackend
    from ame.registry.store import resolve_store
    from ame.spec import load_project

    client = JobSubmissionClient(cluster.dashboard)
    os.environ.pop("RAY_API_SERVER_ADDRESS")

    def plain() -> float:
        start = time.perf_counter()
        job = client.submit_job(entrypoint=COMMAND, runtime_env={"working_dir": str(project)})
        while str(client.get_job_status(job)).rsplit(".", 1)[-1] not in (
            "SUCCEEDED", "FAILED", "STOPPED",
        ):  # fmt: skip
            time.sleep(0.05)
        return time.perf_counter() - start

    loaded = load_project(project / "ame.yml")
    store = resolve_store(None, project)
    backend = RayBackend(cluster.dashboard)
    task = loaded.task("t")

    def ame() -> float:
        start = time.perf_counter()
        run = backend.run_task(TaskRequest(project=loaded, task=task, store=store)).wait()
        assert run.exit_code == 0, run
        return time.perf_counter() - start

    plain_s = _median(n, plain)
    ame_s = _median(n, ame)
    return {"submit_and_poll_s": plain_s, "ame_run_task_s": ame_s, "ratio": ame_s / plain_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ame-bench-ray-") as tmp:
        work = Path(tmp)
        project = work / "proj"
        project.mkdir()
        (project / "ame.yml").write_text(
            f"project: bench_ray\ntasks:\n  - name: t\n    executor: !custom\n"
            f"      command: {COMMAND!r}\n"
        )
        started = time.perf_counter()
        cluster = start_head(work / "ray", work / "ray-start.log")
        head_s = time.perf_counter() - started
        try:
            cli = cli_overhead(args.n, cluster, project)
            lib = library_overhead(args.n, cluster, project)
        finally:
            stop(cluster)
    rows = [
        ("ray start --head", f"{head_s:.1f}s", "", ""),
        ("CLI: ray job submit", f"{cli['ray_job_submit_s']:.2f}s", "", ""),
        ("CLI: ame task run --backend ray", f"{cli['ame_task_run_s']:.2f}s",
         f"{cli['ratio']:.2f}x", "target <= 1.2x"),
        ("lib: submit_job + poll", f"{lib['submit_and_poll_s']:.2f}s", "", ""),
        ("lib: RayBackend.run_task().wait()", f"{lib['ame_run_task_s']:.2f}s",
         f"{lib['ratio']:.2f}x", "target <= 1.2x"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  median    ratio   note")
    for name, value, ratio, note in rows:
        print(f"{name.ljust(width)}  {value.ljust(8)}  {ratio.ljust(6)}  {note}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "ray.json").write_text(
        json.dumps({"n": args.n, "head_start_s": head_s, "cli": cli, "library": lib}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
