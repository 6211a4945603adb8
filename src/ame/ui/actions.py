"""The UI's glue to the library: each page's data, each form's one library call.

Nothing here decides registry policy: versions are made, aliased, tagged and
deleted by ``ame.registry.Registry`` (the same calls ``ame model`` makes),
packages by ``ame.packaging`` (``ame package build`` + ``register``),
deployments come from the ``Backend`` protocol, task runs from
``ame.tasks.history`` (``ame task list|logs``). What is here only gathers and
shapes data for the pages.

The alias policy's "does ame.yml give this model a validation task" and "the
runs that logged a model" are registry functions (``ame.registry.alias_inputs``,
``ame.registry.logged_runs``), called by the CLI and the pages alike.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.errors import AmeError, RegistryError

if TYPE_CHECKING:
    from ame.backends.base import DeploymentView
    from ame.registry.facade import Registry
    from ame.registry.records import ModelRecord, VersionRecord
    from ame.registry.store import Store
    from ame.spec.model import Project

logger = logging.getLogger(__name__)

VALIDATION_TAG = "ame.validation"
MODEL_TYPE_TAG = "ame.model_type"
KIND_TAG = "ame.kind"
CODE_VERSION_TAG = "ame.code_version"
# Folders of a project that are never offered in the file picker.
SKIP_DIRS = {".ame", ".git", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache"}
MAX_PICKER_FILES = 2000


class PickError(AmeError):
    """A file picked from the project folder is not inside it (or does not exist)."""


# --- ame.yml facts the pages need ---------------------------------------------------


def _project(project_root: Optional[Path]) -> Optional[Project]:
    """The project at ``project_root``; None without one or when its ame.yml does not load.

    A page still shows the store's models, versions and local deployments then.
    """
    if project_root is None:
        return None
    from ame.spec import load_project

    try:
        return load_project(project_root)
    except AmeError:
        return None


def champion_alias(project_root: Optional[Path], name: str) -> str:
    """The alias ame.yml names the champion of ``name`` (``champion`` unless set)."""
    return champion_aliases(project_root).get(name, "champion")


def champion_aliases(project_root: Optional[Path]) -> dict[str, str]:
    """Each ame.yml model's champion alias, read once (an unreadable ame.yml gives none)."""
    project = _project(project_root)
    return {m.name: str(m.champion_alias) for m in project.models} if project else {}


# --- models and versions ------------------------------------------------------------


def version_type(v: VersionRecord) -> str:
    """plain, packaged-encrypted (or packaged), or LLM: what a version holds."""
    if v.tags.get(MODEL_TYPE_TAG):
        return v.tags[MODEL_TYPE_TAG]
    if v.tags.get(KIND_TAG) == "llm":
        return "LLM"
    return "plain"


def version_source(v: VersionRecord) -> str:
    """Where a version came from, in a few words (files, run, package, copy)."""
    tags = v.tags
    if tags.get("ame.copied_from"):
        return f"copy of {tags['ame.copied_from']}"
    if tags.get("ame.source") == "files":
        return f"files: {tags.get('ame.files', '')}"
    if tags.get("ame.package.source"):
        return f"package of {tags['ame.package.source']}"
    if tags.get(KIND_TAG) == "llm":
        return f"LLM {tags.get('ame.llm.model', '')}"
    if v.run_id:
        return f"run {v.run_id}"
    return v.source or ""


def validation_state(v: VersionRecord) -> str:
    """The version's validation tag (passed, failed, pending...), or ``not validated``."""
    return v.tags.get(VALIDATION_TAG) or "not validated"


@dataclass
class ModelRow:
    """One line of the models page."""

    model: ModelRecord
    champion_alias: str
    champion: Optional[str]
    validation: str
    health: str


