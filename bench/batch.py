"""Benchmark of ``ame predict``: rows/s and peak memory on 1M rows, against two baselines.

All three score the same CSV file (``--rows`` rows x 20 features and an id) with
the same random forest, each in its own process, in the same run:

1. ``ame predict MODEL -i in.csv -o out.parquet`` (streamed chunks, signature
   check per chunk, parts, atomic output);
2. ``mlflow models predict -m MODEL -i in.csv -t csv --env-manager local``
   (reads the whole file into pandas, one predict call);
3. a plain loop: pyarrow's streaming CSV reader -> ``pyfunc.predict`` per batch
   -> ``pyarrow.parquet.ParquetWriter``: what one would write by hand.

Reported: wall seconds of each process (start-up included), the scoring time
inside it (start-up excluded, for ame and the plain loop), rows/s, peak RSS
(``ru_maxrss`` of the child). Targets: ame >= 0.9x the plain loop, >= 5x
``mlflow models predict``. Memory flat: ame's peak RSS at 1M rows against
``--small-rows`` rows.

A fourth process, ``load only``, imports MLflow and loads the model, then
exits: the start-up every scorer pays before its first row. ``mlflow models
predict``'s wall over it is the most any one-process scorer could gain on
``mlflow models predict`` here, even scoring in no time at all
(``ceiling_vs_mlflow_models_predict``).

Usage: .venv/bin/python bench/batch.py [--rows 1000000] [--small-rows 100000]
Writes bench/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FEATURES = [f"f{i}" for i in range(20)]

LOAD_ONLY = textwrap.dedent(
    """
    import sys
    import mlflow.pyfunc
    mlflow.pyfunc.load_model(sys.argv[1])
    """
)

PLAIN_LOOP = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import mlflow.pyfunc
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import csv
    model = mlflow.pyfunc.load_model(sys.argv[1])
    started = time.perf_counter()
    reader = csv.open_csv(sys.argv[2], read_options=csv.ReadOptions(block_size=4 << 20))
    writer = None
    rows = 0
    for batch in reader:
        frame = batch.to_pandas()
        prediction = model.predict(frame.drop(columns=["id"]))
        table = pa.table({"id": batch.column("id"), "prediction": pa.array(prediction)})
        if writer is None:
            writer = pq.ParquetWriter(sys.argv[3], table.schema)
        writer.write_table(table)
        rows += len(table)
    writer.close()
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))
    """
)


def make_inputs(work: Path, rows: int, small_rows: int) -> tuple[Path, Path, Path]:
    """A random forest saved as an MLflow model, and two CSV inputs (big and small)."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(5000, len(FEATURES))), columns=FEATURES)
    labels = (train["f0"] + train["f1"] * train["f2"] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, max_depth=8, n_jobs=1, random_state=0)
    forest.fit(train, labels)
    model = work / "model"
    mlflow.sklearn.save_model(
        forest,
        str(model),
        signature=infer_signature(train, forest.predict(train)),
        pip_requirements=["scikit-learn"],
        skops_trusted_types=["sklearn.tree._tree.Tree"],  # made here, so trusted
    )
    paths = []
    for n, name in ((rows, "big.csv"), (small_rows, "small.csv")):
        data = pd.DataFrame(rng.normal(size=(n, len(FEATURES))).round(6), columns=FEATURES)
        data.insert(0, "id", np.arange(n))
        data.to_csv(work / name, index=False)
        paths.append(work / name)
    return model, paths[0], paths[1]


# Run a command from a bare interpreter and write its peak RSS (KiB) to a file: a
# child forked from this process would start with this process's resident pages
# (MLflow, the generated data) counted in its ru_maxrss.
LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run(args: list[str], cwd: Path) -> dict[str, Any]:
    """Run one process; its wall seconds, peak RSS (MiB) and stdout."""
    record = cwd / "peak.rss"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, str(record), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    peak = int(record.read_text()) / 1024
    return {"wall_s": wall, "peak_rss_mib": peak, "stdout": done.stdout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ame-bench-batch-") as tmp:
        work = Path(tmp)
        model, big, small = make_inputs(work, args.rows, args.small_rows)
        (work / "plain.py").write_text(PLAIN_LOOP)
        ame = [str(BIN / "ame"), "predict", str(model), "--id-col", "id", "--json"]
        results: dict[str, Any] = {}
        results["ame"] = run([*ame, "-i", str(big), "-o", "ame.parquet"], work)
        results["ame"]["seconds"] = json.loads(results["ame"].pop("stdout"))["scoring_seconds"]
        results["ame_small"] = run([*ame, "-i", str(small), "-o", "small.parquet"], work)
        results["ame_small"].pop("stdout")
        results["plain_loop"] = run(
            [sys.executable, str(work / "plain.py"), str(model), str(big), "plain.parquet"], work
        )
        last = results["plain_loop"].pop("stdout").strip().splitlines()[-1]
        results["plain_loop"]["seconds"] = json.loads(last)["seconds"]
        results["mlflow_models_predict"] = run(
            [str(BIN / "mlflow"), "models", "predict", "-m", str(model), "-i", str(big),
             "-t", "csv", "-o", "mlflow.json", "--env-manager", "local"],
            work,
        )  # fmt: skip
        results["mlflow_models_predict"].pop("stdout")
        (work / "load.py").write_text(LOAD_ONLY)
        results["load_only"] = run([sys.executable, str(work / "load.py"), str(model)], work)
        results["load_only"].pop("stdout")
    rows = args.rows
    for name in ("ame", "plain_loop", "mlflow_models_predict"):
        r = results[name]
        r["rows_per_s_wall"] = rows / r["wall_s"]
        if "seconds" in r:
            r["rows_per_s_scoring"] = rows / r["seconds"]
    ame_r, plain, mlf = results["ame"], results["plain_loop"], results["mlflow_models_predict"]
    ratios = {
        "ame_vs_plain_loop_scoring": ame_r["rows_per_s_scoring"] / plain["rows_per_s_scoring"],
        "ame_vs_plain_loop_wall": ame_r["rows_per_s_wall"] / plain["rows_per_s_wall"],
        "ame_vs_mlflow_models_predict_wall": ame_r["rows_per_s_wall"] / mlf["rows_per_s_wall"],
        "ceiling_vs_mlflow_models_predict": mlf["wall_s"] / results["load_only"]["wall_s"],
        "ame_peak_rss_growth_mib": ame_r["peak_rss_mib"] - results["ame_small"]["peak_rss_mib"],
        "ame_peak_rss_growth_limit_mib": 0.2 * rows * (len(FEATURES) + 1) * 8 / 2**20,
    }
    report = {
        "rows": rows,
        "small_rows": args.small_rows,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": results,
        "ratios": ratios,
        "targets": {"ame_vs_plain_loop": 0.9, "ame_vs_mlflow_models_predict": 5.0},
    }
    print(f"{'':24} {'wall s':>8} {'scoring s':>10} {'rows/s (wall)':>14} {'peak RSS MiB':>13}")
    for name in ("ame", "ame_small", "plain_loop", "mlflow_models_predict", "load_only"):
        r = results[name]
        scoring = f"{r['seconds']:.2f}" if "seconds" in r else "-"
        rate = f"{r.get('rows_per_s_wall', 0):,.0f}" if "rows_per_s_wall" in r else "-"
        print(f"{name:24} {r['wall_s']:8.2f} {scoring:>10} {rate:>14} {r['peak_rss_mib']:13.0f}")
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
