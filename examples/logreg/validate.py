"""Validate a logreg version: fail (exit 1) when its training score is below 0.6.

As in AME's docs, validation is a task whose exit code decides. ame gives the
version under test in AME_MODEL_NAME / AME_MODEL_VERSION; without them (run by
hand) this falls back to the latest version, as the original script did.
"""

import os
import sys

import mlflow

THRESHOLD = float(os.environ.get("MIN_SCORE", "0.6"))

client = mlflow.MlflowClient()
name = os.environ.get("AME_MODEL_NAME", "logreg")
version = os.environ.get("AME_MODEL_VERSION")
if version is None:
    versions = client.search_model_versions(f"name='{name}'", order_by=["version_number DESC"])
    version = versions[0].version
run_id = client.get_model_version(name, version).run_id
run = mlflow.get_run(run_id)
score = run.data.metrics["score"]
print(f"{name} version {version}: score {score:.3f} (threshold {THRESHOLD})")

if score < THRESHOLD:
    sys.exit(1)
