"""Benchmark: save -> register -> load through ame, against the same calls on raw MLflow.

Both paths use the same store type (an embedded SQLite store in a temporary
project, or ``--tracking-uri``), the same tiny sklearn model, the same pip
requirements (so MLflow's seconds-long requirement inference does not drown
the comparison) and run interleaved in one process, after one warm-up round
each. The figure is the median round trip; the target ratio ame/raw is <= 1.1.

    .venv/bin/python bench/registry.py --repeat 7

Writes ``bench/results/registry.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

PIP = ["scikit-learn", "pandas"]
STAGES = ("save", "register", "load")
RESULTS = Path(__file__).resolve().parent / "results" / "registry.json"


def _tiny() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    return LogisticRegression().fit(X, [0, 0, 1, 1]), X


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def ame_round(store: Any, model: Any, X: Any, name: str) -> dict[str, float]:
    """save -> register -> load+predict through ame's Saver, Register and Loader."""
    from ame.registry import BuiltinSaver, CustomLoader, MlflowRegister

    saver = BuiltinSaver(flavor="sklearn", store=store, pip_requirements=PIP)
    t_save, info = _timed(lambda: saver.save(model, input_example=X.head(2)))
    register = MlflowRegister(store=store)
    t_reg, version = _timed(lambda: register.register(name, info.model_uri))
    loader = CustomLoader(store=store)
    t_load, outputs = _timed(lambda: loader.load(f"{name}/{version.version}").predict(X))
    assert outputs.column() == [0, 0, 1, 1]
    return {"save": t_save, "register": t_reg, "load": t_load}


def raw_round(store: Any, experiment_id: str, model: Any, X: Any, name: str) -> dict[str, float]:
    """The same three steps with plain MLflow calls."""
    import mlflow

    def save() -> Any:
        with mlflow.start_run(experiment_id=experiment_id):
            return mlflow.sklearn.log_model(
                model, name="model", input_example=X.head(2), pip_requirements=PIP
            )

    t_save, info = _timed(save)
    t_reg, version = _timed(lambda: mlflow.register_model(info.model_uri, name))

    def load() -> Any:
        return mlflow.pyfunc.load_model(f"models:/{name}/{version.version}").predict(X)

    t_load, predictions = _timed(load)
    assert list(predictions) == [0, 0, 1, 1]
    return {"save": t_save, "register": t_reg, "load": t_load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="measured rounds per path")
    parser.add_argument("--tracking-uri", default=None, help="a server instead of embedded")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow

    from ame.registry import activate, ensure_experiment, resolve_store

    with tempfile.TemporaryDirectory(prefix="ame-bench-registry-") as tmp:
        project = Path(tmp)
        (project / "ame.yml").write_text("project: bench\n")
        store = resolve_store(args.tracking_uri, project)
        activate(store)
        experiment_id = ensure_experiment(store)
        model, X = _tiny()
        tag = uuid.uuid4().hex[:6]
        ame_name, raw_name = f"bench-ame-{tag}", f"bench-raw-{tag}"

        # Warm-up: imports, first schema use, first flavor load.
        ame_round(store, model, X, ame_name)
        activate(store)
        raw_round(store, experiment_id, model, X, raw_name)

        rounds: dict[str, list[dict[str, float]]] = {"ame": [], "raw": []}
        for i in range(args.repeat):
            # Alternate which goes first so machine load drifts hit both alike.
            order = ("ame", "raw") if i % 2 == 0 else ("raw", "ame")
            for path in order:
                if path == "ame":
                    rounds["ame"].append(ame_round(store, model, X, ame_name))
                else:
                    activate(store)
                    rounds["raw"].append(raw_round(store, experiment_id, model, X, raw_name))
        mlflow.end_run()

    def med(path: str, key: str | None = None) -> float:
        values = [sum(r.values()) if key is None else r[key] for r in rounds[path]]
        return statistics.median(values)

    result = {
        "benchmark": "registry save->register->load",
        "store": "server" if args.tracking_uri else "embedded-sqlite",
        "repeat": args.repeat,
        "median_s": {
            path: {"total": med(path), **{k: med(path, k) for k in STAGES}}
            for path in ("ame", "raw")
        },
        "ratio": med("ame") / med("raw"),
        "ratio_by_stage": {k: med("ame", k) / med("raw", k) for k in STAGES},
        "target_ratio": 1.1,
        "rounds": rounds,
        "python": sys.version.split()[0],
        "mlflow": mlflow.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2))
    os.replace(tmp_out, args.out)

    print(f"registry round trip, median of {args.repeat} ({result['store']}):")
    for path in ("ame", "raw"):
        stages = "  ".join(f"{k} {med(path, k) * 1000:7.1f} ms" for k in STAGES)
        print(f"  {path:4s} total {med(path) * 1000:7.1f} ms   {stages}")
    print(f"  ratio ame/raw = {result['ratio']:.3f} (target <= 1.1)  -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
