"""Benchmark: ``ame serve`` against ``mlflow models serve`` on the same registered models.

Registers two scikit-learn LogisticRegressions in a temporary embedded store:
``bench-lr``, logged with a column signature (a DataFrame), and
``bench-tensor``, logged from a NumPy input example (a tensor signature, what
most users get). Three payloads (``--payload``, default all):

- ``split``: a one-row ``dataframe_split`` to ``bench-lr``;
- ``inputs``: a one-row ``{"inputs": [[...]]}`` to ``bench-tensor``;
- ``v2``: the same row as a v2 ``infer`` request to ``bench-tensor``, against
  MLflow's ``/invocations`` with the ``inputs`` body (MLflow has no v2).

One server at a time (so they never compete for the CPU), each is started and
timed to its first successful prediction, driven at 1, 8 and 64 connections
for a fixed duration (wrk when installed, else a Python asyncio load
generator), recording req/s, p50 and p99, then stopped. With ``v2`` the ame
server also serves gRPC, and the same request over gRPC is measured (a Python
grpc.aio client with pre-serialized requests) against REST v2 measured by the
Python loader, so both protocols get a client of the same kind.

Both servers get the same number of worker processes: ``mlflow models serve``
defaults to one uvicorn worker per CPU, so ame runs ``--workers`` = CPU count
too. Prints a table per payload with the ratios and writes bench/results/serve.json.

Run: ``.venv/bin/python bench/serve.py [--payload split,inputs,v2] [--duration 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ROW = [0.5, -1.2, 3.3, 0.1]
BODY = {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [ROW]}}
INPUTS = {"inputs": [ROW]}
V2 = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
# payload -> (model, MLflow's path and body, ame's path and body)
PAYLOADS: dict[str, tuple[str, tuple[str, Any], tuple[str, Any]]] = {
    "split": ("bench-lr", ("/invocations", BODY), ("/invocations", BODY)),
    "inputs": ("bench-tensor", ("/invocations", INPUTS), ("/invocations", INPUTS)),
    "v2": ("bench-tensor", ("/invocations", INPUTS), ("/v2/models/bench-tensor/infer", V2)),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register_model(root: Path) -> str:
    """Log and register the model in a fresh embedded store; returns the tracking URI."""
    code = f"""
import mlflow, numpy as np, pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
uri = "sqlite:///{root}/mlflow.db"
mlflow.set_tracking_uri(uri)
art = "{(root / "artifacts").as_uri()}"
exp = mlflow.MlflowClient().create_experiment("bench", artifact_location=art)
X = pd.DataFrame(np.random.default_rng(0).normal(size=(500, 4)), columns=list("abcd"))
y = (X.a + X.b > 0).astype(int)
m = LogisticRegression().fit(X, y)
with mlflow.start_run(experiment_id=exp):
    mlflow.sklearn.log_model(m, name="model", signature=infer_signature(X, m.predict(X)),
                             registered_model_name="bench-lr")
t = LogisticRegression().fit(X.to_numpy(), y)
with mlflow.start_run(experiment_id=exp):
    mlflow.sklearn.log_model(t, name="model", input_example=X.to_numpy()[:2],
                             registered_model_name="bench-tensor")
