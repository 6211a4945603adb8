"""Benchmark: payload logging's cost in ``ame serve``, and the drift check's time.

1. Serve throughput of one registered scikit-learn model (one worker, one-row
   ``dataframe_split`` requests over keep-alive connections from an asyncio load
   generator) without payload logging, then with ``--log-payloads`` at sample
   rates 0, 0.1 and 1.0. One server at a time; ratios against the run without
   logging. Target: rate 1.0 at least 0.8x.
2. A drift check of 1M logged rows x 20 numeric features (Parquet files in the
   payload log's layout, 2 of the 20 features shifted) against a 10,000-row
   reference: reading the window and comparing every column (PSI, KS), the part
   that grows with traffic. Target: under 1 s. The full ``run_check`` (registry
   lookup and the tracked MLflow run included) is timed too.

Run: ``.venv/bin/python bench/monitoring.py [--duration 5] [--connections 8]``;
writes bench/results/monitoring.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FEATURES = ["a", "b", "c", "d"]
BODY = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[0.5, -1.2, 3.3, 0.1]]}})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register(root: Path) -> str:
    """A project with model ``bench-mon`` version 1 (and its reference) in the embedded store."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from ame.monitoring import log_reference
    from ame.registry.store import activate, embedded_store, ensure_experiment

    (root / "ame.yml").write_text("project: benchmon\n")
    store = embedded_store(root)
    activate(store)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(500, 4)), columns=FEATURES)
    clf = LogisticRegression().fit(X, (X.a > 0).astype(int))
    with mlflow.start_run(experiment_id=ensure_experiment(store)):
        mlflow.sklearn.log_model(
            clf, name="model", signature=infer_signature(X, clf.predict(X)),
            registered_model_name="bench-mon",
        )  # fmt: skip
        log_reference(X)
    return store.tracking_uri


