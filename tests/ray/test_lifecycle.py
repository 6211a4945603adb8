"""``ame train --backend ray``: training and validation as Ray jobs; the gate is the exit code."""

from __future__ import annotations

from pathlib import Path

from tests.ray.cluster import Cluster
from tests.ray.helpers import ame, cli_env, write_trained_project


def test_train_validates_and_promotes_through_ray_jobs(
    ray_cluster: Cluster, tmp_path: Path, unique_name: str, shared_store_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    root = write_trained_project(
        tmp_path / "p", unique_name, train_extra="    resources: {cpu: 1}\n"
    )
    env = cli_env(ray_cluster)
    args = ("train", unique_name, "--backend", "ray", "--tracking-uri", shared_store_uri)
    passed = ame(*args, cwd=root, env=env, timeout=600)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"backend: ray at {ray_cluster.dashboard} (--backend)" in passed.stderr
    assert "promoted to @champion" in passed.stdout
    # the registry too: an earlier test in this worker may have set the process-wide one
    client = MlflowClient(tracking_uri=shared_store_uri, registry_uri=shared_store_uri)
    first = client.get_model_version_by_alias(unique_name, "champion")
    assert first.tags["ame.validation"] == "passed"
    for run_id in (first.run_id, first.tags["ame.validation_run_id"]):
        run = client.get_run(run_id)
        assert run.data.tags["ame.backend"] == "ray"
        assert run.data.tags["ame.ray_job_id"] == f"ame-{run_id}"
    assert client.get_run(first.run_id).data.metrics["score"] == 1.0

    # A validation job that exits 1 stops the promotion: the champion stays.
    (root / "fail-validation").write_text("")
    failed = ame(*args, "--allow-same-version", cwd=root, env=env, timeout=600)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "score below threshold" in failed.stdout
    assert client.get_model_version_by_alias(unique_name, "champion").version == first.version
    newest = max(
        client.search_model_versions(f"name='{unique_name}'"), key=lambda v: int(v.version)
    )
    assert newest.version != first.version
    assert client.get_model_version(unique_name, newest.version).tags["ame.validation"] == "failed"