"""
    subprocess.run([sys.executable, "-c", code], check=True, env=env_for(root), capture_output=True)
    return f"sqlite:///{root}/mlflow.db"


def env_for(root: Path, uri: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def start(
    cmd: list[str], root: Path, uri: str, url: str, log: Path, body: Any = BODY
) -> tuple[subprocess.Popen[bytes], float, bytes]:
    """Start a server; returns it, the seconds to its first good prediction, and that answer."""
    out = log.open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=root,
        env=env_for(root, uri),
        start_new_session=True,
    )
    with httpx.Client(timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited: {log.read_text()[-2000:]}")
            try:
                resp = client.post(url + "/invocations", json=body)
                if resp.status_code == 200:
                    return proc, time.perf_counter() - started, resp.content
            except httpx.HTTPError:
                pass
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _seconds(text: str) -> float:
    value, unit = re.match(r"([0-9.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def load_wrk(
    url: str, connections: int, duration: float, workdir: Path, path: str, body: Any
) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    threads = min(connections, 2)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{duration:.0f}s",
            "--latency",
            "-s",
            str(script),
            url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    # the percentile lines of "Latency Distribution" (not the "+/- Stdev" column)
    found = dict(re.findall(r"^[ \t]*(50|99)%[ \t]+([0-9.]+(?:us|ms|s|m))[ \t]*$", out, re.M))
    if "50" not in found or "99" not in found:
        raise RuntimeError(f"cannot read wrk's latency distribution:\n{out}")
    p50, p99 = _seconds(found["50"]), _seconds(found["99"])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = float(errors.group(1)) if errors else 0.0
    if socket_errors:
        failed += sum(float(n) for n in socket_errors.groups())
    return {"rps": rps, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "errors": failed}


def load_python(
    url: str, connections: int, duration: float, workdir: Path, path: str, body: Any
) -> dict[str, float]:
    """A lean HTTP/1.1 keep-alive load generator: one asyncio stream per connection.

    httpx costs more CPU per request than the server being measured, so the
    fallback speaks HTTP itself: one pre-built request, a status line and a
    Content-Length per response. Like wrk, each connection sends its next
    request as soon as the previous answer is read; non-200 answers count as
    errors, a dropped connection is reopened and counted too.
    """
    del workdir
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    latencies: list[float] = []
    errors = 0

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length:
            await reader.readexactly(length)
        return status

    async def worker(end: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while (t0 := time.perf_counter()) < end:
                try:
                    status = await one(reader, writer)
                except (OSError, asyncio.IncompleteReadError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                    continue
                latencies.append(time.perf_counter() - t0)
                errors += status != 200
        finally:
            writer.close()

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + duration) for _ in range(connections)))
        return time.perf_counter() - t0

    elapsed = _run(main())
    return _summary(latencies, elapsed, errors)


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _summary(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": float(errors),
    }


def load_grpc(port: int, connections: int, duration: float) -> dict[str, float]:
    """ModelInfer over gRPC, ``connections`` concurrent calls on one channel, bytes pre-built."""
    import grpc
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name="bench-tensor")
    tensor = request.inputs.add(name="input", datatype="FP64", shape=[1, 4])
    tensor.contents.fp64_contents.extend(ROW)
    payload = request.SerializeToString()
    latencies: list[float] = []
    errors = 0

    async def main() -> float:
        nonlocal errors
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")

            async def worker(end: float) -> None:
                nonlocal errors
                while (t0 := time.perf_counter()) < end:
                    try:
                        await call(payload)
                    except grpc.RpcError:
                        errors += 1
                        continue
                    latencies.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(t0 + duration) for _ in range(connections)))
            return time.perf_counter() - t0

    elapsed = _run(main())
    return _summary(latencies, elapsed, errors)


def run_server(
    name: str,
    cmd: list[str],
    root: Path,
    uri: str,
    port: int,
    levels: list[int],
    duration: float,
    loader: Any,
    runs: dict[str, tuple[str, Any]],
    grpc_port: int | None = None,
) -> dict[str, Any]:
    """Start one server and drive it with each ``runs`` entry (label -> path, body)."""
    url = f"http://127.0.0.1:{port}"
    first = next(iter(runs.values()))[1]
    probe = first if next(iter(runs.values()))[0] == "/invocations" else INPUTS
    proc, startup, answer = start(cmd, root, uri, url, root / f"{name}.log", probe)
    out: dict[str, Any] = {"startup_s": startup, "answer": answer, "load": {}}
    try:
        for label, (path, body) in runs.items():
            loader(url, 8, 2.0, root, path, body)  # warm-up
            out["load"][label] = {
                str(c): loader(url, c, duration, root, path, body) for c in levels
            }
        if grpc_port is not None:
            v2_path, v2_body = PAYLOADS["v2"][2]
            load_grpc(grpc_port, 8, 2.0)
            out["grpc"] = {str(c): load_grpc(grpc_port, c, duration) for c in levels}
            out["rest_v2_python"] = {
                str(c): load_python(url, c, duration, root, v2_path, v2_body) for c in levels
            }
    finally:
        stop(proc)
    return out


def _table(title: str, levels: list[int], base: dict[str, Any], ours: dict[str, Any]) -> list[Any]:
    print(f"\n{title}")
    print(
        f"{'conns':>5} | {'mlflow req/s':>12} {'p50 ms':>8} {'p99 ms':>8} | "
        f"{'ame req/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'ratio':>6} | errors m/a"
    )
    rows = []
    for c in levels:
        m, a = base[str(c)], ours[str(c)]
        ratio = a["rps"] / m["rps"]
        rows.append({"connections": c, "mlflow": m, "ame": a, "throughput_ratio": ratio})
        print(
            f"{c:>5} | {m['rps']:>12.0f} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} | "
            f"{a['rps']:>10.0f} {a['p50_ms']:>8.2f} {a['p99_ms']:>8.2f} | {ratio:>5.1f}x"
            f" | {m['errors']:.0f}/{a['errors']:.0f}"
        )
    return rows


def _targets(rows: list[dict[str, Any]]) -> dict[str, bool]:
    by = {r["connections"]: r for r in rows}
    targets = {}
    if 8 in by:
        targets["throughput_8_ge_4x"] = by[8]["throughput_ratio"] >= 4
    if 64 in by:
        targets["throughput_64_ge_8x"] = by[64]["throughput_ratio"] >= 8
        targets["p99_64_below_mlflow_p50_64"] = by[64]["ame"]["p99_ms"] < by[64]["mlflow"]["p50_ms"]
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load level")
    parser.add_argument("--connections", default="1,8,64")
    parser.add_argument(
        "--payload",
        default="split,inputs,v2",
        help="comma-separated payloads: split, inputs, v2 (default: all three)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="workers for both servers (default: CPU count, mlflow's default)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "serve.json")
    parser.add_argument(
        "--loader",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (auto: wrk when installed, else the Python one)",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    payloads = [p.strip() for p in args.payload.split(",") if p.strip()]
    unknown = [p for p in payloads if p not in PAYLOADS]
    if unknown or not payloads:
        parser.error(f"--payload: unknown {unknown}; choose from {', '.join(PAYLOADS)}")
    use_wrk = args.loader == "wrk" or (args.loader == "auto" and shutil.which("wrk") is not None)
    loader = load_wrk if use_wrk else load_python

    baseline: dict[str, Any] = {}
    ours: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ame-bench-") as tmp:
        root = Path(tmp)
        uri = register_model(root)
        # Both servers then start with the same warm file cache: otherwise the
        # first one started would also pay for reading every library from disk.
        subprocess.run(
            [sys.executable, "-c", "import mlflow.pyfunc, sklearn.linear_model, skops.io"],
            check=False,
            capture_output=True,
            env=env_for(root),
        )
        for model in dict.fromkeys(PAYLOADS[p][0] for p in payloads):
            mine = [p for p in payloads if PAYLOADS[p][0] == model]
            # MLflow's runs: one per distinct request (v2 and inputs send MLflow the same)
            theirs = {p: PAYLOADS[p][1] for p in mine if p != "v2" or "inputs" not in mine}
            port = free_port()
            mlflow_cmd = [
                *(str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{model}/1"),
                *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)),
                *("--workers", str(args.workers)),
            ]
            got = run_server(
                f"mlflow-{model}",
                mlflow_cmd,
                root,
                uri,
                port,
                levels,
                args.duration,
                loader,
                theirs,
            )
            baseline[model] = got
            port = free_port()
            grpc_port = free_port() if "v2" in mine else None
            ame_cmd = [
                *(str(BIN / "ame"), "serve", f"{model}/1", "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(args.workers)),
                *(("--grpc-port", str(grpc_port)) if grpc_port else ()),
            ]
            ours[model] = run_server(
                f"ame-{model}",
                ame_cmd,
                root,
                uri,
                port,
                levels,
                args.duration,
                loader,
                {p: PAYLOADS[p][2] for p in mine},
                grpc_port,
            )

    result_payloads: dict[str, Any] = {}
    all_targets: dict[str, bool] = {}
    for p in payloads:
        model = PAYLOADS[p][0]
        base_label = "inputs" if p == "v2" and "inputs" in baseline[model]["load"] else p
        rows = _table(
            f"payload {p} ({model}; ame {PAYLOADS[p][2][0]}, mlflow {PAYLOADS[p][1][0]})",
            levels,
            baseline[model]["load"][base_label],
            ours[model]["load"][p],
        )
        targets = _targets(rows)
        all_targets.update({f"{p}:{k}": v for k, v in targets.items()})
        result_payloads[p] = {"model": model, "levels": rows, "targets": targets}
    if any("grpc" in o for o in ours.values()):
        got = next(o for o in ours.values() if "grpc" in o)
        print("\nv2 infer, same request: gRPC vs REST (both Python clients)")
        head = f"{'REST req/s':>10} {'p99 ms':>8} | {'gRPC req/s':>10} {'p99 ms':>8}"
        print(f"{'conns':>5} | {head} | ratio")
        grpc_rows = []
        for c in levels:
            r, g = got["rest_v2_python"][str(c)], got["grpc"][str(c)]
            grpc_rows.append({"connections": c, "rest": r, "grpc": g, "ratio": g["rps"] / r["rps"]})
            print(
                f"{c:>5} | {r['rps']:>10.0f} {r['p99_ms']:>8.2f} | {g['rps']:>10.0f} "
                f"{g['p99_ms']:>8.2f} | {g['rps'] / r['rps']:.2f}x"
            )
        result_payloads["grpc_vs_rest"] = grpc_rows
    startups = {
        m: {"mlflow": baseline[m]["startup_s"], "ame": ours[m]["startup_s"]} for m in baseline
    }
    print()
    for m, st in startups.items():
        st["ratio"] = st["ame"] / st["mlflow"]
        print(
            f"start -> first prediction ({m}): mlflow {st['mlflow']:.2f}s, ame {st['ame']:.2f}s "
            f"({st['ratio']:.2f}x)"
        )
    for m in baseline:
        same = ours[m]["answer"] == baseline[m]["answer"]
        all_targets[f"{m}:same_answer"] = same
        print(f"same answer for the same body ({m}): {same} ({ours[m]['answer'].decode()})")
    for name, ok in all_targets.items():
        print(f"  {'PASS' if ok else 'FAIL'} {name}")
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "load_generator": "wrk" if loader is load_wrk else "python-asyncio",
        "workers": args.workers,
        "duration_s": args.duration,
        "payloads": result_payloads,
        "startup_s": startups,
        "targets": all_targets,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
