"""The first step of a task's pod: put the project's files in the workspace.

Run in the pod's init container as ``python -m ame.backends.kubernetes.fetch
KIND URL REVISION DEST``. An archive is downloaded from the tracking server's
artifact store and refused unless its SHA-256 is the one rendered into the
Job, so a pod never runs files other than those ``ame render`` saw; a git
source is cloned and checked out at the rendered commit.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ame.backends.kubernetes.errors import KubernetesError


def unpack(data: bytes, revision: str, dest: Path) -> None:
    """Check ``data`` against ``revision`` (its SHA-256) and extract it under ``dest``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != revision:
        raise KubernetesError(f"source archive has SHA-256 {digest}, expected {revision}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def fetch_archive(url: str, revision: str, dest: Path, tracking_uri: str | None = None) -> None:
    """Download the archive at ``url`` (an artifact URI) and unpack it under ``dest``.

    ``mlflow-artifacts:/`` URIs are served by the tracking server: ``tracking_uri``,
    else ``$MLFLOW_TRACKING_URI`` (which the rendered pod has).
    """
    import mlflow.artifacts

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=url, dst_path=tmp, tracking_uri=uri
        )
        unpack(Path(local).read_bytes(), revision, dest)


def fetch_git(url: str, revision: str, dest: Path) -> None:
    """Clone ``url`` into ``dest`` and check out ``revision``."""
    for args in (
        ["git", "clone", "--quiet", "--no-checkout", url, str(dest)],
        ["git", "-C", str(dest), "checkout", "--quiet", revision],
    ):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise KubernetesError(f"{' '.join(args[:3])} failed: {done.stderr.strip()}")


def main(argv: list[str]) -> int:
    """``KIND URL REVISION DEST``; prints one line on failure and returns 1."""
    if len(argv) != 4 or argv[0] not in ("git", "archive"):
        print("usage: python -m ame.backends.kubernetes.fetch git|archive URL REVISION DEST")
        return 2
    kind, url, revision, dest = argv
    try:
        (fetch_git if kind == "git" else fetch_archive)(url, revision, Path(dest))
    except KubernetesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
