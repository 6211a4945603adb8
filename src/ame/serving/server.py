"""Running the server: load once, bind once, then one worker or a supervised few.

The model is loaded in the first process, before any worker exists, so a bad
reference fails fast with a clear error and workers start in milliseconds by
``fork`` (sharing the loaded model's memory copy-on-write) instead of each
importing MLflow and loading the model again. The listening socket is bound
once and inherited by every worker; the kernel hands each connection to one of
them. The supervisor restarts a worker that dies and, on SIGTERM or SIGINT,
passes the signal on so every worker drains its in-flight requests (uvicorn's
graceful shutdown) before the server exits.

A memory limit (``--max-memory``, a deployment's ``resources.memory``) is
enforced per worker the way Kubernetes enforces a container's: the supervisor
watches each worker's resident memory and kills one that goes over, then
starts a new one. Resident memory, not ``RLIMIT_AS``: a Python that imports
numpy reserves address space it never touches (see ``ame._system.tree_rss``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Optional

from ame.errors import ServingError
from ame.serving.options import ServingOptions

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 30
KEEP_ALIVE_SECONDS = 75
# A worker that dies this many times within CRASH_WINDOW seconds means the
# model itself is broken: stop instead of restarting it forever.
CRASH_LIMIT = 5
CRASH_WINDOW = 30.0
# How often the supervisor looks at its workers' memory when a limit is set.
MEMORY_CHECK_SECONDS = 0.5


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket every worker shares; ServingError if the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServingError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_grpc_port(host: str, port: int) -> None:
    """ServingError now, before any worker starts, if the gRPC port cannot be had.

    Bound as gRPC binds it (``SO_REUSEPORT``): free, or held only by sockets
    that share it (another ame being replaced by this one), is fine.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServingError(
                f"cannot listen for gRPC on {host}:{port}: {exc.strerror or exc}"
            ) from exc


