"""Batch scoring: a file, directory or glob streamed through a model in resumable chunks.

``score`` is ``ame predict``. ``ame batch M`` (a model's ``batchInference``
section, on its champion, tracked, here or on a cluster backend) is
``ame.batch_section.run_batch``, a layer above the backends it runs on.
Import-light: the names below load pyarrow and MLflow only when first used.
See ``docs/batch.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ame._lazy import lazy_exports

if TYPE_CHECKING:
    from ame.batch.scorer import ScoreOptions, ScoreSummary, score

__all__ = ["ScoreOptions", "ScoreSummary", "score"]

_HOMES = {
    "ScoreOptions": "ame.batch.scorer",
    "ScoreSummary": "ame.batch.scorer",
    "score": "ame.batch.scorer",
}

__getattr__ = lazy_exports(__name__, _HOMES)
