"""What can go wrong between an ame.yml and a cluster, each with its own class."""

from __future__ import annotations

from ame.errors import AmeError


class KubernetesError(AmeError):
    """Base of the kubernetes backend's errors (bad input: exit 2)."""


class EmbeddedStoreError(KubernetesError):
    """The tracking store is a file on this machine, which no pod can reach."""


class InvalidObjectError(KubernetesError):
    """A rendered object failed its schema; nothing was written."""


class ImageBuildError(KubernetesError):
    """A Docker build could not run or failed."""


class ApplyError(KubernetesError):
    """The cluster refused an object, or what was applied did not come up."""

    exit_code = 1


class NoVersionError(KubernetesError):
    """A deployment was asked for before any version of its model was promoted."""
