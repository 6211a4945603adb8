"""The tracking agent: a warm process that records task runs for ``ame task run``.

Recording a run takes six small MLflow calls, but a fresh process pays seconds
to import MLflow and open its SQLAlchemy store before the first one, and that
was nearly all of ``ame task run``'s overhead over running the command itself.
So, as build tools keep a daemon warm, the first ``ame task run`` on a store
starts an agent that has MLflow imported and the store open, and later runs
send it their calls over a Unix socket (one JSON line each way).

- One agent per store, interpreter, ame/MLflow installation and working
  directory (relative store URIs mean something only there): the socket's name
  is a hash of those, so an upgrade gets a new agent.
- The socket lives in a 0700 directory of the user's (``$XDG_RUNTIME_DIR`` or
  ``/tmp/ame-<uid>``); only the user can talk to the agent, and it performs
  only the ``Tracker`` calls.
- It leaves after ``AME_AGENT_IDLE_SECONDS`` (600) without a request, or when
  its socket is removed, or its SQLite store's directory is deleted. Its log is
  beside the socket.
- When the agent cannot be reached or dies mid-run, the run goes on with the
  calls made in the CLI's own process (``DirectTracker``): slower, never lost.
  ``AME_TRACKING_AGENT=0`` turns the agent off.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from ame.errors import StoreError
from ame.registry.store import Store

log = logging.getLogger(__name__)

IDLE_ENV = "AME_AGENT_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 600.0
START_TIMEOUT_SECONDS = 120.0
CALL_TIMEOUT_SECONDS = 900.0
# The calls a client may make: the Tracker interface, and a liveness check.
OPERATIONS = frozenset(
    {
        "ensure_experiment",
        "create_run",
        "log_params",
        "set_tag",
        "log_artifact",
        "set_terminated",
        "ping",
    }
)


class AgentUnavailable(OSError):
    """The agent could not be started or reached; the caller records the run itself."""


def runtime_dir() -> Path:
    """The user's private directory for agent sockets, created 0700 and checked to be."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "ame" if base else Path("/tmp") / f"ame-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise AgentUnavailable(f"{path} is not a private directory of this user")
    return path


def _stamp(module: str) -> str:
    """When an installed package last changed, without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec is not None else None
    return str(os.stat(origin).st_mtime_ns) if origin else "-"


def agent_key(store: Store) -> str:
    """The name of the agent serving ``store`` for this installation and directory."""
    from ame import __version__

    parts = [
        store.tracking_uri,
        store.registry_uri,
        store.artifact_root or "",
        sys.executable,
        __version__,
        _stamp("mlflow"),
        str(os.stat(__file__).st_mtime_ns),
        os.getcwd(),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def _idle_seconds() -> float:
    try:
        return float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_SECONDS))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


# --- the client ------------------------------------------------------------


class AgentTracker:
    """``Tracker`` that sends each call to the store's agent, starting it when needed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._sock: Optional[socket.socket] = None
        self._reader: Any = None
        self._direct: Any = None

    # Tracker -----------------------------------------------------------------
    def ensure_experiment(self, name: str) -> str:
        return str(self._call("ensure_experiment", name))

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
        return str(self._call("create_run", experiment_id, run_name, tags))

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        self._call("log_params", run_id, params)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("set_tag", run_id, key, value)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: Optional[str]) -> None:
        self._call("log_artifact", run_id, local_path, artifact_path)

    def set_terminated(self, run_id: str, status: str) -> None:
        self._call("set_terminated", run_id, status)

    # -------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        """The agent's pid and store (starting it if needed); for tests and diagnostics."""
        answer: dict[str, Any] = self._call("ping")
        return answer

    @property
    def via_agent(self) -> bool:
        """False once the calls have fallen back to this process."""
        return self._direct is None

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._reader = None

    def _call(self, op: str, *args: Any) -> Any:
        if self._direct is None:
            try:
                reply = self._exchange(op, args)
            except OSError as exc:
                log.info("tracking agent unavailable (%s); recording in this process", exc)
                from ame.tasks.tracking import DirectTracker

                self._direct = DirectTracker(self.store)
            else:
                if "error" in reply:
                    raise StoreError(f"the store refused {op}: {reply['error']}")
                return reply.get("ok")
        if op == "ping":
            return {"pid": os.getpid(), "direct": True}
        return getattr(self._direct, op)(*args)

    def _exchange(self, op: str, args: tuple[Any, ...]) -> dict[str, Any]:
        if self._sock is None:
            self._sock = connect_or_start(self.store)
            # A wedged agent must not hang the CLI: after this long the call is
            # made here instead (uploading big artifacts can take minutes).
            self._sock.settimeout(CALL_TIMEOUT_SECONDS)
            self._reader = self._sock.makefile("rb")
        try:
            self._sock.sendall(json.dumps({"op": op, "args": list(args)}).encode() + b"\n")
            line = self._reader.readline()
        except BaseException:
            # An interrupted exchange leaves the reply unread: never reuse the
            # connection, or the next call would read this call's answer.
            self.close()
            raise
        if not line:
            self.close()
            raise AgentUnavailable("the tracking agent closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply


def _try_connect(path: Path) -> Optional[socket.socket]:
    """A connection to the agent at ``path``, or None when no agent listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def connect_or_start(store: Store) -> socket.socket:
    """A connection to the store's agent; starts one (once, under a lock) when none answers."""
    folder = runtime_dir()
    key = agent_key(store)
    path = folder / f"{key}.sock"
    sock = _try_connect(path)
    if sock is not None:
        return sock
    with _locked(folder / f"{key}.lock"):
        sock = _try_connect(path)  # another CLI may have started it while we waited
        if sock is not None:
            return sock
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by an agent that was killed
        log_path = folder / f"{key}.log"
        with open(log_path, "wb") as agent_log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ame.tasks.agent",
                    "--socket",
                    str(path),
                    "--store",
                    json.dumps(asdict(store), default=str),
                ],
                stdin=subprocess.DEVNULL,
                stdout=agent_log,
                stderr=agent_log,
                start_new_session=True,  # Ctrl-C in the terminal is not for the agent
                close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            sock = _try_connect(path)
            if sock is not None:
                return sock
            if proc.poll() is not None:
                raise AgentUnavailable(
                    f"the tracking agent exited with code {proc.returncode} (log: {log_path})"
                )
            time.sleep(0.02)
        raise AgentUnavailable(f"the tracking agent did not start in time (log: {log_path})")


