"""Eight processes registering versions of one model at once on a fresh embedded store.

This is the case SQLite handles worst: no tables yet (every process races to
create the schema) and eight writers released together by a barrier. ame's
file lock and retries must give versions 1 to 8, each exactly once, no error.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from .conftest import PIP, Tiny

WORKERS = 8


def _register(root: str, name: str, source: str, barrier: Any, results: Any) -> None:
    import os

    # The embedded store is the point: a tracking URI inherited from the parent
    # (MLflow copies it into os.environ) would send every worker elsewhere.
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(var, None)
    try:
        # Import everything heavy before the barrier, without opening the
        # database: the workers then hit the fresh file within milliseconds of
        # each other instead of being spread out by their import times.
        import mlflow.tracking  # noqa: F401
        import sqlalchemy  # noqa: F401

        from ame.registry import Registry, resolve_store

        store = resolve_store(project_root=Path(root))
        results.put(("store", store.tracking_uri))
        registry = Registry(store)
        barrier.wait(timeout=400)
        version = registry.register(name, source, tags={"worker": "yes"})
        results.put(("ok", version.version))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_eight_processes_register_one_model(tmp_path: Path, tiny: Tiny, unique_name: str) -> None:
    import mlflow

    root = tmp_path / "project"
    root.mkdir()
    (root / "ame.yml").write_text("project: race\n")
    # A saved model on disk: registering it touches only the (not yet created) database.
    source = tmp_path / "saved"
    mlflow.sklearn.save_model(tiny.model, str(source), pip_requirements=PIP)
    assert not (root / ".ame" / "mlflow.db").exists()

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_register, args=(str(root), unique_name, str(source), barrier, results))
        for _ in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    stores: list[str] = []
    outcomes: list[tuple[str, str]] = []
    while len(outcomes) < WORKERS:
        kind, detail = results.get(timeout=540)
        if kind == "store":
            stores.append(detail)
        else:
            outcomes.append((kind, detail))
    for proc in procs:
        proc.join(timeout=60)
    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert errors == []
    assert stores == [f"sqlite:///{root.resolve() / '.ame' / 'mlflow.db'}"] * WORKERS
    assert sorted(int(v) for _, v in outcomes) == list(range(1, WORKERS + 1))
    assert all(proc.exitcode == 0 for proc in procs)

    from ame.registry import Registry, resolve_store

    versions = list(Registry(resolve_store(project_root=root)).iter_versions(unique_name))
    assert sorted(int(v.version) for v in versions) == list(range(1, WORKERS + 1))
    assert all(v.tags == {"worker": "yes"} for v in versions)