def model_rows(
    registry: Registry,
    project_root: Optional[Path],
    deployments: Sequence[DeploymentView],
    query: str = "",
) -> list[ModelRow]:
    """The models page: each model, its champion, its latest validation and its health."""
    from ame.registry.resolve import escape

    where = f"name LIKE '%{escape(query.strip())}%'" if query.strip() else None
    health = {d.model: d.state for d in deployments}
    aliases = champion_aliases(project_root)
    rows = []
    for model in registry.iter_models(where):
        alias = aliases.get(model.name, "champion")
        validation = "-"
        if model.latest_version:
            latest = registry.get_version(model.name, model.latest_version)
            validation = latest.tags.get(VALIDATION_TAG) or "not validated"
        rows.append(
            ModelRow(
                model=model,
                champion_alias=alias,
                champion=model.aliases.get(alias),
                validation=validation,
                health=health.get(model.name, "not deployed"),
            )
        )
    return rows


def parse_tags(text: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs, one a line or comma-separated, as ``ame model tag`` takes them."""
    tags: dict[str, str] = {}
    for item in (p.strip() for line in text.splitlines() for p in line.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RegistryError(f"invalid tag '{item}': use KEY=VALUE")
        tags[key.strip()] = value.strip()
    return tags


# --- the project folder as a file picker ----------------------------------------------


def project_files(root: Optional[Path]) -> list[str]:
    """Files and folders of the project, relative, for the *from the project folder* picker."""
    if root is None or not root.is_dir():
        return []
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        if rel != Path("."):
            found.append(rel.as_posix() + "/")
        found.extend((rel / f).as_posix() for f in sorted(filenames) if not f.startswith("."))
        if len(found) >= MAX_PICKER_FILES:
            break
    return found[:MAX_PICKER_FILES]


def picked_paths(root: Optional[Path], picked: Iterable[str]) -> list[Path]:
    """The project paths a form named, each checked to lie inside the project."""
    chosen = [p.strip() for p in picked if p and p.strip()]
    if not chosen:
        return []
    if root is None:
        raise PickError("no project folder: upload the files instead")
    base = root.resolve()
    paths = []
    for rel in chosen:
        path = (base / rel).resolve()
        if path != base and base not in path.parents:
            raise PickError(f"{rel} is outside the project folder")
        if not path.exists():
            raise PickError(f"{rel} does not exist in the project folder")
        paths.append(path)
    return paths


# --- packaged-encrypted versions -----------------------------------------------------


@dataclass(frozen=True)
class EncryptedVersion:
    """A new packaged-encrypted version, and the generated key when one was made."""

    version: VersionRecord
    key_id: Optional[str]
    generated_key: Optional[str] = None  # hex; shown once, never stored by the server


def register_encrypted(
    registry: Registry,
    name: str,
    work: Path,
    *,
    model_paths: Sequence[Path],
    hooks_dir: Optional[Path],
    manifest: Optional[Path],
    passphrase: Optional[str],
    description: Optional[str],
) -> EncryptedVersion:
    """Build an encrypted package of the files and register it: ``ame package build`` + register.

    Without a passphrase a random key is generated; it is returned to be shown
    once and is written nowhere (the package is built in ``work``, which the
    caller removes). A failed build registers nothing.
    """
    from ame.packaging.build import build_package
    from ame.packaging.keys import generate_key
    from ame.packaging.register import register_package
    from ame.registry.registers import check_model_name

    check_model_name(name)
    key = None if passphrase else generate_key()
    output = work / "package.amepkg"
    result = build_package(
        None,
        output,
        files=list(model_paths),
        hooks_dir=hooks_dir,
        manifest_file=manifest,
        key=key,
        passphrase=passphrase or None,
        name=name,
        project_root=registry.store.project_root,
    )
    done = register_package(
        output,
        name,
        tracking_uri=registry.store.tracking_uri,
        project_root=registry.store.project_root,
        description=description,
    )
    return EncryptedVersion(
        version=registry.get_version(name, done.version),
        key_id=result.key_id,
        generated_key=key.hex() if key is not None else None,
    )


# --- deployments and their /metrics ---------------------------------------------------


@dataclass
class Traffic:
    """What a deployment's ``/metrics`` says: requests so far, their rate and latency."""

    requests: Optional[float] = None
    rate: Optional[float] = None  # requests per second since the previous look
    latency_ms: Optional[float] = None  # mean since the previous look (or since start)
    error: Optional[str] = None


@dataclass
class _Sample:
    at: float
    count: float
    seconds: float


@dataclass
class TrafficMeter:
    """Reads ``/metrics`` and keeps each deployment's previous reading to give rates.

    Prometheus counters only grow, so a rate needs two readings: the page's
    previous visit (or its refresh a few seconds later) is the other one.
    """

    samples: dict[str, _Sample] = field(default_factory=dict)

    def read(self, url: str, timeout: float = 2.0) -> Traffic:
        """Scrape ``url``/metrics once and compare with the previous scrape of it."""
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        try:
            response = httpx.get(url.rstrip("/") + "/metrics", timeout=timeout)
            response.raise_for_status()
            count = seconds = 0.0
            for family in text_string_to_metric_families(response.text):
                for sample in family.samples:
                    route = sample.labels.get("route", "")
                    if route in ("/metrics", "/health", "/ping", "/version"):
                        continue
                    if sample.name == "ame_request_duration_seconds_count":
                        count += sample.value
                    elif sample.name == "ame_request_duration_seconds_sum":
                        seconds += sample.value
        except Exception as exc:
            return Traffic(error=f"cannot read {url}/metrics: {type(exc).__name__}")
        now = time.monotonic()
        traffic = Traffic(requests=count)
        before = self.samples.get(url)
        self.samples[url] = _Sample(now, count, seconds)
        if before is not None and count >= before.count and now > before.at:
            delta = count - before.count
            traffic.rate = delta / (now - before.at)
            if delta:
                traffic.latency_ms = 1000 * (seconds - before.seconds) / delta
        if traffic.latency_ms is None and count:
            traffic.latency_ms = 1000 * seconds / count
        return traffic


def deployments(project_root: Optional[Path], store: Store) -> list[DeploymentView]:
    """The project's deployments on every backend it configures, through the ``Backend`` protocol.

    Local ones first, then each cluster's (``ame deployment list`` shows the
    same). A cluster that cannot be reached is left out, with a log line: the
    page still shows what does answer.
    """
    from ame.backends.select import configured_kinds, deployments_everywhere

    project = _project(project_root)
    kinds = [k for k in configured_kinds(project) if k != "local" or project_root is not None]
    if not kinds:  # a remote store with no project: nothing is deployed from here
        return []
    found, unreachable = deployments_everywhere(
        project, project_root, store.tracking_uri, kinds=kinds
    )
    for backend in unreachable:
        logger.warning("ame ui: the %s backend is not reachable: %s", backend.kind, backend.reason)
    return found


def deployment_users(
    project_root: Optional[Path], store: Store
) -> Callable[[str, Optional[str]], list[str]]:
    """The "is this version in use?" check ``Registry.delete`` is given (as ``ame model delete``).

    Every configured backend is asked; one that cannot be asked refuses the
    delete with one line (the page shows it), since an unknown is not a "no".
    """
    from ame.backends.select import deployment_users as users

    project = _project(project_root)
    return users(project, project_root, store.tracking_uri)


# --- task runs --------------------------------------------------------------------------


def task_runs(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The project's task runs, newest first, as ``ame task list`` shows them."""
    from ame.tasks.history import list_runs

    return list_runs(store, store.experiment_name, limit=limit)


def mlflow_run_link(prefix: str, store: Store, run_id: str) -> str:
    """The MLflow UI page of a run (metrics, params, artifacts)."""
    experiment = ""
    try:
        from ame.registry.resolve import client_for

        experiment = client_for(store).get_run(run_id).info.experiment_id
    except Exception:
        return f"{prefix}/#/experiments"
    return f"{prefix}/#/experiments/{experiment}/runs/{run_id}"
