"""Registry errors beyond the shared ones in ``ame.errors``.

The shared hierarchy already names the common cases (unknown model, version or
alias, invalid URI, unsupported flavor, unreadable files, version in use); the
few below are specific to this package and still ``RegistryError``s, so the CLI
prints them as one line and exits 2.
"""

from __future__ import annotations

from ame.errors import RegistryError


class RegistrationError(RegistryError):
    """A version could not be registered (missing source, no model in a run...)."""


class SaveError(RegistryError):
    """A model could not be saved (wrong model type, unreadable config...)."""


class PredictionError(RegistryError):
    """A loaded model failed to predict on the given inputs."""


class LoaderHookError(RegistryError):
    """The loader hook of a files version is missing or broken."""
