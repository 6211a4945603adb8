"""Registry errors, and the one place MLflow's own errors become ame's.

MLflow says what went wrong in ``MlflowException.error_code`` (the same codes
its REST API and its SQL stores use, which is how MLflow's own stores and
client tell "no such model" from "server down"). ``translate`` maps those
codes, and the connection errors under them, onto ``ame.errors``; nothing
reads the wording of a message, which differs between store types and MLflow
releases. Every read and write of ``ame.registry`` goes through
``mlflow_errors``, so no raw MLflow exception reaches the CLI or the web UI.

The classes below are specific to this package and still ``RegistryError``s,
so the CLI prints them as one line and exits 2.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Optional, TypeVar

from ame.errors import (
    AlreadyExistsError,
    AmeError,
    InvalidValueError,
    RegistryError,
    ResourceNotFoundError,
    StoreAccessError,
    StoreError,
)

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])


class RegistrationError(RegistryError):
    """A version could not be registered (missing source, no model in a run...)."""


class SaveError(RegistryError):
    """A model could not be saved (wrong model type, unreadable config...)."""


class PredictionError(RegistryError):
    """A loaded model failed to predict on the given inputs."""


class LoaderHookError(RegistryError):
    """The loader hook of a files version is missing or broken."""


# MLflow's error codes (``mlflow.protos.databricks_pb2``), by the ame error
# they mean. A code not listed is a plain ``RegistryError`` with MLflow's text.
_BY_CODE: dict[str, type[RegistryError]] = {
    "RESOURCE_DOES_NOT_EXIST": ResourceNotFoundError,
    "NOT_FOUND": ResourceNotFoundError,
    "RESOURCE_ALREADY_EXISTS": AlreadyExistsError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "INVALID_PARAMETER_VALUE": InvalidValueError,
    "BAD_REQUEST": InvalidValueError,
    "MALFORMED_REQUEST": InvalidValueError,
    "PERMISSION_DENIED": StoreAccessError,
    "UNAUTHENTICATED": StoreAccessError,
    "CUSTOMER_UNAUTHORIZED": StoreAccessError,
    # An MLflow server answers these; they say nothing about the request.
    "ENDPOINT_NOT_FOUND": StoreError,
    "TEMPORARILY_UNAVAILABLE": StoreError,
    "DEADLINE_EXCEEDED": StoreError,
    "REQUEST_LIMIT_EXCEEDED": StoreError,
}


def error_code(exc: BaseException) -> Optional[str]:
    """MLflow's error code of ``exc`` (``RESOURCE_DOES_NOT_EXIST``...); None for other errors."""
    from mlflow.exceptions import MlflowException

    return exc.error_code if isinstance(exc, MlflowException) else None


def is_not_found(exc: BaseException) -> bool:
    """True when the store says the thing asked for does not exist (any store type)."""
    return (
        isinstance(exc, ResourceNotFoundError)
        or _BY_CODE.get(error_code(exc) or "") is ResourceNotFoundError
    )


def _unreachable(exc: BaseException) -> Optional[BaseException]:
    """The connection error under ``exc`` (its cause or context chain), if there is one.

    A remote store that cannot be reached shows up as an ``INTERNAL_ERROR``
    ``MlflowException`` raised while handling a ``requests`` error; an embedded
    store whose file cannot be opened, as SQLAlchemy's ``OperationalError``.
    They are recognised by type, walking the chain, never by message.
    """
    kinds: list[type[BaseException]] = [ConnectionError]
    requests = sys.modules.get("requests.exceptions")
    if requests is not None:
        kinds += [requests.ConnectionError, requests.Timeout]
    sqlalchemy = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy is not None:
        kinds.append(sqlalchemy.OperationalError)
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, tuple(kinds)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    lines = str(text).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def translate(exc: BaseException, tracking_uri: Optional[str] = None) -> Optional[AmeError]:
    """The ame error an MLflow or connection error means; None for anything else.

    ``tracking_uri`` names the store in "cannot reach" messages.
    """
    if isinstance(exc, AmeError):
        return exc
    cause = _unreachable(exc)
    if cause is not None:
        where = f" {tracking_uri}" if tracking_uri else ""
        return StoreError(f"cannot reach the MLflow store{where}: {_first_line(cause)}")
    code = error_code(exc)
    if code is None:
        return None
    return _BY_CODE.get(code, RegistryError)(_first_line(exc))


@contextmanager
def mlflow_errors(tracking_uri: Optional[str] = None) -> Iterator[None]:
    """Raise MLflow's errors (and connection errors) in the block as ``ame.errors``.

    Other exceptions, ame's own included, pass through untouched.
    """
    try:
        yield
    except Exception as exc:
        translated = translate(exc, tracking_uri)
        if translated is None or translated is exc:
            raise
        raise translated from exc


def translates(fn: F) -> F:
    """Function decorator: ``fn`` raises ame errors, never MLflow's (generators too).

    A method's store (``self.store.tracking_uri``) names the store in messages.
    """

    def _uri(args: tuple[Any, ...]) -> Optional[str]:
        store = getattr(args[0], "store", None) if args else None
        return getattr(store, "tracking_uri", None)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            with mlflow_errors(_uri(args)):
                yield from fn(*args, **kwargs)

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with mlflow_errors(_uri(args)):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def translates_mlflow_errors(cls: C) -> C:
    """Class decorator: every public method of ``cls`` raises ame errors, never MLflow's.

    Applied to ``Registry`` (and whatever else hands registry results to the
    CLI or the UI), so a method added later is covered without remembering to.
    """
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        setattr(cls, name, translates(member))
    return cls
