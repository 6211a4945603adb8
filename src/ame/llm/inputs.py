"""Turning whatever a caller sends to ``predict`` into a list of chat conversations.

Callers reach a chat model three ways: Python code with a list of prompts or of
message lists, pyfunc with a DataFrame (MLflow's scoring protocol turns every
request body into one), and a served model whose signature says "string".
Normalising here, once, keeps the adapter free of shape checks and gives every
path the same rules:

- a string is one prompt (a user message, after the config's system prompt);
- a string holding a JSON list of ``{"role", "content"}`` objects is a whole
  conversation: this is how conversations pass through the string signature;
- a list of ``{"role", "content"}`` dicts is one conversation; a list of lists
  of them is a batch of conversations;
- a DataFrame contributes its ``prompt`` column, else ``messages``, else its first;
  a ``messages`` column of single messages is one conversation, and a cell holding
  a list of prompts counts as those prompts (the shapes MLflow's scoring server
  gives OpenAI-style ``{"messages": [...]}`` and ``{"prompt": [...]}`` requests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ame.llm.errors import LLMInputError

Message = dict[str, Any]
Conversation = list[Message]

_PREFERRED_COLUMNS = ("prompt", "messages")


def to_conversations(model_input: Any, system_prompt: Optional[str] = None) -> list[Conversation]:
    """Normalise ``model_input`` into one conversation per item, in input order."""
    items = _items(model_input)
    return [_conversation(item, index, system_prompt) for index, item in enumerate(items)]


def _items(model_input: Any) -> list[Any]:
    return _flatten(_raw_items(model_input))


def _flatten(items: list[Any]) -> list[Any]:
    # MLflow's unified LLM request {"prompt": ["a", "b"]} arrives as one cell
    # holding a list of prompts; each prompt is an item of its own.
    out: list[Any] = []
    for item in items:
        value = list(item) if _is_array(item) else item
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out.extend(value)
        else:
            out.append(item)
    return out


def _raw_items(model_input: Any) -> list[Any]:
    if isinstance(model_input, str):
        return [model_input]
    if _is_dataframe(model_input):
        if model_input.shape[1] == 0:
            raise LLMInputError("the input table has no columns; send a 'prompt' column")
        column = next((c for c in _PREFERRED_COLUMNS if c in model_input.columns), None)
        series = model_input[column] if column is not None else model_input.iloc[:, 0]
        cells = list(series)
        if column == "messages" and _is_conversation(cells):
            # MLflow's unified chat request {"messages": [...]} arrives one message a row.
            return [cells]
        return cells
    if isinstance(model_input, Mapping):
        for key in _PREFERRED_COLUMNS:
            if key in model_input:
                value = model_input[key]
                return [value] if isinstance(value, str) or _is_conversation(value) else list(value)
        raise LLMInputError("a mapping input needs a 'prompt' or 'messages' key")
    if _is_conversation(model_input):
        return [model_input]
    if isinstance(model_input, Sequence) or _is_array(model_input):
        return [_unwrap_record(item) for item in model_input]
    raise LLMInputError(
        f"cannot read prompts from {type(model_input).__name__}: send a string, a list of "
        "strings, a list of chat message lists, or a table with a 'prompt' column"
    )


def _unwrap_record(item: Any) -> Any:
    # Records ([{"prompt": "..."}]) are what MLflow's "dataframe_records" look like.
    if isinstance(item, Mapping) and "role" not in item:
        for key in _PREFERRED_COLUMNS:
            if key in item:
                return item[key]
    return item


def _conversation(item: Any, index: int, system_prompt: Optional[str]) -> Conversation:
    if _is_array(item):
        item = list(item)
    if isinstance(item, str):
        parsed = _json_conversation(item)
        if parsed is not None:
            return parsed
        messages: Conversation = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": item})
        return messages
    if _is_conversation(item):
        return [dict(message) for message in item]
    raise LLMInputError(
        f"item {index}: expected a prompt string or a list of {{'role', 'content'}} messages, "
        f"got {type(item).__name__}"
    )


def _json_conversation(text: str) -> Optional[Conversation]:
    stripped = text.lstrip()
    if not stripped.startswith("["):
        return None
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    return [dict(m) for m in value] if _is_conversation(value) else None


def _is_conversation(value: Any) -> bool:
    if _is_array(value):
        value = list(value)
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in value)
    )


def _is_dataframe(value: Any) -> bool:
    # Duck-typed so this module does not import pandas for string inputs.
    return hasattr(value, "columns") and hasattr(value, "iloc") and hasattr(value, "shape")


def _is_array(value: Any) -> bool:
    return type(value).__name__ == "ndarray" and hasattr(value, "tolist")
