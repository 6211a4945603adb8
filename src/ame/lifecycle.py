"""Train -> find the new version -> validate -> promote -> deploy: the policy, nothing else.

A model in ame.yml is trained by its training task. The version that task
produced is found (or registered, when the task only logged a model in its
run) and tagged with where it came from. The validation task's exit code then
decides: only a version that passed gets the champion alias and, with
``autoDeploy``, is deployed. A deployment that follows ``M@champion`` swaps to
the new version by itself, without dropping requests.

Every step reports through ``on_event`` so the CLI can show progress; this
module never prints.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame import __version__
from ame.errors import (
    LifecycleError,
    NoModelProducedError,
    TaskFailedError,
    ValidationFailedError,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from ame.backends.base import Backend
    from ame.registry.store import Store
    from ame.spec.model import Model, Project, Task
    from ame.tasks import TaskRun

logger = logging.getLogger(__name__)

# Tags ame puts on every version it trains or validates.
TAG_RUN_ID = "ame.run_id"
TAG_TASK = "ame.task"
TAG_GIT_COMMIT = "ame.git_commit"
TAG_AME_VERSION = "ame.version"
TAG_CODE_VERSION = "ame.code_version"
TAG_VALIDATION = "ame.validation"
TAG_VALIDATION_RUN = "ame.validation_run_id"
TAG_VALIDATION_REASON = "ame.validation_reason"
TAG_OWNER = "ame.owner"

PASSED, FAILED, PENDING, SKIPPED = "passed", "failed", "pending", "skipped"
# A version whose validation never finished: ame was killed while it ran.
KILLED = "killed"

EventSink = Callable[[str], None]


def _run_task(
    backend: Optional[Backend],
    project: Project,
    task: Task,
    store: Store,
    *,
    extra_env: dict[str, str],
    on_output: Optional[EventSink],
    tags: dict[str, str],
    cpu_only: bool,
) -> TaskRun:
    """Run one task where ``backend`` says (None: this machine, exactly as before)."""
    if backend is None:
        from ame.tasks import run_task

        return run_task(
            project,
            task,
            store,
            extra_env=extra_env,
            on_output=on_output,
            tags=tags,
            cpu_only=cpu_only,
        )
    from ame.backends.base import TaskRequest

    request = TaskRequest(
        project=project,
        task=task,
        store=store,
        extra_env=extra_env,
        tags=tags,
        cpu_only=cpu_only,
        on_output=on_output,
    )
    return backend.run_task(request).wait(on_output)


@dataclass
class TrainResult:
    """What ``train`` did, for the CLI to show and for tests to check."""

    model: str
    version: str
    run_id: str
    validation: str
    promoted: bool
    alias: Optional[str] = None
    deployment_url: Optional[str] = None
    validation_log_tail: list[str] = field(default_factory=list)


def _noop(_: str) -> None:
    return None


def read_code_version(project_root: Path) -> Optional[str]:
    """``__version__`` from ``common/__init__.py`` (the golden path's model version), if any.

    Read with ``ast`` rather than imported: the project's code may need
    packages ame's own environment does not have.
    """
    init = project_root / "common" / "__init__.py"
    if not init.is_file():
        return None
    try:
        tree = ast.parse(init.read_text(encoding="utf-8"), filename=str(init))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise LifecycleError(f"{init}: cannot read __version__: {exc}") from exc
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if "__version__" in names:
                return str(node.value.value)
    return None


def _client(store: Store) -> MlflowClient:
    """The registry's client of ``store`` (the registry is the one place that makes one)."""
    from ame.registry.resolve import client_for

    return client_for(store)


def _write(store: Store, fn: Callable[[], Any]) -> Any:
    from ame.registry.locking import locked_write

    return locked_write(store, fn)


def _versions(client: MlflowClient, name: str, filter_extra: str = "") -> list[ModelVersion]:
    """Every version of ``name`` (all pages), newest first; [] for an unknown model."""
    from ame.registry.paging import iter_pages
    from ame.registry.resolve import quote

    query = f"name = {quote(name)}" + (f" and {filter_extra}" if filter_extra else "")

    found: list[ModelVersion] = list(
        iter_pages(
            lambda token: client.search_model_versions(query, max_results=1000, page_token=token)
        )
    )
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def check_code_version(store: Store, model: str, code_version: Optional[str]) -> None:
    """Refuse a second version from the same code version (the golden path's rule)."""
    if code_version is None:
        return
    client = _client(store)
    for version in _versions(client, model):
        if version.tags.get(TAG_CODE_VERSION) == code_version:
            raise LifecycleError(
                f"{model} version {version.version} was already trained from code version "
                f"{code_version} (common/__init__.py); a new model version needs a code change: "
                "bump __version__, or pass --allow-same-version"
            )


def find_produced_version(
    store: Store, model: str, run: TaskRun, tags: Optional[dict[str, str]] = None
) -> tuple[str, bool]:
    """The version of ``model`` the training run produced: ``(version, registered_by_ame)``.

    The training code may have registered it itself (``registered_model_name``),
    or only logged a model in its run; then ame registers that model, with
    ``tags`` given to the registry's create call itself, so that no version
    ever exists without them (a kill right after registering leaves none
    half-tagged). A version the training code registered is tagged by the
    caller; ``ame.reconcile`` tags it if ame died before that.
    """
    client = _client(store)
    produced = _versions(client, model, f"run_id='{run.run_id}'")
    if produced:
        return str(produced[0].version), False
    from ame.errors import RegistryError
    from ame.registry import Registry

    try:
        version = Registry(store).register_from_run(model, run.run_id, tags=tags)
    except RegistryError as exc:
        elsewhere = client.search_model_versions(f"run_id='{run.run_id}'")
        if elsewhere:
            names = ", ".join(sorted({f"{v.name}/{v.version}" for v in elsewhere}))
            raise NoModelProducedError(
                f"training task '{run.task}' registered {names}, not a version of '{model}': "
                f"use registered_model_name='{model}' (or os.environ['AME_MODEL_NAME'])"
            ) from exc
        raise NoModelProducedError(
            f"training task '{run.task}' finished but produced no model: log one in its run "
            f"(e.g. mlflow.sklearn.log_model(model, name='model', "
            f"registered_model_name='{model}'))"
        ) from exc
    return str(version.version), True


def tag_version(store: Store, model: str, version: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on a version, under the registry's write lock."""
    client = _client(store)

    def _apply() -> None:
        for key, value in tags.items():
            client.set_model_version_tag(model, version, key, value)

    _write(store, _apply)


def run_validation(
    project: Project,
    model: Model,
    store: Store,
    version: str,
    *,
    on_output: Optional[EventSink] = None,
    cpu_only: bool = False,
    mark_pending: bool = True,
    backend: Optional[Backend] = None,
) -> tuple[str, Optional[TaskRun]]:
    """Run the model's validation task against ``version``; tag and return the outcome.

    While it runs the version is ``pending``, owned by this process
    (``mark_pending=False`` when the caller tagged it so already), so a kill
    leaves a version ``ame.reconcile`` can tell from a live validation.
    """
    from ame._owner import owner_token

    if model.validation is None:
        tag_version(store, model.name, version, {TAG_VALIDATION: SKIPPED})
        return SKIPPED, None
    if mark_pending:
        tag_version(store, model.name, version, {TAG_VALIDATION: PENDING, TAG_OWNER: owner_token()})
    env = {
        "AME_MODEL_NAME": model.name,
        "AME_MODEL_VERSION": version,
        "AME_MODEL_URI": f"models:/{model.name}/{version}",
    }
    run = _run_task(
        backend,
        project,
        model.validation.task,
        store,
        extra_env=env,
        on_output=on_output,
        tags={"ame.model": model.name, "ame.model_version": version, "ame.stage": "validation"},
        cpu_only=cpu_only,
    )
    outcome = PASSED if run.exit_code == 0 else FAILED
    tag_version(
        store, model.name, version, {TAG_VALIDATION: outcome, TAG_VALIDATION_RUN: run.run_id}
    )
    return outcome, run


def promote(store: Store, model: Model, version: str) -> str:
    """Move the model's champion alias to ``version``; return the alias.

    Through the registry, which moves every alias; ``force`` because the gate
    (this version's validation) is the lifecycle's and has just been passed.
    """
    from ame.registry import Registry

    alias = model.champion_alias
    Registry(store).set_alias(model.name, alias, version, force=True)
    return alias


def follow_on_cluster(
    project: Project,
    model: Model,
    store: Store,
    version: str,
    on_event: Optional[EventSink] = None,
) -> Optional[str]:
    """Re-apply a cluster Deployment that follows the alias just moved (it pins a version).

    A local server follows its alias by itself; a Kubernetes Deployment is
    pinned, so the move is a rollout that ame starts here (see
    ``ame.backends.kubernetes.follow``). Nothing happens for projects that do
    not use the kubernetes backend.
    """
    from ame.backends.kubernetes.follow import follow_alias

    done = follow_alias(
        project, model.name, model.champion_alias, version, store.tracking_uri, on_event=on_event
    )
    if done and on_event is not None:
        on_event(done)
    return done


def deploy_champion(
    project: Project,
    model: Model,
    store: Store,
    version: str,
    *,
    timeout: float = 180.0,
    backend: Optional[Backend] = None,
) -> str:
    """Make sure a deployment follows ``M@champion`` and serves ``version``; return its URL.

    A running deployment that already follows the alias swaps to the new
    version by itself (no request dropped); ame waits until it reports it.
    On a cluster backend (``backend`` not local) the backend's ``deploy``
    does the same there and returns once the version is served.
    """
    from ame.backends.base import DeployRequest

    ref = f"{model.name}@{model.champion_alias}"
    request = DeployRequest(model.name, ref, version, store, model.deployment)
    if backend is not None and backend.name != "local":
        return backend.deploy(request).url
    import time

    import httpx

    from ame.backends.local_backend import LocalBackend

    info = (backend or LocalBackend(project.root, store.tracking_uri)).deploy(request)
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.get(f"{info.url}/v2/models/{model.name}", timeout=5.0)
            served = [str(v) for v in answer.json().get("versions", [])]
        except (httpx.HTTPError, ValueError):
            served = []
        if version in served:
            return str(info.url)
        if time.monotonic() > deadline:
            raise LifecycleError(
                f"the deployment of {model.name} at {info.url} still serves {served or 'nothing'} "
                f"{timeout:.0f}s after {model.champion_alias} moved to {version} "
                f"(log: {info.detail.get('log', '-')})"
            )
        time.sleep(0.25)


def train(
    project: Project,
    model_name: str,
    store: Store,
    *,
    allow_same_version: bool = False,
    deploy: Optional[bool] = None,
    on_event: EventSink = _noop,
    on_output: Optional[EventSink] = None,
    cpu_only: bool = False,
    backend: Optional[Backend] = None,
) -> TrainResult:
    """Train ``model_name``; validate, promote and (with autoDeploy) deploy what it produced.

    Raises ``TaskFailedError`` when training fails, ``LifecycleError`` when it
    produced no model or the code version was already trained, and
    ``ValidationFailedError`` (exit 1) when validation fails: that version stays
    registered and tagged ``ame.validation=failed``, and nothing moves.
    """
    try:
        model = project.model(model_name)
    except KeyError:
        names = ", ".join(m.name for m in project.models) or "none"
        raise LifecycleError(
            f"no model '{model_name}' in {project.file} (models: {names})"
        ) from None
    if model.training is None:
        raise LifecycleError(f"model '{model_name}' has no training task in {project.file}")

    from ame.reconcile import reconcile

    # Runs and versions a killed ame left RUNNING or pending are closed first,
    # so that what follows (and ``ame status``) sees them as they are.
    reconcile(project, store)
    code_version = read_code_version(project.root)
    if not allow_same_version:
        check_code_version(store, model.name, code_version)

    task = model.training.task
    on_event(f"training {model.name} with task '{task.name}'")
    env = {"AME_MODEL_NAME": model.name}
    if code_version:
        env["AME_CODE_VERSION"] = code_version
    run = _run_task(
        backend,
        project,
        task,
        store,
        extra_env=env,
        on_output=on_output,
        tags={"ame.model": model.name, "ame.stage": "training"},
        cpu_only=cpu_only,
    )
    if run.exit_code != 0:
        tail = "\n".join(run.tail(10))
        raise TaskFailedError(
            f"training task '{task.name}' failed with exit code {run.exit_code} "
            f"(run {run.run_id})" + (f"; last lines:\n{tail}" if tail else ""),
            exit_code=1,
        )

    from ame._owner import owner_token

    tags = {
        TAG_RUN_ID: run.run_id,
        TAG_TASK: task.name,
        TAG_AME_VERSION: __version__,
        TAG_VALIDATION: PENDING,
        # Who is validating it: a pending version whose owner died is marked
        # killed by ``ame.reconcile`` (so ``ame status`` never shows it pending).
        TAG_OWNER: owner_token(),
    }
    from ame._system import git_commit

    if commit := git_commit(project.root):
        tags[TAG_GIT_COMMIT] = commit
    if code_version:
        tags[TAG_CODE_VERSION] = code_version
    version, by_ame = find_produced_version(store, model.name, run, tags)
    if not by_ame:
        tag_version(store, model.name, version, tags)
    how = "registered by ame from the run" if by_ame else "registered by the training code"
    on_event(f"{model.name} version {version} ({how}, run {run.run_id})")

    if model.validation is not None:
        on_event(f"validating {model.name}/{version} with task '{model.validation.task.name}'")
    outcome, vrun = run_validation(
        project,
        model,
        store,
        version,
        on_output=on_output,
        cpu_only=cpu_only,
        mark_pending=False,
        backend=backend,
    )
    result = TrainResult(
        model=model.name, version=version, run_id=run.run_id, validation=outcome, promoted=False
    )
    if outcome == FAILED:
        assert vrun is not None
        result.validation_log_tail = vrun.tail(15)
        tail = "\n".join(result.validation_log_tail)
        raise ValidationFailedError(
            f"{model.name} version {version} failed validation (task "
            f"'{model.validation.task.name if model.validation else ''}' exited "
            f"{vrun.exit_code}); it stays registered, tagged {TAG_VALIDATION}={FAILED}, "
            "and was not promoted" + (f"; last lines:\n{tail}" if tail else "")
        )
    if outcome == SKIPPED:
        on_event(f"no validation task for {model.name}: promoting version {version} directly")
    else:
        on_event(f"validation passed: {model.name}/{version}")

    result.alias = promote(store, model, version)
    result.promoted = True
    on_event(f"alias {model.name}@{result.alias} -> version {version}")
    follow_on_cluster(project, model, store, version, on_event)

    wants_deploy = model.deployment is not None and model.deployment.auto_deploy
    if deploy if deploy is not None else wants_deploy:
        on_event(f"deploying {model.name}@{result.alias}")
        result.deployment_url = deploy_champion(project, model, store, version, backend=backend)
        on_event(f"{model.name} version {version} is served at {result.deployment_url}")
    return result


def validate_version(
    project: Project,
    model_name: str,
    store: Store,
    version: Optional[str] = None,
    *,
    promote_on_pass: bool = False,
    on_output: Optional[EventSink] = None,
    cpu_only: bool = False,
    backend: Optional[Backend] = None,
) -> tuple[str, str]:
    """Re-run validation of one version (default: the latest); return ``(version, outcome)``."""
    try:
        model = project.model(model_name)
    except KeyError:
        raise LifecycleError(f"no model '{model_name}' in {project.file}") from None
    client = _client(store)
    if version is None:
        versions = _versions(client, model.name)
        if not versions:
            raise LifecycleError(f"model '{model.name}' has no versions yet: run ame train first")
        version = str(versions[0].version)
    else:
        from ame.registry import Registry

        Registry(store).get_version(model.name, version)  # raises a clear not-found error
    outcome, _ = run_validation(
        project, model, store, version, on_output=on_output, cpu_only=cpu_only, backend=backend
    )
    if outcome in (PASSED, SKIPPED) and promote_on_pass:
        promote(store, model, version)
        follow_on_cluster(project, model, store, version)
    return version, outcome


@dataclass
class ModelStatus:
    """One row of ``ame status``."""

    model: str
    latest_version: Optional[str]
    latest_validation: Optional[str]
    champion_alias: str
    champion_version: Optional[str]
    deployed_version: Optional[str]
    deployment_url: Optional[str]


def status(project: Project, store: Store) -> list[ModelStatus]:
    """Each model's latest version and validation state, its champion and its deployment."""
    from ame.backends import local
    from ame.reconcile import reconcile

    reconcile(project, store)
    client = _client(store)
    deployments = {d.model: d for d in local.list_deployments(project.root) if d.alive}
    rows: list[ModelStatus] = []
    for model in project.models:
        versions = _versions(client, model.name)
        latest = versions[0] if versions else None
        champion: Optional[str] = None
        if versions:
            try:
                champion = str(
                    client.get_model_version_by_alias(model.name, model.champion_alias).version
                )
            except Exception:
                champion = None
        dep = deployments.get(model.name)
        rows.append(
            ModelStatus(
                model=model.name,
                latest_version=str(latest.version) if latest else None,
                latest_validation=latest.tags.get(TAG_VALIDATION) if latest else None,
                champion_alias=model.champion_alias,
                champion_version=champion,
                deployed_version=str(dep.version) if dep else None,
                deployment_url=str(dep.url) if dep else None,
            )
        )
    return rows
