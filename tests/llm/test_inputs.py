"""Every input shape predict accepts becomes the right list of conversations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ame.llm.errors import LLMInputError
from ame.llm.inputs import to_conversations


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_single_string_and_list_of_strings() -> None:
    assert to_conversations("hi") == [_user("hi")]
    assert to_conversations(["a", "b"]) == [_user("a"), _user("b")]
    assert to_conversations(np.array(["a", "b"], dtype=object)) == [_user("a"), _user("b")]


def test_system_prompt_is_prepended_to_plain_prompts_only() -> None:
    convo = [{"role": "user", "content": "x"}]
    out = to_conversations(["a", convo], system_prompt="be brief")
    assert out[0] == [{"role": "system", "content": "be brief"}, *_user("a")]
    assert out[1] == convo


def test_dataframe_prefers_prompt_column_else_first() -> None:
    frame = pd.DataFrame({"id": ["1", "2"], "prompt": ["p1", "p2"]})
    assert to_conversations(frame) == [_user("p1"), _user("p2")]
    assert to_conversations(pd.DataFrame({0: ["q"]})) == [_user("q")]


def test_chat_message_lists() -> None:
    convo = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert to_conversations(convo) == [convo]  # one conversation
    assert to_conversations([convo, convo]) == [convo, convo]  # a batch of them
    assert to_conversations({"messages": convo}) == [convo]


def test_json_string_conversation_passes_through_a_string_signature() -> None:
    convo = [{"role": "user", "content": "from json"}]
    assert to_conversations([json.dumps(convo)]) == [convo]
    # A prompt that merely starts with a bracket stays a prompt.
    assert to_conversations(["[1, 2] are numbers"]) == [_user("[1, 2] are numbers")]


def test_records_with_prompt_key() -> None:
    assert to_conversations([{"prompt": "r1"}, {"prompt": "r2"}]) == [_user("r1"), _user("r2")]


@pytest.mark.parametrize("bad", [42, [1, 2], {"text": "x"}, pd.DataFrame()])
def test_unreadable_input_is_a_clear_error(bad: object) -> None:
    with pytest.raises(LLMInputError):
        to_conversations(bad)


def test_mlflow_unified_llm_request_shapes() -> None:
    # What MLflow's scoring server hands predict for {"messages": [...]} and {"prompt": [...]}.
    convo = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert to_conversations(pd.DataFrame({"messages": convo})) == [convo]
    assert to_conversations(pd.DataFrame({"prompt": [["a", "b"]]})) == [_user("a"), _user("b")]
    # A batch of whole conversations in a messages column stays a batch.
    batch = pd.DataFrame({"messages": [convo, convo]})
    assert to_conversations(batch) == [convo, convo]
