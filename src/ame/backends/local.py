"""Local deployments: ``ame serve`` running detached, one per model, tracked on disk.

A deployment is a server process started in its own session (so it outlives
the CLI), logging to ``<project>/.ame/deployments/<model>.log`` and described
by ``<project>/.ame/deployments/<model>.json`` (format in docs/architecture.md).
This module is the one owner of that record format: only it reads or writes
records (the registry and the server do not). A record says what was started
(model, reference, pid, port, log); what a live server serves *now* is asked of
the server itself (``GET /v2/models/NAME``), since a server following an alias
swaps versions without writing anything down. Listing reads records, checks
their process and asks their server; stopping signals the recorded pid.

Replacing a running deployment never drops requests: a deployment that already
follows the requested alias is left alone (its server swaps versions by itself
when the alias moves); otherwise the new server is started on a fresh port,
and the old one is drained and stopped only once the new one is ready.

The model's ``deployment.resources`` in ame.yml are honoured by the server
itself (``ame serve`` reads them, so a deployment and a foreground server
behave alike): ``cpu`` pins the server to that many cores and sizes the
numeric libraries' thread pools, ``nvidia.com/gpu`` picks the visible GPUs,
and ``memory`` caps each worker's resident memory (a worker over it is killed
and restarted, as Kubernetes does with a container).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.errors import DeploymentError, ResourceUnavailableError, ServingError

if TYPE_CHECKING:
    from ame.serving.options import ServingOptions
    from ame.spec.model import Resources
    from ame.tasks.resources import Limits

log = logging.getLogger(__name__)

DEPLOYMENTS_DIR = Path(".ame") / "deployments"
READY_PATH = "/v2/health/ready"


def resource_limits(resources: Resources) -> Limits:
    """What one machine can enforce of a deployment's resources (as for tasks)."""
    from ame.tasks.resources import limits_for

    try:
        return limits_for(resources)
    except ResourceUnavailableError as exc:
        raise ServingError(str(exc).replace("the task asks", "the deployment asks")) from exc


def apply_resources(resources: Resources) -> Optional[int]:
    """Honour a deployment's ``cpu`` and GPUs in this process; returns its memory limit.

    Call before numpy or the model is imported: thread-pool sizes are read when
    the libraries load. The memory limit is enforced per worker by the server's
    supervisor (``ame.serving.server``), so it is returned rather than applied.
    """
    limits = resource_limits(resources)
    os.environ.update(limits.env)
    pin = limits.preexec()
    if pin is not None:
        pin()
    return limits.memory


@dataclass
class DeploymentInfo:
    """A deployment record plus what was observed about it now."""

    model: str
    ref: str
    version: str
    url: str
    pid: int
    port: int
    log: str
    started: float
    workers: int = 1
    # The v2 gRPC port, when the deployment serves one (``--grpc-port``).
    grpc_port: Optional[int] = None
    # "starting" from the moment its server is launched (so that a CLI killed
    # while waiting still leaves a record to list and stop), "running" once ready.
    state: str = "running"
    # The record of the deployment this one replaces, until that one is stopped.
    previous: Optional[dict[str, Any]] = None
    alive: bool = False
    healthy: bool = False

    def record(self) -> dict[str, Any]:
        """The on-disk record (without the observed fields)."""
        data = asdict(self)
        data.pop("alive")
        data.pop("healthy")
        return data


def project_root_for(project_root: Optional[Path]) -> Path:
    """The project whose ``.ame/deployments`` holds the records (cwd outside a project)."""
    if project_root is not None:
        return project_root.resolve()
    from ame.spec.discovery import find_project_root

    return (find_project_root() or Path.cwd()).resolve()


def deployments_dir(project_root: Path) -> Path:
    return project_root / DEPLOYMENTS_DIR


def _safe_name(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model)


def record_path(project_root: Path, model: str) -> Path:
    return deployments_dir(project_root) / f"{_safe_name(model)}.json"


def log_path(project_root: Path, model: str) -> Path:
    return deployments_dir(project_root) / f"{_safe_name(model)}.log"


