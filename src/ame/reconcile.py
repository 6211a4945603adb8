"""Closing what a killed ame left open: RUNNING runs and versions stuck ``pending``.

``ame train`` and ``ame task run`` keep an MLflow run open while the task
runs, and a new version ``pending`` while it is validated. Killed outright
(SIGKILL, the OOM killer, a closed laptop), ame cannot close either: the run
stays RUNNING and the version ``pending`` for good, and nobody can tell them
from live ones. So each run and each pending version records its owner
(``ame.owner`` = ``HOST:PID:START``, see ``ame._owner``), and ``reconcile``,
run by ``ame status`` and ``ame train``, closes those whose owner is gone:

- a RUNNING run is set KILLED, with ``ame.reason`` saying why;
- a ``pending`` version gets ``ame.validation=killed`` (an alias refuses it);
- a version the training code registered itself, whose ``ame train`` died
  before tagging it, gets the tags ame would have given it, and ``killed``.

Only owners on this host are judged: a run another machine keeps open in a
shared store is never touched. Every change is logged (a warning), and the
function returns what it changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ame._owner import hostname, owner_gone

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ame.registry.store import Store
    from ame.spec.model import Project

log = logging.getLogger(__name__)

OWNER_TAG = "ame.owner"


@dataclass(frozen=True)
class Reconciled:
    """One thing ``reconcile`` closed: a run (``version`` None) or a model version."""

    kind: str  # "run" or "version"
    name: str  # the run id, or the model name
    version: Optional[str]
    message: str


def _who(token: str) -> str:
    host, pid, _ = token.rsplit(":", 2)
    return f"pid {pid} on {host}"


def _runs(client: MlflowClient, project: Project) -> list[Reconciled]:
    experiment = client.get_experiment_by_name(project.name)
    if experiment is None:
        return []
    from ame.registry.paging import iter_pages

    done: list[Reconciled] = []
    host = hostname().replace("'", "")
    running = iter_pages(
        lambda token: client.search_runs(
            [experiment.experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and tags.`{OWNER_TAG}` LIKE '{host}:%'",
            max_results=500,
            page_token=token,
        )
    )
    for run in running:
        owner = run.data.tags.get(OWNER_TAG, "")
        if owner_gone(owner) is not True:
            continue
        run_id = run.info.run_id
        reason = f"killed: ame ({_who(owner)}) died while the run was open"
        client.set_tag(run_id, "ame.reason", reason)
        client.set_terminated(run_id, status="KILLED")
        what = run.data.tags.get("ame.task", "?")
        message = f"run {run_id} (task {what}) was RUNNING, but {reason[8:]}: marked KILLED"
        log.warning("%s", message)
        done.append(Reconciled("run", run_id, None, message))
    return done


def _versions(client: MlflowClient, store: Store, project: Project) -> list[Reconciled]:
    from ame.lifecycle import (
        KILLED,
        PENDING,
        TAG_RUN_ID,
        TAG_TASK,
        TAG_VALIDATION,
        TAG_VALIDATION_REASON,
        _versions,
        tag_version,
    )

    done: list[Reconciled] = []
    for model in project.models:
        for mv in _versions(client, model.name):
            tags = mv.tags or {}
            state = tags.get(TAG_VALIDATION)
            version = str(mv.version)
            if state == PENDING:
                owner = tags.get(OWNER_TAG, "")
                if owner_gone(owner) is not True:
                    continue
                reason = f"ame ({_who(owner)}) was killed before its validation finished"
                tag_version(
                    store,
                    model.name,
                    version,
                    {TAG_VALIDATION: KILLED, TAG_VALIDATION_REASON: reason},
                )
            elif state is None and "ame.source" not in tags and mv.run_id:
                # Registered by the training code itself; was its ``ame train`` killed
                # before it tagged the version?
                try:
                    run = client.get_run(mv.run_id)
                except Exception:  # a run in another store, or deleted: not ours to judge
                    continue
                run_tags = run.data.tags
                owner = run_tags.get(OWNER_TAG, "")
                if (
                    run_tags.get("ame.model") != model.name
                    or run_tags.get("ame.stage") != "training"
                ):
                    continue
                if owner_gone(owner) is not True:
                    continue
                reason = f"ame ({_who(owner)}) was killed before it tagged and validated it"
                tag_version(
                    store,
                    model.name,
                    version,
                    {
                        TAG_RUN_ID: mv.run_id,
                        TAG_TASK: run_tags.get("ame.task", ""),
                        TAG_VALIDATION: KILLED,
                        TAG_VALIDATION_REASON: reason,
                        OWNER_TAG: owner,
                    },
                )
            else:
                continue
            message = f"{model.name} version {version}: {reason}; marked validation {KILLED}"
            log.warning("%s", message)
            done.append(Reconciled("version", model.name, version, message))
    return done


def reconcile(project: Project, store: Store) -> list[Reconciled]:
    """Close the project's runs and versions whose ame process died; return what changed."""
    from ame.lifecycle import _client

    client = _client(store)
    return _runs(client, project) + _versions(client, store, project)
