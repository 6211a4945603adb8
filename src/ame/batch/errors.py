"""The ways batch scoring refuses or fails, each its own class.

Bad input (a missing column, a value of the wrong type, a resume that does not
match the interrupted run) is exit 2, like every user error; a run that went
over ``--max-errors`` did what it was told and failed, exit 1.
"""

from __future__ import annotations

from ame.errors import AmeError


class BatchError(AmeError):
    """Batch scoring could not start or go on (input, output or options)."""


class InputError(BatchError):
    """The input cannot be found or read (no files, unknown format, unreadable)."""


class SchemaMismatchError(BatchError):
    """A chunk does not fit the model's signature: names the column and the first bad row."""


class ResumeRefusedError(BatchError):
    """``--resume`` was asked for a run whose input, options or model differ."""


class TooManyErrorsError(BatchError):
    """More rows were skipped than ``--max-errors`` allows."""

    exit_code = 1


class PredictionFailedError(BatchError):
    """The model raised while predicting a chunk: the run failed, not the input."""

    exit_code = 1
