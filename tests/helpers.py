"""Helpers every test package shares: free ports, waiting with a deadline, running ``ame``.

One copy of each, so that a fix (a port race, a wait that gives up too early)
is made once. Fixtures that wrap them live in ``tests/conftest.py``.

``run_ame`` runs the CLI in this process, through the same ``ame.cli.main.run``
the console script calls, so that a test pays ``import mlflow`` once per session
instead of once per command. Tests where a signal, a TTY or a process tree is
the point (Ctrl-C, ``kill -9``, detached servers) still start the real
``ame`` console script as a subprocess.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TypeVar, Union

import httpx

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], Optional[T]],
    timeout: float = 30.0,
    what: str = "the condition",
    interval: float = 0.02,
) -> T:
    """Poll ``check`` until it returns something truthy (returned), or fail at the deadline.

    Tests wait on an observable event (a marker file, a log line, a status)
    rather than sleeping a fixed time: as short as the machine allows, and
    never too short on a loaded one.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g}s")
        time.sleep(interval)


def wait_for_file(path: Path, timeout: float = 30.0) -> Path:
    """Wait until ``path`` exists (a marker a child process touches when it gets somewhere)."""
    return wait_until(lambda: path if path.exists() else None, timeout, f"{path} to appear")


def wait_for_http(
    url: str, timeout: float = 60.0, proc: Optional[subprocess.Popen[bytes]] = None
) -> None:
    """Poll ``url`` until it answers 200, failing early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    last: Optional[Exception] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


# --- running ame -------------------------------------------------------------

# The real console script, for tests that need a process of their own.
AME = os.environ.get("AME_TEST_BIN") or str(Path(sys.executable).parent / "ame")


@dataclass(frozen=True)
class AmeResult:
    """What one ``ame`` command did; the fields of ``subprocess.CompletedProcess`` tests read."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr, for assertions that do not care which stream."""
        return self.stdout + self.stderr


def run_ame(
    *args: Union[str, os.PathLike[str]],
    cwd: Optional[Path] = None,
    env: Optional[Mapping[str, Optional[str]]] = None,
    input: Optional[str] = None,
) -> AmeResult:
    """Run ``ame ARGS`` in this process and return its exit code and output.

    Isolation, so that one command cannot change the next: ``os.environ``
    (``env`` is applied on top, a ``None`` value removes a variable; the
    command's own changes, such as ``AME_DEBUG`` or ``MLFLOW_TRACKING_URI``, are
    undone), the working directory, ``sys.argv``, stdin/stdout/stderr (click's
    ``CliRunner`` isolation) and the root logger's handlers and level, which
    ``ame``'s start-up configures. MLflow's tracking URI is left unset, so each
    command finds its store from the project, as the console script does.
    """
    from click.testing import CliRunner

    from ame.cli import main as cli_main

    argv = [str(a) for a in args]
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_argv = sys.argv
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_uris = _mlflow_uris()
    overrides: dict[str, Optional[str]] = {
        "MLFLOW_TRACKING_URI": None,
        "MLFLOW_REGISTRY_URI": None,
        **(env or {}),
    }
    code = 0
    runner = CliRunner()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with runner.isolation(input=input, env=overrides) as (out, err, _mixed):
            sys.argv = ["ame", *argv]
            try:
                cli_main.run()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            stdout = out.getvalue().decode("utf-8", "replace")
            stderr = err.getvalue().decode("utf-8", "replace")
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        _forget_cli_state(saved_handlers)
        _restore_mlflow_uris(saved_uris)
    return AmeResult(["ame", *argv], code, stdout, stderr)


def _forget_cli_state(kept_handlers: list[logging.Handler]) -> None:
    """Undo what a command cached for this process, so the next one starts as a new process.

    The CLI's Rich consoles are made on first use, and ``ame._logging`` adds its
    stderr handler once; both are forgotten (the handler was taken off the root
    logger above) so the next command makes its own.
    """
    common = sys.modules.get("ame.cli.common")
    consoles = getattr(common, "_consoles", None)
    if isinstance(consoles, dict):
        consoles.clear()
    ame_logging = sys.modules.get("ame._logging")
    handler = getattr(ame_logging, "_handler", None)
    if handler is not None and handler not in kept_handlers:
        ame_logging._handler = None  # type: ignore[union-attr]


_URI_HOMES = (
    ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
    ("mlflow.tracking._model_registry.utils", "_registry_uri"),
)


def _mlflow_uris() -> list[object]:
    """MLflow's process-wide tracking and registry URIs, as ``set_tracking_uri`` left them."""
    return [getattr(sys.modules.get(module), name, None) for module, name in _URI_HOMES]


def _restore_mlflow_uris(saved: list[object]) -> None:
    """Put MLflow's process-wide URIs back: a command's store must not become the next test's.

    A command calls ``mlflow.set_tracking_uri`` for its project's store; in a
    process of its own that ends with it, here it would outlive the command.
    The variables are private to MLflow, hence the guarded access.
    """
    for (module, name), value in zip(_URI_HOMES, saved, strict=True):
        home = sys.modules.get(module)
        if home is not None and hasattr(home, name):
            setattr(home, name, value)
