"""Start-up in parallel: resolve the version in a child while the server imports its stack.

Most of a server's start-up is imports. For a scikit-learn model, importing
``skops.io`` (which MLflow's loader needs) takes seconds: at import it scans
every scikit-learn estimator and, for each of numpy's and scipy's ufuncs, every
loaded module. Importing ``mlflow`` and opening the registry's SQLAlchemy store
takes seconds too. Done one after the other they add up; they do not depend
on each other until the model is loaded.

So the server forks a short-lived child before importing MLflow. The child
resolves the reference against the registry and downloads the version's files,
then writes one JSON line (the version, the local path, or the error) to a pipe
and exits. Meanwhile the server imports what loading will need: ``skops.io``
first (its ufunc scan is cheaper while fewer modules are loaded), then
``mlflow.pyfunc``. The skops import is a bet on the most common flavor; for
other flavors it costs a fraction of a second that would otherwise be spent
waiting for the child. With one CPU there is nothing to overlap, and the
server resolves and loads in one process as before.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import threading
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from ame.errors import AmeError, ServingError
from ame.registry.resolved import ResolvedVersion
from ame.serving.server import describe_exit

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PrefetchedVersion(ResolvedVersion):
    """The registry's record of the version the child resolved, and where its files are now."""

    local_path: str


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def worth_forking() -> bool:
    """Overlap only when a second CPU can run the child and forking is safe (no threads)."""
    return hasattr(os, "fork") and usable_cpus() > 1 and threading.active_count() == 1


def warm_model_stack(flavors: Optional[dict[str, Any]] = None) -> None:
    """Import what loading a model will need, skops first; ``flavors`` narrows the guess.

    Called while the child resolves. With ``flavors`` known (a local MLmodel),
    ``skops.io`` is imported only for a scikit-learn model saved in skops format.
    """
    wants_skops = True
    if flavors is not None:
        sklearn = flavors.get("sklearn") or {}
        wants_skops = sklearn.get("serialization_format") == "skops"
    if wants_skops:
        with contextlib.suppress(ImportError):
            importlib.import_module("skops.io")
    importlib.import_module("mlflow.pyfunc")


def local_flavors(path: Path) -> Optional[dict[str, Any]]:
    """The ``flavors`` of a local model directory's MLmodel, or None when unreadable."""
    import yaml

    try:
        data = yaml.safe_load((path / "MLmodel").read_text())
    except (OSError, yaml.YAMLError):
        return None
    flavors = data.get("flavors") if isinstance(data, dict) else None
    return flavors if isinstance(flavors, dict) else None


class PendingResolution:
    """A child process resolving one registry reference; ``result()`` waits for it."""

    def __init__(self, pid: int, fd: int, text: str) -> None:
        self._pid = pid
        self._fd = fd
        self._text = text

    def result(self) -> PrefetchedVersion:
        """The child's answer, or its error raised here with the same type and message."""
        chunks = []
        try:
            while chunk := os.read(self._fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            _, status = os.waitpid(self._pid, 0)
        try:
            answer = json.loads(b"".join(chunks) or b"null")
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ServingError(
                f"could not resolve '{self._text}': the resolving process ended "
                f"({describe_exit(status)}) without an answer"
            )
        if "error" in answer:
            raise _rebuild_error(answer["error"], answer.get("message", ""))
        return PrefetchedVersion(**answer["resolved"])


def start_resolution(text: str, tracking_uri: Optional[str]) -> PendingResolution:
    """Fork a child that resolves and downloads ``text``; returns at once."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer on the pipe, then leave without running atexit
        code = 0
        try:
            gc.disable()  # a short-lived process: collecting is wasted work
            os.close(read_fd)
            answer = _resolve_in_child(text, tracking_uri)
            with os.fdopen(write_fd, "wb") as out:
                out.write(json.dumps(answer).encode())
        except BaseException:  # the parent reports a missing answer itself
            code = 1
            with contextlib.suppress(Exception):
                log.debug("resolving child failed:\n%s", traceback.format_exc())
        finally:
            os._exit(code)
    os.close(write_fd)
    return PendingResolution(pid, read_fd, text)


def _resolve_in_child(text: str, tracking_uri: Optional[str]) -> dict[str, Any]:
    from ame.serving.sources import download_version, resolve_reference

    try:
        resolved = resolve_reference(text, tracking_uri)
        local = download_version(resolved.uri)
    except AmeError as exc:
        return {"error": f"{type(exc).__module__}:{type(exc).__qualname__}", "message": str(exc)}
    except Exception as exc:  # MLflow's own errors: the message is what the user needs
        return {"error": "", "message": f"could not resolve '{text}': {exc}"}
    return {"resolved": {**asdict(resolved), "local_path": local}}


def _rebuild_error(kind: str, message: str) -> AmeError:
    """The child's ``AmeError`` subclass again, so the CLI exits as it would have."""
    module_name, _, class_name = kind.partition(":")
    if module_name.startswith("ame."):
        with contextlib.suppress(ImportError, AttributeError):
            cls = getattr(importlib.import_module(module_name), class_name)
            if isinstance(cls, type) and issubclass(cls, AmeError):
                with contextlib.suppress(TypeError):  # a subclass with another signature
                    return cls(message)
    return ServingError(message)
