"""The runs that logged a model: what a new version *from a run* can be made of.

MLflow 3 records each ``log_model`` as a logged model with its source run;
this lists those runs, newest first, leaving out the runs ame opened itself to
save plain files or a package as a version (their model already is one, and
offering it again would only confuse). The web UI's *from a run* form lists
them; ``ame model register --run`` takes any run id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ame.registry.errors import translates
from ame.registry.paging import iter_pages

if TYPE_CHECKING:
    from ame.registry.facade import Registry

# Versions ame saved through a run of its own (``ame.source`` / ``ame.model_type`` tags).
_SAVED_BY_AME = (
    "tags.`ame.source` = 'files'",
    "tags.`ame.model_type` = 'packaged-encrypted'",
    "tags.`ame.model_type` = 'packaged'",
)


@dataclass(frozen=True)
class RunWithModel:
    """A run that logged at least one model."""

    run_id: str
    run_name: str
    experiment: str
    models: list[str]
    started: Optional[str]  # local time, minutes


@translates
def runs_with_models(registry: Registry, limit: int = 200) -> list[RunWithModel]:
    """The store's runs that logged a model, newest first (at most ``limit`` logged models)."""
    client = registry.client
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if not experiments:
        return []
    logged = client.search_logged_models(
        experiment_ids=list(experiments),
        max_results=limit,
        order_by=[{"field_name": "creation_time", "ascending": False}],
    )
    saved: set[str] = set()
    for where in _SAVED_BY_AME:

        def page(token: Optional[str], where: str = where) -> Any:
            return client.search_model_versions(where, max_results=1000, page_token=token)

        saved.update(mv.run_id for mv in iter_pages(page) if mv.run_id)
    by_run: dict[str, list[str]] = {}
    order: list[tuple[str, str]] = []
    for lm in logged:
        if not lm.source_run_id or lm.source_run_id in saved:
            continue
        if lm.source_run_id not in by_run:
            by_run[lm.source_run_id] = []
            order.append((lm.source_run_id, lm.experiment_id))
        by_run[lm.source_run_id].append(lm.name)
    found = []
    for run_id, experiment_id in order:
        try:
            run = client.get_run(run_id)
        except Exception:  # a run deleted since: nothing to register from
            continue
        start = run.info.start_time
        found.append(
            RunWithModel(
                run_id=run_id,
                run_name=run.info.run_name or "",
                experiment=experiments.get(experiment_id, experiment_id),
                models=sorted(by_run[run_id]),
                started=dt.datetime.fromtimestamp(start / 1000).strftime("%Y-%m-%d %H:%M")
                if start
                else None,
            )
        )
    return found
