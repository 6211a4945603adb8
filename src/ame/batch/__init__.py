"""Batch scoring: a file, directory or glob streamed through a model in resumable chunks.

``score`` is ``ame predict``; ``run_batch`` is ``ame batch M`` (a model's
``batchInference`` section, on its champion, tracked). Import-light: the
names below load pyarrow and MLflow only when first used. See ``docs/batch.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ame._lazy import lazy_exports

if TYPE_CHECKING:
    from ame.batch.project import BatchRun, run_batch
    from ame.batch.scorer import ScoreOptions, ScoreSummary, score

__all__ = ["BatchRun", "ScoreOptions", "ScoreSummary", "run_batch", "score"]

_HOMES = {
    "BatchRun": "ame.batch.project",
    "run_batch": "ame.batch.project",
    "ScoreOptions": "ame.batch.scorer",
    "ScoreSummary": "ame.batch.scorer",
    "score": "ame.batch.scorer",
}

__getattr__ = lazy_exports(__name__, _HOMES)
