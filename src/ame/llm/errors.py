"""Errors of the chat-model area, each also the builtin type the seed's callers expect.

The seed's adapter raises ``ValueError`` when no config is given and
``FileNotFoundError`` when the config file is missing. These classes are both
that builtin and an ``LLMConfigError``, so seed-style code catching the builtin
and the CLI catching ``AmeError`` (one readable line, exit code 2) both work.
"""

from __future__ import annotations

from ame.errors import LLMConfigError


class MissingLLMConfigError(LLMConfigError, ValueError):
    """A chat model was asked to load without any configuration."""


class LLMConfigFileNotFoundError(LLMConfigError, FileNotFoundError):
    """The JSON config file a chat model was pointed at does not exist."""


class LLMInputError(LLMConfigError, ValueError):
    """``predict`` was given input it cannot read as prompts or chat conversations."""


class LLMAuthError(LLMConfigError):
    """The endpoint rejected the API key for every item of a batch (HTTP 401)."""