# --- the agent ---------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    tracker: Any
    last_request: float
    active: int
    guard: threading.Lock


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        server = self.server
        with server.guard:
            server.active += 1
        try:
            for line in self.rfile:
                server.last_request = time.monotonic()
                self.wfile.write(json.dumps(_answer(server.tracker, line)).encode() + b"\n")
                self.wfile.flush()
        except (ConnectionError, BrokenPipeError):
            pass  # the CLI went away (Ctrl-C); its run is closed by its next call
        finally:
            with server.guard:
                server.active -= 1
                server.last_request = time.monotonic()


def _answer(tracker: Any, line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
        op, args = request["op"], request.get("args", [])
        if op not in OPERATIONS or not isinstance(args, list):
            return {"error": f"unknown operation {op!r}"}
        if op == "ping":
            return {"ok": {"pid": os.getpid(), "tracking_uri": tracker.store.tracking_uri}}
        return {"ok": getattr(tracker, op)(*args)}
    except Exception as exc:  # the store's refusal goes back to the CLI, the agent lives on
        log.warning("%s failed: %s", line[:200], exc)
        return {"error": str(exc) or type(exc).__name__}


def _watch(
    server: _Server, path: Path, inode: int, idle: float, database: Optional[Path]
) -> None:
    """Stop the agent when idle too long, when its socket is gone or replaced, or
    when its SQLite store's directory is gone (a deleted project or temp dir)."""
    while True:
        time.sleep(min(1.0, max(idle / 4, 0.05)))
        try:
            replaced = os.stat(path).st_ino != inode
        except FileNotFoundError:
            replaced = True
        gone = database is not None and not database.parent.exists()
        with server.guard:
            quiet = server.active == 0 and time.monotonic() - server.last_request > idle
        if replaced or quiet or gone:
            why = "socket replaced" if replaced else "store deleted" if gone else "idle"
            log.info("stopping (%s)", why)
            server.shutdown()
            return


def serve_agent(socket_path: Path, store: Store, idle: float) -> None:
    """Open the store, publish the socket atomically, answer until idle."""
    from ame.tasks.tracking import DirectTracker

    tracker = DirectTracker(store)
    tracker.client.search_experiments(max_results=1)  # open the database now, not on call 1
    staging = socket_path.with_name(f"{socket_path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    server = _Server(str(staging), _Handler)
    server.tracker = tracker
    server.last_request = time.monotonic()
    server.active = 0
    server.guard = threading.Lock()
    # Clients see either no socket or one that answers: never a half-started agent.
    os.rename(staging, socket_path)
    inode = os.stat(socket_path).st_ino
    watcher = threading.Thread(
        target=_watch, args=(server, socket_path, inode, idle, store.sqlite_path), daemon=True
    )
    watcher.start()
    log.info("agent %d serving %s on %s", os.getpid(), store.tracking_uri, socket_path)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            if os.stat(socket_path).st_ino == inode:
                socket_path.unlink()


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ame.tasks.agent", description=__doc__)
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--store", required=True, help="the Store's fields as JSON")
    parser.add_argument("--idle", type=float, default=_idle_seconds())
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    fields = json.loads(args.store)
    if fields.get("project_root"):
        fields["project_root"] = Path(fields["project_root"])
    serve_agent(args.socket, Store(**fields), args.idle)


if __name__ == "__main__":
    main()
