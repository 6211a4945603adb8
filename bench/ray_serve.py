"""Benchmark: ame on Ray Serve against a plain Ray Serve deployment and local ``ame serve``.

One private Ray head (2 CPUs, 4 GB, every port on 127.0.0.1) is started for
the run and stopped at the end; the model is bench/serve.py's ``bench-lr``
(a scikit-learn LogisticRegression with a column signature) in a temporary
embedded store, and every server gets one process/replica, measured one at a
time so they never compete for the CPU:

1. ``ame serve bench-lr/1 --workers 1`` on this machine (the baseline of issue 19's brief);
2. ``ame deploy bench-lr --backend ray`` (one replica): ame's ASGI app on Serve;
3. a plain Serve deployment of the same model written as Ray's docs show
   (bench/ray_plain/ray_plain_app.py: ``mlflow.pyfunc.load_model``, one predict per
   request; in a folder of its own, because bench/ray.py would hide the ``ray`` package).

Each is driven with a one-row ``dataframe_split`` at 8 and 64 connections
(bench/serve.py's lean Python loader) for ``--duration`` seconds: req/s, p50,
p99. Also measured: the time from ``ame deploy`` to the first prediction, and
where one request's time goes at one connection (p50 of Serve's own
``/-/healthz`` on the proxy, of ame's ``/ping`` through the proxy and the
replica, and of ``/invocations``: proxy + replica + model). Prints the ratios
and writes bench/results/ray_serve.json.

Run: ``.venv/bin/python bench/ray_serve.py [--duration 10] [--connections 8,64]``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script, this folder is first on sys.path, where bench/ray.py would
# hide the real ``ray`` package; the repo root gives the test cluster helper.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from tests.ray.cluster import LOOPBACK_ENV, start_head, stop  # noqa: E402

BIN = Path(sys.executable).parent


def _bench_serve() -> Any:
    spec = importlib.util.spec_from_file_location("bench_serve", HERE / "serve.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _first_prediction(url: str, body: Any, timeout: float = 300.0, dashboard: str = "") -> float:
    import httpx

    started = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        while time.perf_counter() - started < timeout:
            try:
                if client.post(url, json=body).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    status = ""
    if dashboard:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            apps = httpx.get(f"{dashboard}/api/serve/applications/", timeout=30).json()
            status = json.dumps(
                {k: (a.get("status"), a.get("message")) for k, a in apps["applications"].items()}
            )[:3000]
    raise RuntimeError(f"no prediction from {url} within {timeout:.0f}s {status}")


def _drive(bs: Any, url: str, path: str, levels: list[int], duration: float, work: Path) -> Any:
    bs.load_python(url, 8, 2.0, work, path, bs.BODY)  # warm-up
    return {str(c): bs.load_python(url, c, duration, work, path, bs.BODY) for c in levels}


def _p50(bs: Any, url: str, method_path: tuple[str, str], duration: float) -> float:
    import httpx

    method, path = method_path
    times = []
    end = time.perf_counter() + duration
    with httpx.Client(timeout=10) as client:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            if method == "GET":
                client.get(url + path)
            else:
                client.post(url + path, json=bs.BODY)
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000


def _put_plain(dashboard: str, tracking_uri: str, model_uri: str, port: int) -> None:
    """Add the plain application beside whatever ame deployed (Serve's config is one document)."""
    import httpx

    current = httpx.get(f"{dashboard}/api/serve/applications/", timeout=30).json()
    apps = [a["deployed_app_config"] for a in current["applications"].values()]
    apps.append({
        "name": "plain", "route_prefix": "/plain", "import_path": "ray_plain_app:app",
        "runtime_env": {"env_vars": {"PYTHONPATH": str(HERE / "ray_plain"),
                                     "BENCH_MODEL_URI": model_uri,
                                     "MLFLOW_TRACKING_URI": tracking_uri}},
    })  # fmt: skip
    body = {"applications": apps, "http_options": {"host": "127.0.0.1", "port": port}}
    resp = httpx.put(f"{dashboard}/api/serve/applications/", json=body, timeout=60)
    resp.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load level")
    parser.add_argument("--connections", default="8,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    bs = _bench_serve()
    results: dict[str, Any] = {"duration_s": args.duration, "levels": levels}
    with tempfile.TemporaryDirectory(prefix="ame-bench-ray-serve-") as tmp:
        work = Path(tmp)
        uri = bs.register_model(work)
        (work / "ame.yml").write_text(
            "project: bench_ray_serve\nmodels:\n  - name: bench-lr\n"
            "    deployment:\n      replicas: 1\n      resources: {cpu: 0.5}\n"
        )
        env = {**bs.env_for(work, uri), **LOOPBACK_ENV}

        # 1. local ame serve, one worker
        port = bs.free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [str(BIN / "ame"), "serve", "bench-lr/1", "--port", str(port), "--workers", "1"]
        proc, startup, _ = bs.start(cmd, work, uri, url, work / "local.log")
        try:
            results["local"] = {
                "startup_s": startup,
                "load": _drive(bs, url, "/invocations", levels, args.duration, work),
                "p50_ping_ms": _p50(bs, url, ("GET", "/ping"), 3.0),
                "p50_invocations_ms": _p50(bs, url, ("POST", "/invocations"), 3.0),
            }
        finally:
            bs.stop(proc)

        started = time.perf_counter()
        cluster = start_head(work / "ray", work / "ray-start.log")
        results["head_start_s"] = time.perf_counter() - started
        serve_port = bs.free_port()
        env.update({"RAY_ADDRESS": cluster.dashboard, "AME_RAY_SERVE_PORT": str(serve_port)})
        base = f"http://127.0.0.1:{serve_port}"
        try:
            # 2. ame on Ray Serve
            t0 = time.perf_counter()
            subprocess.run(
                [str(BIN / "ame"), "deploy", "bench-lr", "--version", "1", "--backend", "ray"],
                cwd=work, env=env, check=True, capture_output=True, timeout=900,
            )  # fmt: skip
            ready = time.perf_counter() - t0
            first = _first_prediction(f"{base}/bench-lr/invocations", bs.BODY)
            results["ame_ray"] = {
                "deploy_to_first_prediction_s": ready + first,
                "load": _drive(bs, base, "/bench-lr/invocations", levels, args.duration, work),
                "p50_proxy_healthz_ms": _p50(bs, base, ("GET", "/-/healthz"), 3.0),
                "p50_ping_ms": _p50(bs, base, ("GET", "/bench-lr/ping"), 3.0),
                "p50_invocations_ms": _p50(bs, base, ("POST", "/bench-lr/invocations"), 3.0),
            }
            subprocess.run(
                [str(BIN / "ame"), "deployment", "stop", "bench-lr", "--backend", "ray"],
                cwd=work, env=env, check=True, capture_output=True, timeout=300,
            )  # fmt: skip

            # 3. the plain Serve deployment
            os.environ.update(LOOPBACK_ENV)
            t0 = time.perf_counter()
            _put_plain(cluster.dashboard, uri, "models:/bench-lr/1", serve_port)
            first = _first_prediction(f"{base}/plain", bs.BODY, dashboard=cluster.dashboard)
            results["plain_ray"] = {
                "deploy_to_first_prediction_s": time.perf_counter() - t0,
                "load": _drive(bs, base, "/plain", levels, args.duration, work),
                "p50_invocations_ms": _p50(bs, base, ("POST", "/plain"), 3.0),
            }
        finally:
            stop(cluster)

    print(f"{'conns':>5} | {'local ame req/s':>15} {'p50':>7} {'p99':>7} | "
          f"{'plain serve':>11} {'p50':>7} {'p99':>7} | {'ame serve':>9} {'p50':>7} {'p99':>7}"
          f" | ame/plain  ame-ray/local")  # fmt: skip
    rows = []
    for c in levels:
        lo, pl, am = (results[k]["load"][str(c)] for k in ("local", "plain_ray", "ame_ray"))
        row = {"connections": c, "ame_over_plain": am["rps"] / pl["rps"],
               "ame_ray_over_local": am["rps"] / lo["rps"]}  # fmt: skip
        rows.append(row)
        print(f"{c:>5} | {lo['rps']:>15.0f} {lo['p50_ms']:>7.2f} {lo['p99_ms']:>7.2f} | "
              f"{pl['rps']:>11.0f} {pl['p50_ms']:>7.2f} {pl['p99_ms']:>7.2f} | "
              f"{am['rps']:>9.0f} {am['p50_ms']:>7.2f} {am['p99_ms']:>7.2f} | "
              f"{row['ame_over_plain']:>8.2f}x {row['ame_ray_over_local']:>8.2f}x")  # fmt: skip
    results["ratios"] = rows
    ar = results["ame_ray"]
    print(f"\ndeploy -> first prediction: ame {ar['deploy_to_first_prediction_s']:.1f}s, "
          f"plain {results['plain_ray']['deploy_to_first_prediction_s']:.1f}s")  # fmt: skip
    print(f"one request at 1 connection (p50): Serve proxy /-/healthz "
          f"{ar['p50_proxy_healthz_ms']:.2f} ms; + ame replica /ping {ar['p50_ping_ms']:.2f} ms;"
          f" + model /invocations {ar['p50_invocations_ms']:.2f} ms "
          f"(local ame: /ping {results['local']['p50_ping_ms']:.2f} ms, /invocations "
          f"{results['local']['p50_invocations_ms']:.2f} ms)")  # fmt: skip
    if 64 in levels:
        target = next(r for r in rows if r["connections"] == 64)["ame_over_plain"] >= 1.2
        results["targets"] = {"ame_over_plain_64_ge_1.2x": target}
        print(f"target ame >= 1.2x plain at 64 connections: {'met' if target else 'NOT met'}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "ray_serve.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