def _alive(pid: int) -> bool:
    if pid <= 0:  # a record written just before its server was launched
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _healthy(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(url + READY_PATH, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _read_record(path: Path) -> Optional[DeploymentInfo]:
    from ame.boundedio import InputLimitError, loads_json, read_regular_file

    try:
        data = loads_json(read_regular_file(path, 1 << 20, what="deployment record"))
        fields = DeploymentInfo.__dataclass_fields__
        info = DeploymentInfo(**{k: v for k, v in data.items() if k in fields})
        info.pid, info.port = int(info.pid), int(info.port)
        return info
    except (OSError, ValueError, TypeError, InputLimitError) as exc:
        log.debug("unreadable deployment record %s: %s", path, exc)
        return None


def _write_record(path: Path, info: DeploymentInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info.record(), indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _serve_command() -> list[str]:
    # ``ame serve`` through the one entry point; its lazy command table imports
    # the serve command's module only, not every command group of the CLI.
    return [sys.executable, "-m", "ame.cli.main", "serve"]


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    # the last "error:" line of the CLI is the most useful one when there is one
    errors = [line for line in text if line.startswith("error:")]
    return errors[-1] if errors else " | ".join(text[-lines:])


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM (graceful drain), then SIGKILL the whole session after ``timeout``."""
    import psutil

    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        log.warning("deployment pid %d did not stop in %.0fs; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    except psutil.NoSuchProcess:
        pass
    # workers of a supervisor killed earlier may linger in the session
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _served_version(url: str, model: str) -> Optional[str]:
    import httpx

    try:
        resp = httpx.get(f"{url}/v2/models/{model}", timeout=5.0)
        versions = resp.json().get("versions") or []
        return str(versions[0]) if resp.status_code == 200 and versions else None
    except (httpx.HTTPError, ValueError):
        return None


def _choose_ref(
    model: str, version: Optional[str], alias: Optional[str], store: Any, champion: str
) -> tuple[str, str]:
    """The reference the server should load, and the version it means now."""
    from ame.errors import AliasNotFoundError
    from ame.serving.sources import _client, resolve_registry_version

    if version is not None and alias is not None:
        raise DeploymentError("give either --version or --alias, not both")
    client = _client(store.tracking_uri)
    if version is not None:
        return f"{model}/{version}", resolve_registry_version(client, model, None, version)
    if alias is not None:
        return f"{model}@{alias}", resolve_registry_version(client, model, alias, None)
    try:
        return f"{model}@{champion}", resolve_registry_version(client, model, champion, None)
    except AliasNotFoundError:
        latest = resolve_registry_version(client, model, None, None)
        return f"{model}/{latest}", latest


def deploy(
    model: str,
    *,
    version: Optional[str] = None,
    alias: Optional[str] = None,
    project_root: Optional[Path] = None,
    tracking_uri: Optional[str] = None,
    options: Optional[ServingOptions] = None,
    timeout: float = 180.0,
) -> DeploymentInfo:
    """Start (or replace) the local deployment of ``model`` and return it once it answers.

    Without ``version`` or ``alias`` the model's champion alias is followed
    (``championAlias`` in ame.yml, default ``champion``), or its latest version
    pinned when it has no such alias. ``options`` is the merged
    ``ServingOptions`` (flags, then ame.yml, then defaults); without it the
    project's own are read. A port nobody chose (neither a flag nor ame.yml)
    is a free one, not the foreground server's 8080: several deployments live
    side by side.
    """
    from ame.registry.store import resolve_store
    from ame.serving.options import options_for

    root = project_root_for(project_root)
    opts = options if options is not None else options_for(model, root)
    champion = "champion"
    with contextlib.suppress(Exception):
        from ame.spec.loader import load_project

        champion = load_project(root).model(model).champion_alias
    store = resolve_store(tracking_uri, project_root=root)
    ref, resolved = _choose_ref(model, version, alias, store, champion)
    host, workers, grpc_port = opts.host, opts.workers, opts.grpc_port
    port = opts.port if opts.given("port") else None

    record = record_path(root, model)
    old = _read_record(record) if record.exists() else None
    if old is not None and _alive(old.pid):
        # the record's version is the one it started with; the server knows
        # whether it has swapped since (its alias moved)
        old.version = _served_version(old.url, model) or old.version
        same = (
            old.ref == ref
            and old.workers == workers
            and (port is None or port == old.port)
            and (grpc_port is None or grpc_port == old.grpc_port)
            and "@" in ref
            and _healthy(old.url)
        )
        if same:
            log.info("%s already follows %s; nothing to move", model, ref)
            old.alive = old.healthy = True
            return old
    else:
        old = None

    wanted = port
    if wanted is None or (old is not None and wanted == old.port):
        # a fixed port still held by the old deployment cannot be shared: take a
        # free one so the old server keeps answering until the new one is ready
        wanted = _free_port(host)
    url = f"http://{host}:{wanted}"
    logfile = log_path(root, model)
    logfile.parent.mkdir(parents=True, exist_ok=True)

    cmd = [*_serve_command(), ref, "--host", host, "--port", str(wanted)]
    # Every option explicitly: the server merges them again with ame.yml, and
    # flags win, so it runs exactly what was decided here.
    cmd += ["--workers", str(workers), "--record", str(record)]
    cmd += ["--max-batch-size", str(opts.max_batch_size)]
    cmd += ["--max-latency-ms", str(opts.max_latency_ms)]
    cmd += ["--poll-interval", str(opts.poll_interval)]
    cmd += ["--max-body-bytes", str(opts.max_body_bytes)]
    if opts.max_memory is not None:
        cmd += ["--max-memory", str(opts.max_memory)]
    if opts.log_payloads:
        cmd += ["--log-payloads"]
    if opts.sample_rate is not None:
        cmd += ["--sample-rate", str(opts.sample_rate)]
    if grpc_port is not None:
        # gRPC listens with SO_REUSEPORT: during a replacement the old and the
        # new server share the port until the old one is drained
        cmd += ["--grpc-port", str(grpc_port)]
    env = {**os.environ, **store.env(), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("AME_DEBUG", None)
    if opts.resources is not None:
        # The server applies them again itself; setting the thread variables at
        # exec makes them visible to tools that read a process's environment.
        env.update(resource_limits(opts.resources).env)
    # The record exists before the server does, and names it from the moment
    # it has a pid: the server runs detached, so whatever happens to this
    # process from here on, ``deployment list`` and ``stop`` find it (and
    # ``stop`` also finds a server by the ``--record`` on its command line).
    info = DeploymentInfo(
        model=model,
        ref=ref,
        version=resolved,
        url=url,
        pid=0,
        port=wanted,
        log=str(logfile),
        started=time.time(),
        workers=workers,
        grpc_port=grpc_port,
        state="starting",
        previous={k: v for k, v in old.record().items() if k != "previous"} if old else None,
    )
    _write_record(record, info)
    try:
        with logfile.open("ab") as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=root,
                env=env,
                start_new_session=True,
            )
        info.pid = proc.pid
        _write_record(record, info)
        deadline = time.monotonic() + timeout
        while not _healthy(url, timeout=1.0):
            if proc.poll() is not None:
                tail = _log_tail(logfile)
                raise DeploymentError(
                    f"the server for {ref} exited with code {proc.returncode}: {tail} "
                    f"(log: {logfile})"
                )
            if time.monotonic() > deadline:
                _terminate(proc.pid, 5.0)
                raise DeploymentError(
                    f"the server for {ref} was not ready after {timeout:.0f}s (log: {logfile})"
                )
            time.sleep(0.2)
    except BaseException:
        # Failed (or interrupted) before it was ready: the record goes back to
        # what it was, so it never names a server that is not there.
        if old is not None:
            _write_record(record, old)
        else:
            with contextlib.suppress(FileNotFoundError):
                record.unlink()
        raise

    info.version = _served_version(url, model) or resolved
    info.state = "running"
    info.alive = info.healthy = True
    if old is not None:
        log.info("stopping the previous deployment of %s (pid %d)", model, old.pid)
        _terminate(old.pid, 30.0)
    info.previous = None
    _write_record(record, info)
    return info


def list_deployments(
    project_root: Optional[Path] = None, check_health: bool = True
) -> list[DeploymentInfo]:
    """Every deployment record of the project, with whether its server is alive and ready."""
    folder = deployments_dir(project_root_for(project_root))
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        info = _read_record(path)
        if info is None:
            continue
        info.alive = _alive(info.pid)
        info.healthy = info.alive and check_health and _healthy(info.url)
        if info.healthy:
            # A server following an alias swaps versions by itself and writes
            # nothing down: what it serves now is its own answer, not the record's.
            info.version = _served_version(info.url, info.model) or info.version
        previous = info.previous if isinstance(info.previous, dict) else None
        if previous is not None:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                if not _alive(int(previous["pid"])):
                    info.previous = None  # replaced and gone: nothing of it is in use
        found.append(info)
    return found


def get_deployment(model: str, project_root: Optional[Path] = None) -> DeploymentInfo:
    """The record of ``model``'s deployment; DeploymentError if there is none."""
    root = project_root_for(project_root)
    info = _read_record(record_path(root, model))
    if info is None:
        raise DeploymentError(f"no local deployment of '{model}' in {root}")
    info.alive = _alive(info.pid)
    return info


def _servers_for(record: Path) -> list[int]:
    """Pids of this user's ``ame serve`` processes started with ``--record record``.

    A deployment's server carries its record's path on its command line, so it
    can be found even when the record lost its pid (the CLI was killed between
    launching it and writing the pid down).
    """
    import psutil

    wanted = str(record)
    found = []
    for proc in psutil.process_iter(["cmdline", "uids"]):
        with contextlib.suppress(psutil.Error, TypeError, ValueError):
            args = proc.info["cmdline"] or []
            mine = proc.info["uids"] is None or proc.info["uids"].real == os.getuid()
            if mine and "--record" in args and args[args.index("--record") + 1 :][:1] == [wanted]:
                found.append(proc.pid)
    return found


def _stop_pid(pid: int, timeout: float) -> None:
    if pid <= 0:
        return
    if _alive(pid):
        _terminate(pid, timeout)
    else:
        # its server died; workers it left behind are still in its session
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def stop_deployment(
    model: str, project_root: Optional[Path] = None, timeout: float = 30.0
) -> DeploymentInfo:
    """Stop ``model``'s deployment (drain, then kill after ``timeout``) and remove its record.

    Also stops the deployment it was replacing (``previous``) and any server
    still running for this record, and cleans up a record whose server died.
    """
    root = project_root_for(project_root)
    info = get_deployment(model, root)
    path = record_path(root, model)
    _stop_pid(info.pid, timeout)
    if info.previous:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            _stop_pid(int(info.previous["pid"]), timeout)
    for pid in _servers_for(path):
        _stop_pid(pid, timeout)
    info.alive = info.healthy = False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return info


# The name docs/architecture.md gives the lifecycle module.
stop = stop_deployment
