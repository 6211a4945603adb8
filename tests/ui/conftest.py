"""Fixtures for ``ame ui``: a project with a run that logged a model, real servers, Chromium.

The project is a real folder with an embedded store; the run is logged by a
real ``python`` subprocess (so this process's MLflow globals stay untouched);
``ame ui`` runs as a real process on 127.0.0.1; the browser is Debian's
Chromium driven by Playwright, started once per session. Without Chromium the
browser tests fail with the way to install it: they never skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.conftest import free_port, wait_for_http

AME = str(Path(sys.executable).parent / "ame")
CHROMIUM = os.environ.get("AME_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A model the *packaged-encrypted* tab is given: MLSteam's layout of model
# files (with the loader the manifest names), hook files and a manifest.
LOADER = textwrap.dedent(
    '''
    """The manifest's entry point: a model that doubles its input and adds an offset."""
    from pathlib import Path


    class Doubler:
        def __init__(self, offset):
            self.offset = offset

        def predict(self, frame):
            return [float(v) * 2 + self.offset for v in frame["x"]]


    def load(files_dir):
        return Doubler(float((Path(files_dir) / "models" / "offset.txt").read_text()))
    '''
)
PRE = "def preprocess(inputs):\n    return inputs[['x']] + 1.0\n"
POST = "def postprocess(outputs):\n    return [v * 10 for v in outputs]\n"
MANIFEST = {
    "entry_point": "models.loader:load",
    "files": ["models/offset.txt", "hooks/pre.py", "hooks/post.py"],
    "requirements": ["mlflow"],
}
# A files version's hook: ``load(path)`` returns the model (see files_model_code.py).
HOOK = "def load(path):\n    return {'files': path}\n"

LOG_RUN = textwrap.dedent(
    """
    import mlflow, sys

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.set_experiment(sys.argv[1])
    with mlflow.start_run(run_name="train-echo") as run:
        mlflow.log_metric("accuracy", 0.93)
        mlflow.pyfunc.log_model(name="model", python_model=Echo())
    print(run.info.run_id)
    """
)


@dataclass(frozen=True)
class Project:
    """A project folder, its store, and the run that logged a model."""

    root: Path
    tracking_uri: str
    run_id: str

    def registry(self) -> Any:
        """The library's registry on this project's store (what the UI itself calls)."""
        from ame.registry.facade import Registry
        from ame.registry.store import resolve_store

        return Registry(resolve_store(self.tracking_uri, self.root))


def make_project(root: Path) -> Project:
    """A project with ame.yml, seed-004 files for packages, and a run that logged a model."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ame.yml").write_text("project: uitest\n")
    models = root / "models"
    models.mkdir()
    (models / "loader.py").write_text(LOADER)
    (models / "offset.txt").write_text("0.5\n")
    hooks = root / "hooks"
    hooks.mkdir()
    (hooks / "pre.py").write_text(PRE)
    (hooks / "post.py").write_text(POST)
    (root / "manifest.json").write_text(json.dumps(MANIFEST, indent=1))
    plain = root / "plain"
    plain.mkdir()
    (plain / "hook.py").write_text(HOOK)
    (plain / "weights.txt").write_text("1 2 3\n")
    db = root / ".ame" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    # The store's schema and the project's experiment (with its artifact
    # location under .ame/artifacts) come from ame, as for any command.
    from ame.registry.store import ensure_experiment, resolve_store

    ensure_experiment(resolve_store(uri, root), "uitest")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", LOG_RUN, "uitest"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return Project(root, uri, done.stdout.strip().splitlines()[-1])


@dataclass
class UiServer:
    """A running ``ame ui`` process."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def launch_ui(project: Project, *args: str, host: str = "127.0.0.1") -> UiServer:
    """Start ``ame ui`` on a free port (without waiting for it)."""
    port = free_port()
    log = project.root / f"ui-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AME_UI"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [AME, "ui", "--host", host, "--port", str(port), "-f", str(project.root), *args],
            cwd=project.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return UiServer(f"http://127.0.0.1:{port}", proc, log)


def start_ui(
    project: Project, *args: str, host: str = "127.0.0.1", health_token: Optional[str] = None
) -> UiServer:
    """Start ``ame ui`` on a free port and wait until it answers."""
    server = launch_ui(project, *args, host=host)
    try:
        if health_token is None:
            wait_for_http(f"{server.url}/_health", timeout=120, proc=server.proc)
        else:
            wait_for_bearer(f"{server.url}/_health", health_token, server.proc)
    except BaseException:
        stop_ui(server)
        raise RuntimeError(f"ame ui did not start: {server.output()[-3000:]}") from None
    return server


def wait_for_bearer(url: str, token: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` with the bearer token until it answers 200."""
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ame ui exited with {proc.returncode}")
        try:
            if httpx.get(url, headers={"authorization": f"Bearer {token}"}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def stop_ui(server: UiServer) -> None:
    """Stop the server and wait for it (never leave it running)."""
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=20)


@pytest.fixture(scope="session")
def ui_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The browser tests' project (one per session: logging a run costs seconds)."""
    return make_project(tmp_path_factory.mktemp("ui-project") / "proj")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, once per session; fails (never skips) without it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(apt-get install -y chromium; `make test` installs it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
