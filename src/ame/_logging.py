"""Who may write to the user's terminal: ame's own log lines, and libraries' only on request.

MLflow installs a stderr handler of its own when it is imported, at INFO, so a
first command on a new store prints ``Creating initial MLflow database tables``
before ame's one line of output, and SQLAlchemy, alembic and Python warnings add
more. A CLI whose errors are one line cannot let that through, so this module is
the one place that decides, for every ``ame`` process (commands, servers, agents):

* ame's loggers (``ame.*``) reach stderr at WARNING, or at ``ame_level``;
* every other logger, MLflow's included, and ``warnings.warn`` reach it only with
  ``--verbose`` (INFO) or ``--debug`` (DEBUG).

MLflow is told not to install its handler (``MLFLOW_CONFIGURE_LOGGING=false``,
read when it is imported), and if it was imported already its handlers are taken
off. The variable is ame's, not the user's: ``user_environ`` removes it from the
environment that task processes get, so a training script's own ``mlflow`` calls
log as they would anywhere else.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO, Optional

MLFLOW_CONFIGURE_ENV = "MLFLOW_CONFIGURE_LOGGING"
# Set when ame (not the user) set MLFLOW_CONFIGURE_LOGGING, so that task
# processes get the user's environment back.
_OWNED_ENV = "AME_OWNS_MLFLOW_LOGGING"
# The loggers MLflow gives handlers of their own when it is imported.
_LIBRARY_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "huey")
# Loggers that belong to the product, shown at ``ame_level``.
_OWN_PREFIXES = ("ame",)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """A handler that writes to whatever ``sys.stderr`` is at the time of the record.

    Tests and embedding callers swap ``sys.stderr``; a handler holding the stream
    it was made with would write to a closed or stale one.
    """

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:  # StreamHandler.__init__ assigns it
        pass


class _Gate(logging.Filter):
    """Passes ame's records at ``own_level`` and everyone else's at ``other_level``."""

    def __init__(self) -> None:
        super().__init__()
        self.own_level = logging.WARNING
        self.other_level = logging.CRITICAL + 1
        self.own_prefixes: tuple[str, ...] = _OWN_PREFIXES

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        own = any(name == p or name.startswith(p + ".") for p in self.own_prefixes)
        return record.levelno >= (self.own_level if own else self.other_level)


_handler: Optional[_StderrHandler] = None
_gate = _Gate()


def configure(
    *,
    verbose: bool = False,
    debug: bool = False,
    ame_level: int = logging.WARNING,
    also_own: tuple[str, ...] = (),
    fmt: Optional[str] = None,
) -> None:
    """Set who may log to stderr for this process; safe to call again.

    ``also_own`` names more loggers to show at ``ame_level`` (the server shows
    uvicorn's start-up lines). ``fmt`` replaces the plain ``message`` format.
    """
    global _handler
    if not os.environ.get(MLFLOW_CONFIGURE_ENV):
        os.environ[MLFLOW_CONFIGURE_ENV] = "false"
        os.environ[_OWNED_ENV] = "1"
    _detach_library_handlers()
    if debug:
        own_level, other_level = logging.DEBUG, logging.DEBUG
    elif verbose:
        own_level, other_level = min(ame_level, logging.INFO), logging.INFO
    else:
        own_level, other_level = ame_level, logging.CRITICAL + 1
    _gate.own_level, _gate.other_level = own_level, other_level
    _gate.own_prefixes = _OWN_PREFIXES + tuple(also_own)
    root = logging.getLogger()
    if _handler is None:
        _handler = _StderrHandler()
        _handler.addFilter(_gate)
        root.addHandler(_handler)
    if fmt is None:
        fmt = "%(levelname)s %(name)s: %(message)s" if verbose or debug else "%(message)s"
    _handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%d %H:%M:%S"))
    root.setLevel(min(own_level, other_level))
    # Libraries' loggers that set a level of their own (MLflow's INFO) must not
    # drop records before the gate decides.
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(True)
    quiet_mlflow_output()


def _detach_library_handlers() -> None:
    """Take MLflow's own stderr handlers off, if MLflow configured them already."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if h is _handler]
        logger.propagate = True


def user_environ(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) as the user had it, for task processes.

    Removes the logging switch that ``configure`` set for ame's own benefit; a
    value the user set is kept.
    """
    env = dict(os.environ if environ is None else environ)
    if env.pop(_OWNED_ENV, None) is not None:
        env.pop(MLFLOW_CONFIGURE_ENV, None)
    return env


def quiet_mlflow_output() -> None:
    """Silence MLflow's direct prints (``Successfully registered model ...``) unless verbose.

    MLflow prints some messages to its own stream rather than through logging;
    called where ame imports MLflow (``registry.store.activate``) and by
    ``configure`` when MLflow is loaded already.
    """
    utils = sys.modules.get("mlflow.utils.logging_utils")
    if utils is None or _handler is None:  # a library caller keeps MLflow's defaults
        return
    _detach_library_handlers()
    utils.MLFLOW_LOGGING_STREAM.enabled = _gate.other_level <= logging.INFO
