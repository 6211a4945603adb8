"""The exception hierarchy of ame.

Library code raises these instead of printing: the CLI turns any ``AmeError``
into one readable line and the exit code the error carries (2 for bad input
or usage, 1 for a run or a validation that failed). Each area has a base class
so callers can catch "anything the registry refused" without knowing every
case, and each case has its own class so tests and callers can tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class AmeError(Exception):
    """Base of every error ame raises on purpose; its message is for a person."""

    exit_code: int = 2


class UsageError(AmeError):
    """A command line gives a value ame cannot use (``--tag x`` without ``=``, say)."""


class ConfirmationRequiredError(AmeError):
    """A destructive command needs ``--yes`` when nobody can answer its prompt."""


# --- ame.yml ---------------------------------------------------------------


@dataclass(frozen=True)
class SpecIssue:
    """One mistake in an ame.yml file, with the place it was found."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(AmeError):
    """An ame.yml file (or one it references) is invalid; carries every issue found."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class ProjectNotFoundError(AmeError):
    """No ame.yml or ame.yaml was found where one was looked for."""


class UnresolvedReferenceError(AmeError):
    """A reference to another project's dataset, task or template leads nowhere."""


# --- registry --------------------------------------------------------------


class RegistryError(AmeError):
    """The model registry refused an operation."""


class InvalidModelURIError(RegistryError):
    """A model reference could not be parsed."""


class ResourceNotFoundError(RegistryError):
    """The store has no such thing (MLflow's ``RESOURCE_DOES_NOT_EXIST``): a run, a model..."""


class ModelNotFoundError(ResourceNotFoundError):
    """The registered model does not exist."""


class VersionNotFoundError(ResourceNotFoundError):
    """The model exists but not that version."""


class AliasNotFoundError(ResourceNotFoundError):
    """The model exists but has no such alias."""


class AlreadyExistsError(RegistryError):
    """The store already has it (MLflow's ``RESOURCE_ALREADY_EXISTS``): a model name, say."""


class InvalidValueError(RegistryError):
    """The store refused a value (MLflow's ``INVALID_PARAMETER_VALUE``): a bad filter, say."""


class UnsupportedFlavorError(RegistryError):
    """A built-in saver or loader was asked for a flavor MLflow does not have."""


class UnreadableFilesError(RegistryError):
    """Files given to make a version from could not be read."""


class VersionInUseError(RegistryError):
    """A version (or model) is still pointed at by an alias or a deployment."""


class StoreError(RegistryError):
    """The tracking/registry store could not be reached or opened."""


class StoreAccessError(StoreError):
    """The store answered but refused us (MLflow's ``PERMISSION_DENIED``, ``UNAUTHENTICATED``)."""


# --- tasks -----------------------------------------------------------------


class TaskError(AmeError):
    """A task could not be prepared or started."""


class EnvironmentBuildError(TaskError):
    """Building a task's isolated environment failed."""


class InterpreterNotFoundError(TaskError):
    """No installed Python matches the task's pythonVersion."""


class ResourceUnavailableError(TaskError):
    """The task asks for more than this machine has (GPUs, say)."""


class SecretError(TaskError):
    """A secret is missing or the secret store is unusable."""


class TaskFailedError(AmeError):
    """A task ran and failed; the CLI exits with the task's own code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- serving and deployments ------------------------------------------------


class ServingError(AmeError):
    """The inference server could not start or load its model."""


class DeploymentError(AmeError):
    """A local deployment could not be started, found or stopped."""


# --- lifecycle -------------------------------------------------------------


class LifecycleError(AmeError):
    """Training or promotion could not proceed (no model produced, same code version...)."""


class NoModelProducedError(LifecycleError):
    """A training task succeeded but left no model to register: the run failed its job."""

    exit_code = 1


class ValidationFailedError(AmeError):
    """A model version failed its validation task."""

    exit_code = 1


# --- packaging -------------------------------------------------------------


class PackageError(AmeError):
    """A model package could not be built, opened or verified."""


class WrongKeyError(PackageError):
    """The key or passphrase does not match the package's key id."""


class PackageCorruptError(PackageError):
    """A package failed authentication or is structurally broken."""


# --- LLM models ------------------------------------------------------------


class LLMConfigError(AmeError):
    """A chat-model configuration is invalid or would leak a secret."""
