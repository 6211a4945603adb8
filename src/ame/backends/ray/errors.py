"""What can go wrong between ame and a Ray cluster, each case its own class."""

from __future__ import annotations

from ame.errors import AmeError, TaskError


class RayBackendError(AmeError):
    """Base of the ray backend's errors (bad input or setup: exit 2)."""


class RayUnavailableError(RayBackendError):
    """The ``ray`` package is not installed (``pip install 'ame[ray]'``)."""


class ClusterUnreachableError(RayBackendError):
    """No Ray dashboard answered at the configured address."""


class EmbeddedStoreOnClusterError(RayBackendError):
    """An embedded (SQLite) store was given to a cluster whose nodes do not share its disk."""


class WorkdirError(TaskError):
    """A file the task needs would be left out of the job's working_dir."""


class SubmitError(RayBackendError):
    """The cluster refused the job, or a package upload."""

    exit_code = 1
