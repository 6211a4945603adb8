"""Issue 13, item 1: decrypted files of a package killed while loading do not stay behind.

``ame package serve`` decrypts into a private directory and removes it when
the model is loaded; SIGKILL during the load skips that. The directory's name
records its owner, and the next package command removes it (and leaves alone
the directory of a process that is still alive).
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.faults.conftest import ame, sigkill, start, wait_until

MODEL_CODE = """
import mlflow

class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [1] * len(model_input)

mlflow.models.set_model(Constant())
"""

# Loaded (imported) by open_package after the model: it holds the load there,
# with the plaintext on disk, until the test kills the server.
BLOCKING_PRE = """
import os, time
from pathlib import Path

marker = os.environ.get("FAULTS_LOADING_MARKER")
if marker:
    Path(marker).write_text(str(os.getpid()))
    while True:
        time.sleep(0.05)

def preprocess(data):
    return data
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An encrypted package (and its key) of a tiny models-from-code pyfunc with a pre hook."""
    import mlflow.pyfunc

    root = tmp_path_factory.mktemp("pkg")
    code = root / "model_code.py"
    code.write_text(textwrap.dedent(MODEL_CODE))
    mlflow.pyfunc.save_model(str(root / "model"), python_model=str(code), pip_requirements=[])
    hooks = root / "hooks"
    hooks.mkdir()
    (hooks / "pre.py").write_text(textwrap.dedent(BLOCKING_PRE))
    out, key = root / "m.amepkg", root / "m.key"
    built = ame(
        root,
        "package", "build", str(root / "model"), "-o", str(out),
        "--hooks", str(hooks), "--encrypt", "--generate-key", str(key),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return out, key


def test_plaintext_left_by_sigkill_is_removed_by_the_next_package_command(
    package: tuple[Path, Path], tmp_path: Path, reap: list[subprocess.Popen[bytes]]
) -> None:
    from tests.helpers import free_port

    pkg, key = package
    shm = tmp_path / "shm"
    marker = tmp_path / "loading"
    env = {"AME_PACKAGE_TMPDIR": str(shm), "FAULTS_LOADING_MARKER": str(marker)}
    log = tmp_path / "serve.log"
    proc = start(
        tmp_path,
        "package", "serve", str(pkg), "--key-file", str(key), "--port", str(free_port()),
        log=log, env=env,
    )  # fmt: skip
    reap.append(proc)
    wait_until(marker.exists, 120, "the package to be loading", log)
    left = [p for p in shm.iterdir() if p.name.startswith("ame-pkg-")]
    assert len(left) == 1 and (left[0] / "models" / "MLmodel").is_file()
    assert left[0].name.startswith(f"ame-pkg-{proc.pid}-")

    sigkill(proc)
    assert left[0].exists(), "SIGKILL runs no cleanup: the plaintext is still there"
    # A live process's directory (this test's own) must survive the sweep.
    from ame._system import process_start

    live = shm / f"ame-pkg-{os.getpid()}-{process_start(os.getpid())}-live"
    live.mkdir()

    inspected = ame(tmp_path, "package", "inspect", str(pkg), "--json", env=env)
    assert inspected.returncode == 0, inspected.stderr
    assert not left[0].exists()
    assert live.is_dir()
    assert sorted(p.name for p in shm.iterdir()) == [live.name]
