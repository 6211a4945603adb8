"""What the fields of ame.yml hold, and the words for what went wrong with them.

The pydantic classes of ``ame.spec.model`` check types, bounds and patterns
natively (strict mode, so ``replicas: "3"`` is a string, not a number). This
module adds what pydantic cannot know:

- ``What``: a field's description in words (``an image name``), read by
  ``ame.spec.normalise`` to turn pydantic's ``string_type`` into ``expected an
  image name, got the number 5``;
- the patterns of names and their messages (``'my project' is not a valid name``);
- ``Units``: the few fields parsed by ``ame.spec.units`` (``10G``, ``500m``,
  ``30s``, cron, time zones), the only Python validators on the common path;
- ``EMPTY``: what the normaliser gives for an empty YAML value or a leftover
  ``...`` placeholder, a value no field accepts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PYTHON_VERSION_PATTERN = r"^[0-9][0-9.]*$"
URL_PATH_PATTERN = r"^/"
NAME_RE = re.compile(NAME_PATTERN)
ENV_NAME_RE = re.compile(ENV_NAME_PATTERN)
# What a value that does not match a pattern is told ({text} is the value, quoted).
PATTERN_MESSAGES = {
    NAME_PATTERN: "{text} is not a valid name: use letters, digits, '_', '-' and '.', "
    "starting with a letter, digit or '_'",
    ENV_NAME_PATTERN: "{text} is not a valid environment variable name",
    PYTHON_VERSION_PATTERN: "{text} is not a Python version: expected one such as 3.11",
    URL_PATH_PATTERN: "a path must start with '/', got {text}",
}


@dataclass(frozen=True)
class What:
    """A field's contents in words, for messages; ``unknown`` words a value not among its choices.

    Pydantic ignores this metadata; the normaliser reads it from the field.
    """

    what: str
    unknown: str | None = None


class _Refused:
    """An empty YAML value or a placeholder: a value no field accepts (see ``EMPTY``)."""

    _instance: _Refused | None = None

    def __new__(cls) -> _Refused:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __deepcopy__(self, memo: dict[int, Any]) -> _Refused:
        return self

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY = _Refused()


def fail(message: str, at: str | None = None, *, on_key: bool = False) -> NoReturn:
    """Raise the error whose message is what the user reads.

    ``at`` names a key below the value (``minReplicas`` of ``autoscaling``)
    where the issue is to be placed: at its value, or with ``on_key`` at the key.
    """
    raise PydanticCustomError("ame", "{message}", {"message": message, "at": at, "on_key": on_key})


def refuse(what: str) -> NoReturn:
    """Raise "expected WHAT, got ..."; the normaliser describes what was written there."""
    raise PydanticCustomError("ame_expected", "expected {what}", {"what": what})


def describe(value: object) -> str:
    """What a Python value is, in words (for values that come without a YAML node)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None or value is EMPTY:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"the string {str(value)!r}"


def converted(value: object, convert: Callable[[object], Any], what: str) -> Any:
    """``value`` passed through ``convert`` (a units parser), its ValueError as the message.

    ``None`` (an optional field left unset in code) stays ``None``; a file never
    gives ``None``, only ``EMPTY``.
    """
    if value is None:
        return None
    if value is EMPTY or isinstance(value, (dict, list)):
        refuse(what)
    try:
        return convert(value)
    except (ValueError, ArithmeticError) as exc:
        # ArithmeticError: decimal overflow in a quantity such as 1e999999Gi
        fail(str(exc) or f"{value!r} is out of range")


def Units(convert: Callable[[object], Any], what: str) -> BeforeValidator:
    """A field parsed by a units function (``parse_bytes``, ``parse_cpu``...)."""
    return BeforeValidator(functools.partial(converted, convert=convert, what=what))