def start(root: Path, args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    import httpx

    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [str(BIN / "ame"), "serve", "bench-mon/1", "--port", str(port), "--workers", "1", *args],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ame serve {args} exited with {proc.returncode}")
        try:
            response = httpx.post(
                f"http://127.0.0.1:{port}/invocations", content=BODY,
                headers={"content-type": "application/json"}, timeout=2,
            )  # fmt: skip
            if response.status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def _connection(port: int, until: float, counts: list[int]) -> None:
    payload = BODY.encode()
    request = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                counts[0] += 1
            else:
                counts[1] += 1
    finally:
        writer.close()


def load(port: int, connections: int, duration: float) -> dict[str, float]:
    """Requests per second over ``duration`` seconds from ``connections`` keep-alive clients."""
    counts = [0, 0]

    async def run() -> float:
        began = time.perf_counter()
        until = began + duration
        await asyncio.gather(*(_connection(port, until, counts) for _ in range(connections)))
        return time.perf_counter() - began

    elapsed = asyncio.run(run())
    return {"rps": counts[0] / elapsed, "errors": float(counts[1])}


def serve_bench(
    root: Path, duration: float, connections: int, rounds: int = 5
) -> list[dict[str, Any]]:
    configs: list[tuple[str, list[str]]] = [
        ("off", []),
        ("rate 0", ["--log-payloads", "--sample-rate", "0"]),
        ("rate 0.1", ["--log-payloads", "--sample-rate", "0.1"]),
        ("rate 1.0", ["--log-payloads", "--sample-rate", "1.0"]),
    ]
    # All four servers are started first and loaded in turn, round after round:
    # on a shared machine the background load drifts, and interleaving spreads
    # that drift over every configuration instead of favouring one.
    servers = []
    try:
        for _, args in configs:
            servers.append(start(root, args))
        samples: dict[str, list[float]] = {label: [] for label, _ in configs}
        errors: dict[str, float] = {label: 0.0 for label, _ in configs}
        for _, port in servers:
            load(port, connections, 1.0)  # warm-up
        for _ in range(rounds):
            for (label, _), (_, port) in zip(configs, servers, strict=True):
                result = load(port, connections, duration / rounds)
                samples[label].append(result["rps"])
                errors[label] += result["errors"]
    finally:
        for proc, _ in servers:
            stop(proc)
    rows: list[dict[str, Any]] = [
        {"logging": label, "rps": statistics.median(samples[label]), "errors": errors[label],
         "samples": samples[label]}
        for label, _ in configs
    ]  # fmt: skip
    base = rows[0]["rps"]
    for row in rows:
        row["ratio"] = row["rps"] / base if base else 0.0
    return rows


def write_logs(directory: Path, rows: int, features: int, files: int) -> None:
    """``rows`` logged rows in ``files`` Parquet files, laid out as the payload log writes them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ame.monitoring.writer import COMPRESSION

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    per = rows // files
    now_us = int(time.time() * 1e6)
    for n in range(files):
        columns: dict[str, Any] = {
            "ame.time": pa.array(np.full(per, now_us - 1000), pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "ame.request_id": pa.array([f"r{n}-{i // 10}" for i in range(per)]),
            "ame.latency_ms": rng.random(per),
            "ame.version": pa.array(["1"] * per),
            "ame.protocol": pa.array(["mlflow"] * per),
            "ame.row": pa.array(np.arange(per) % 10, pa.int32()),
        }
        for j in range(features):
            values = rng.normal(size=per)
            columns[f"input.f{j}"] = values + (0.5 if j < 2 else 0.0)
        start_ms = int(time.time() * 1000) - 60_000
        name = f"{start_ms}-{start_ms + 1000}-bench-{os.getpid()}-{n}.parquet"
        pq.write_table(pa.table(columns), directory / name, compression=COMPRESSION)


def drift_bench(root: Path, rows: int, features: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    from ame.monitoring import drift
    from ame.monitoring.check import compare, read_traffic, run_check
    from ame.monitoring.location import location_for, log_files
    from ame.registry.store import embedded_store

    store = embedded_store(root)
    location = location_for(store, "bench-mon", "1")
    assert location.path is not None
    write_logs(location.path, rows, features, files=10)
    rng = np.random.default_rng(2)
    reference = pa.table({f"f{j}": rng.normal(size=10_000) for j in range(features)})
    timings, cpu = [], []
    flagged: list[str] = []
    for _ in range(4):  # the first run pays for importing scipy.stats and first-touch memory
        began, began_cpu = time.perf_counter(), time.process_time()
        traffic = read_traffic(log_files(location, time.time() - 3600, root), time.time() - 3600)
        columns, _ = compare(reference, traffic, drift.Thresholds(psi=0.2, p_value=0.001))
        timings.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        flagged = [c.name for c in columns if c.drifted]
    # The whole command's library call: registry, reading, comparing, the tracked run.
    ref_file = root / "reference.parquet"
    import pyarrow.parquet as pq

    pq.write_table(reference, ref_file)
    began = time.perf_counter()
    result = run_check(store, "bench-mon/1", since=3600, reference=str(ref_file))
    full = time.perf_counter() - began
    return {
        "rows": rows, "features": features, "check_seconds": min(timings[1:]),
        "check_seconds_all": timings, "check_cpu_seconds": cpu, "run_check_seconds": full,
        "flagged": flagged,
        "run_check_flagged": sorted(c.name for c in result.features if c.drifted),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "monitoring.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ame-bench-mon-") as tmp:
        root = Path(tmp)
        register(root)
        serve = [] if args.skip_serve else serve_bench(root, args.duration, args.connections)
        checked = drift_bench(root, args.rows, args.features)
    if serve:
        print(f"\nserve throughput, 1 worker, {args.connections} connections, {args.duration:g} s")
        print(f"{'logging':<10} {'req/s':>9} {'ratio':>7} {'errors':>7}")
        for row in serve:
            label, rps, ratio, errors = row["logging"], row["rps"], row["ratio"], row["errors"]
            print(f"{label:<10} {rps:>9.0f} {ratio:>7.2f} {errors:>7.0f}")
    print(f"\ndrift check, {checked['rows']:,} rows x {checked['features']} features vs 10,000")
    print(f"read + compare: {checked['check_seconds']:.3f} s (best of 3 warm runs; first "
          f"{checked['check_seconds_all'][0]:.3f} s); "
          f"run_check with tracking: {checked['run_check_seconds']:.3f} s; "
          f"flagged {', '.join(checked['flagged'])}")  # fmt: skip
    targets = {
        "rate_1_at_least_0.8x": bool(serve and serve[-1]["ratio"] >= 0.8) if serve else None,
        "check_under_1s": checked["check_seconds"] < 1.0,
    }
    print(f"targets: {targets} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},
        "serve": serve, "drift": checked, "targets": targets,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
