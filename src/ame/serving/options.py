"""The serving options and their defaults, in one frozen object merged once.

Before this module the dozen options of a server (workers, batching, ports,
limits, payload logging...) were typed out in five signatures, each with its
own copy of the defaults and its own "flag, else ame.yml, else default"
merge, and they drifted. Now ``ame serve``, ``ame deploy`` (local) and the Ray
backend each build one ``ServingOptions`` with ``merge_options`` and pass it
along; nobody else decides a default.

The precedence, per field: a command-line flag that was given (not ``None``),
then the model's ``deployment`` section in ame.yml, then the defaults below.
``sources`` says which of the three each field came from, so a command (and a
test) can tell the user why a value is what it is.

Import-light: no server stack, no MLflow; ``ame.spec`` only when ame.yml is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ame.spec.model import Deployment, Resources

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_WORKERS = 1
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_LATENCY_MS = 5.0
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_POLL_INTERVAL = 5.0

FLAG = "flag"
PROJECT = "ame.yml"
DEFAULT = "default"


@dataclass(frozen=True)
class ServingOptions:
    """Everything that says how a model is served, whatever serves it.

    ``workers`` is worker processes locally and replicas on Ray Serve.
    ``max_memory`` is bytes per worker (``--max-memory``, else
    ``resources.memory``). ``resources`` is the ame.yml ``deployment.resources``
    (the local server pins cores and GPUs from it; Ray asks for it per replica).
    ``log_payloads``/``sample_rate`` are only the flags: whether payloads are
    logged also depends on ame.yml ``monitoring`` (``ame.monitoring.serving``).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    grpc_port: Optional[int] = None
    workers: int = DEFAULT_WORKERS
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    poll_interval: float = DEFAULT_POLL_INTERVAL
    max_memory: Optional[int] = None
    resources: Optional[Resources] = None
    log_payloads: bool = False
    sample_rate: Optional[float] = None
    # field name -> FLAG, PROJECT or DEFAULT; not part of equality
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, name: str) -> str:
        """Where ``name``'s value came from: ``flag``, ``ame.yml`` or ``default``."""
        return self.sources.get(name, DEFAULT)

    def given(self, name: str) -> bool:
        """True when ``name`` was set by a flag or by ame.yml, not left to the default."""
        return self.source(name) != DEFAULT

    def with_values(self, **values: Any) -> ServingOptions:
        """A copy with ``values`` changed (a backend choosing a free port, say)."""
        return replace(self, **values)


OPTION_NAMES = tuple(f.name for f in fields(ServingOptions) if f.name != "sources")


def _from_deployment(deployment: Optional[Deployment]) -> dict[str, Any]:
    """The options ame.yml's ``deployment`` section sets explicitly (defaults left out)."""
    if deployment is None:
        return {}
    found: dict[str, Any] = {}
    # ``replicas`` has a default in the schema: only a written one counts here,
    # so that a flag-less ``ame serve`` says "default" and not "ame.yml".
    if "replicas" in deployment.model_fields_set:
        found["workers"] = deployment.replicas
    if deployment.batching is not None:
        batching = deployment.batching
        found["max_batch_size"] = batching.max_batch_size
        found["max_latency_ms"] = batching.max_latency_ms
    if deployment.port is not None:
        found["port"] = deployment.port
    if "resources" in deployment.model_fields_set:
        found["resources"] = deployment.resources
        if deployment.resources.memory:
            found["max_memory"] = int(deployment.resources.memory)
    return found


def merge_options(
    flags: Optional[Mapping[str, Any]] = None, deployment: Optional[Deployment] = None
) -> ServingOptions:
    """Flags (``None`` = not given), then ame.yml's ``deployment``, then the defaults.

    ``flags`` names fields of ``ServingOptions``; an unknown name is a
    programming error (``TypeError``), never silently dropped.
    """
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    unknown = sorted(set(given) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown serving options: {', '.join(unknown)}")
    # ``--log-payloads`` is a switch: False is "not given"
    if given.get("log_payloads") is False:
        given.pop("log_payloads")
    project = _from_deployment(deployment)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in OPTION_NAMES:
        if name in given:
            values[name], sources[name] = given[name], FLAG
        elif name in project:
            values[name], sources[name] = project[name], PROJECT
        else:
            sources[name] = DEFAULT
    return ServingOptions(**values, sources=sources)


def project_deployment(model: str, project_root: Optional[Path]) -> Optional[Deployment]:
    """``model``'s ame.yml ``deployment`` section, if the project has one.

    No ame.yml, or one that does not define ``model``, gives None (a model can
    be served from outside any project); an invalid ame.yml raises its
    ``SpecError``: a typo in it is never silently ignored.
    """
    from ame.errors import ProjectNotFoundError
    from ame.spec.discovery import find_project_file

    try:
        file = find_project_file(project_root or Path.cwd())
    except ProjectNotFoundError:
        return None
    from ame.spec.loader import load_project

    project = load_project(file)
    try:
        return project.model(model).deployment
    except KeyError:
        return None


def options_for(
    model: Optional[str],
    project_root: Optional[Path],
    flags: Optional[Mapping[str, Any]] = None,
) -> ServingOptions:
    """``merge_options`` with ``model``'s deployment section read from the project."""
    deployment = project_deployment(model, project_root) if model else None
    return merge_options(flags, deployment)