def run_worker(app: Any, sock: socket.socket, log_level: str = "info") -> None:
    """Serve ``app`` on ``sock`` in this process until SIGTERM/SIGINT (uvicorn)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        # Longer than uvicorn's 5 s: a busy client reusing a pooled connection
        # the server has just closed would see a reset instead of an answer.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Forks ``workers`` children running ``target`` and keeps that many alive.

    With ``memory_limit`` (bytes) a worker whose process tree holds more
    resident memory is killed and replaced, like an OOM-killed container.
    ``after_start`` runs in the supervisor once the first workers are forked
    (slow start-up work that must not delay them).
    ``gave_up`` tells, after ``run``, that workers died too often to go on.
    """

    def __init__(
        self,
        workers: int,
        target: Callable[[], None],
        on_exit: Callable[[int], None],
        memory_limit: Optional[int] = None,
        after_start: Optional[Callable[[], None]] = None,
    ) -> None:
        self.workers = workers
        self.after_start = after_start
        self.target = target
        self.on_exit = on_exit
        self.memory_limit = memory_limit
        self.children: dict[int, float] = {}
        self.stopping = False
        self.gave_up = False
        self._crashes: list[float] = []

    def _spawn(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _die_with(parent)
                self.target()
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()
        log.info("worker %d started", pid)

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _check_memory(self) -> None:
        """Kill every worker over the memory limit (``run`` then starts a new one)."""
        from ame._system import format_bytes, tree_rss

        limit = self.memory_limit
        if not limit or self.stopping:
            return
        for pid in list(self.children):
            used = tree_rss(pid)  # 0 for a worker already gone
            if used > limit:
                log.error(
                    "worker %d killed: memory limit %s exceeded (%s resident)",
                    pid,
                    format_bytes(limit),
                    format_bytes(used),
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _wait(self) -> tuple[int, int]:
        """The next worker to exit; checks memory meanwhile when there is a limit."""
        if not self.memory_limit:
            return os.wait()
        next_check = 0.0
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                return pid, status
            now = time.monotonic()
            if now >= next_check:
                self._check_memory()
                next_check = now + MEMORY_CHECK_SECONDS
            time.sleep(0.05)

    def run(self) -> None:
        """Start the workers and supervise them until a stop signal; returns when all exited."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.workers):
                self._spawn()
            if self.after_start is not None:
                try:
                    self.after_start()
                except Exception:
                    log.exception("start-up task failed")
            while self.children:
                try:
                    pid, status = self._wait()
                except ChildProcessError:
                    break
                if self.children.pop(pid, None) is None:
                    continue
                self.on_exit(pid)
                if self.stopping:
                    continue
                log.warning("worker %d exited (%s); starting a new one", pid, describe_exit(status))
                now = time.monotonic()
                self._crashes = [t for t in self._crashes if now - t < CRASH_WINDOW] + [now]
                if len(self._crashes) > CRASH_LIMIT:
                    log.error("workers keep dying; stopping the server")
                    self.gave_up = True
                    self._stop(signal.SIGTERM, None)
                    continue
                self._spawn()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _preload() -> None:
    """Import the server stack once, before forking, so workers do not each import it."""
    import importlib

    for name in (
        "uvicorn",
        "uvloop",
        "httptools",
        "uvicorn.protocols.http.httptools_impl",
        "uvicorn.lifespan.on",
    ):
        # a missing module is reported by uvicorn itself when it starts
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _start_loading(source: str, tracking_uri: Optional[str]) -> Any:
    """Resolve and load ``source``, overlapping the registry lookup with imports when it can.

    See ``ame.serving.prefetch``: with two CPUs a registry reference is resolved
    and downloaded by a forked child while this process imports the model stack.
    """
    from pathlib import Path

    from ame.serving import prefetch
    from ame.serving.sources import load_local, load_source, names_registered_model, parse_source

    pending = None
    if prefetch.worth_forking():
        if names_registered_model(source):
            pending = prefetch.start_resolution(source, tracking_uri)
            prefetch.warm_model_stack()
        else:
            spec = parse_source(source)
            if spec.kind == "local":
                prefetch.warm_model_stack(prefetch.local_flavors(Path(spec.text)))
    # Set only now: MLflow reads it when loading, and importing it imports mlflow.
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT

    os.environ[_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name] = "true"
    if pending is None:
        return load_source(source, tracking_uri=tracking_uri)
    found = pending.result()
    log.info("loading %s (from %s)", found.uri, source)
    return load_local(
        found.local_path, found.uri, found.name, found.version, found.uri, found.follows
    )


def _die_with(parent: int) -> None:
    """Have the kernel SIGTERM this worker when its supervisor dies (Linux).

    A supervisor killed outright (SIGKILL, OOM) cannot stop its workers, and
    orphaned workers would keep the port and serve a model nobody manages; with
    the parent-death signal they drain and exit instead.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _drained(signum: int, _frame: Any) -> None:
    """A stop signal outside uvicorn: exit 0, not killed by the signal.

    uvicorn re-raises the signal that stopped it once it has drained, which
    kills a single-worker server with -SIGTERM; a drained server exits 0, as
    the supervisor of several workers does. Installed just before uvicorn
    starts, so a signal that arrives before uvicorn listens stops it too.
    """
    raise SystemExit(0)


def describe_exit(status: int) -> str:
    """A ``waitpid`` status in words: ``exit code 3`` or ``killed by signal 9``."""
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def serve(
    source: str,
    options: Optional[ServingOptions] = None,
    *,
    tracking_uri: Optional[str] = None,
    log_level: str = "info",
    payload_log: Optional[Any] = None,
) -> None:
    """Serve the model ``source`` names over HTTP until SIGTERM or SIGINT.

    ``source`` is a ``ModelSource`` spec (see ``ame.serving.sources``): a model
    reference (``NAME``, ``NAME/3``, ``NAME@champion``, ``models:/...``), a
    local MLflow model directory, or ``SCHEME:REST`` for a registered resolver
    (``package:PATH``). ``options`` is the one merged ``ServingOptions``
    (``ame.serving.options``; its defaults when None): the server reads it and
    decides no default of its own. Blocks; raises ``ServingError`` (or a
    registry error) before listening if the model cannot be resolved or loaded,
    or the port is taken. ``options.max_memory`` (bytes) caps each worker's
    resident memory: a worker over it is killed and restarted. Raises
    ``ServingError`` after stopping if workers died more than ``CRASH_LIMIT``
    times in ``CRASH_WINDOW`` seconds. With ``options.grpc_port`` every worker
    also serves v2 over gRPC on that port.

    The server writes no deployment record: a backend that wants to know which
    version it serves asks it (``GET /v2/models/NAME``).
    """
    opts = options or ServingOptions()
    host, port, workers = opts.host, opts.port, opts.workers
    max_memory, grpc_port = opts.max_memory, opts.grpc_port
    if workers < 1:
        raise ServingError("--workers must be at least 1")
    if opts.max_batch_size < 1:
        raise ServingError("--max-batch-size must be at least 1")
    if max_memory is not None and max_memory <= 0:
        raise ServingError("--max-memory must be a positive size such as 512Mi or 2G")
    metrics_dir: Optional[str] = None
    if workers > 1:
        from ame.serving.metrics import enable_multiprocess

        # Connections of a SQLite registry must not be shared across fork.
        os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
        metrics_dir = tempfile.mkdtemp(prefix="ame-metrics-")
        enable_multiprocess(metrics_dir)

    from ame.serving.app import AppConfig, build_app
    from ame.serving.metrics import mark_dead
    from ame.serving.sources import deferred_checks

    # Start-up creates hundreds of thousands of objects (imports, the model) and
    # no garbage: collecting during it costs ~15% of the start. Frozen after
    # loading, those objects are never scanned again, and workers forked from
    # here do not copy the pages the collector would otherwise touch.
    gc.disable()
    try:
        model = _start_loading(source, tracking_uri)
    finally:
        gc.enable()
    gc.freeze()
    config = AppConfig(
        max_batch_size=opts.max_batch_size,
        max_latency_ms=opts.max_latency_ms,
        max_body_bytes=opts.max_body_bytes,
        poll_interval=opts.poll_interval,
        tracking_uri=tracking_uri,
        grpc_port=grpc_port,
        grpc_host=host,
        payload_log=payload_log,
    )
    single = workers == 1 and not max_memory
    sock = bind_socket(host, port)
    if grpc_port:
        try:
            check_grpc_port(host, grpc_port)
        except ServingError:
            sock.close()
            raise
    _preload()
    log.info(
        "serving %s version %s on http://%s:%d%s with %d worker(s)",
        model.name,
        model.version,
        host,
        port,
        f" (gRPC on port {grpc_port})" if grpc_port else "",
        workers,
    )
    try:
        if single:
            app = build_app(model, replace(config, run_deferred_checks=True))
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, _drained)
            run_worker(app, sock, log_level)
        else:
            # Each worker builds its own app after the fork: metrics, threads
            # and the event loop must belong to the process that uses them.
            supervisor = Supervisor(
                workers,
                lambda: run_worker(build_app(model, config), sock, log_level),
                mark_dead,
                memory_limit=max_memory,
                after_start=lambda: deferred_checks(model),
            )
            supervisor.run()
            if supervisor.gave_up:
                raise ServingError(
                    f"workers died more than {CRASH_LIMIT} times in {CRASH_WINDOW:.0f}s; "
                    "the server stopped (see the log above for why)"
                )
    finally:
        sock.close()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        sys.stdout.flush()
