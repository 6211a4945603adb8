"""ChatModel against a real OpenAI-compatible server, through the official openai client."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.pyfunc import PythonModelContext

from ame.errors import LLMConfigError
from ame.llm import ChatModel, ChatModelConfig, results_from_frame
from ame.llm.errors import LLMAuthError
from tests.llm.llm_fake_server import FakeOpenAI


def _context(artifacts: dict[str, str]) -> PythonModelContext:
    return PythonModelContext(artifacts=artifacts, model_config={})


def _loaded(config_file: Path) -> ChatModel:
    model = ChatModel()
    model.load_context(_context({"config": str(config_file)}))
    return model


def test_success_returns_text_and_metadata(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    model = _loaded(config_file)
    frame = model.predict(None, ["hello world", "second"])
    assert list(frame.columns) == [
        "text",
        "model",
        "finish_reason",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "latency_ms",
        "error_type",
        "error",
    ]
    rows = results_from_frame(frame)
    assert [r.text for r in rows] == ["echo: hello world", "echo: second"]
    first = rows[0]
    assert first.ok and first.model == "fake-gpt" and first.finish_reason == "stop"
    assert (first.prompt_tokens, first.completion_tokens, first.total_tokens) == (2, 3, 5)
    assert first.latency_ms is not None and first.latency_ms > 0
    assert first.error is None and first.error_type is None
    # The key came from the environment at load time, over the wire as a bearer token.
    assert {r["auth"] for r in fake_openai.script.requests} == {f"Bearer {api_key}"}
    # JSON-serialisable as pyfunc serving needs: ints stay ints, missing is null.
    record = json.loads(frame.to_json(orient="records"))[0]
    assert record["total_tokens"] == 5 and record["error"] is None


def test_temperature_and_max_tokens_pass_through_and_params_override(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    model = _loaded(config_file)
    model.predict(None, "one")
    model.predict(None, "two", params={"temperature": 0.9, "max_tokens": 1})
    first, second = fake_openai.script.bodies()
    assert (first["temperature"], first["max_tokens"], first["model"]) == (0.3, 64, "fake-gpt")
    assert (second["temperature"], second["max_tokens"]) == (0.9, 1)
    # max_tokens=1 really limited the answer: the server cut it and said so.
    rows = results_from_frame(model.predict(None, "three four", params={"max_tokens": 1}))
    assert rows[0].text == "echo:" and rows[0].finish_reason == "length"


def test_unset_options_are_not_sent(
    fake_openai: FakeOpenAI, config_dict: dict[str, Any], api_key: str
) -> None:
    config = {k: v for k, v in config_dict.items() if k not in ("temperature", "max_tokens")}
    ChatModel(config).predict(None, "x")
    (body,) = fake_openai.script.bodies()
    assert "temperature" not in body and "max_tokens" not in body


def test_500_then_success_is_retried(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    fake_openai.script.fail_next.extend([500, 500])
    model = _loaded(config_file)  # max_retries=2
    rows = results_from_frame(model.predict(None, "retry me"))
    assert rows[0].ok and rows[0].text == "echo: retry me"
    assert len(fake_openai.script.bodies("retry me")) == 3


def test_persistent_failure_is_an_error_row_and_the_batch_survives(
    fake_openai: FakeOpenAI, config_dict: dict[str, Any], api_key: str
) -> None:
    fake_openai.script.fail_prompts["bad"] = 500
    model = ChatModel({**config_dict, "max_retries": 1})
    rows = results_from_frame(model.predict(None, ["good 1", "bad", "good 2"]))
    assert [r.text for r in rows] == ["echo: good 1", None, "echo: good 2"]
    bad = rows[1]
    assert not bad.ok and bad.error_type == "InternalServerError"
    assert bad.error is not None and "scripted failure 500" in bad.error
    assert bad.model == "fake-gpt" and bad.total_tokens is None
    assert len(fake_openai.script.bodies("bad")) == 2  # first try + one retry


def test_timeout_is_an_error_row_within_a_bounded_time(
    fake_openai: FakeOpenAI, config_dict: dict[str, Any], api_key: str
) -> None:
    fake_openai.script.delay = 3.0
    model = ChatModel({**config_dict, "timeout": 0.3, "max_retries": 1})
    started = time.monotonic()
    rows = results_from_frame(model.predict(None, "slow"))
    elapsed = time.monotonic() - started
    assert rows[0].error_type == "APITimeoutError" and rows[0].text is None
    # Two attempts of 0.3 s plus one backoff pause (<= 1 s), far below the 3 s delay.
    assert elapsed < 2.5, elapsed
    assert len(fake_openai.script.bodies("slow")) == 2


def test_auth_error_for_every_item_raises_and_is_not_retried(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    fake_openai.script.expected_key = "sk-the-right-one"
    model = _loaded(config_file)
    with pytest.raises(LLMAuthError) as caught:
        model.predict(None, ["a", "b"])
    assert isinstance(caught.value, LLMConfigError)
    assert "OPENAI_API_KEY" in str(caught.value) and "401" in str(caught.value)
    assert len(fake_openai.script.requests) == 2  # one per item: 401 is never retried


def test_auth_error_on_some_items_stays_in_their_rows(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    fake_openai.script.fail_prompts["denied"] = 401
    rows = results_from_frame(_loaded(config_file).predict(None, ["fine", "denied"]))
    assert rows[0].ok
    assert rows[1].error_type == "AuthenticationError" and rows[1].text is None


def test_dataframe_and_chat_messages(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    model = _loaded(config_file)
    frame = model.predict(None, pd.DataFrame({"prompt": ["from frame"]}))
    assert frame["text"].tolist() == ["echo: from frame"]
    convo = [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "from chat"},
    ]
    assert model.predict(None, [convo])["text"].tolist() == ["echo: from chat"]
    assert fake_openai.script.bodies("from chat")[0]["messages"] == convo


def test_batch_runs_concurrently_and_keeps_order(
    fake_openai: FakeOpenAI, config_dict: dict[str, Any], api_key: str
) -> None:
    fake_openai.script.delay = 0.4
    model = ChatModel({**config_dict, "max_concurrency": 4})
    started = time.monotonic()
    frame = model.predict(None, [f"p{i}" for i in range(4)])
    elapsed = time.monotonic() - started
    assert frame["text"].tolist() == [f"echo: p{i}" for i in range(4)]
    assert elapsed < 1.2, elapsed  # sequential would take >= 1.6 s


def test_load_context_without_config_is_value_error() -> None:
    with pytest.raises(ValueError, match="no configuration"):
        ChatModel().load_context(_context({}))


def test_load_context_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        ChatModel().load_context(_context({"config": str(tmp_path / "missing.json")}))
    with pytest.raises(FileNotFoundError):
        ChatModel(config_file=str(tmp_path / "also-missing.json")).load_context(_context({}))


def test_load_context_without_key_in_env_is_a_config_error(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        _loaded(config_file)


def test_config_file_property_is_used_when_no_artifact(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    model = ChatModel(config_file=str(config_file))
    model.load_context(_context({}))
    assert model.config == ChatModelConfig.from_file(config_file)
    assert model.predict(None, "x")["text"].tolist() == ["echo: x"]


def test_in_process_literal_key_is_used_but_not_pickled(
    fake_openai: FakeOpenAI, config_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cloudpickle

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = ChatModel({**config_dict, "api_key": "sk-literal-in-process"})
    model.predict(None, "x")
    assert fake_openai.script.requests[0]["auth"] == "Bearer sk-literal-in-process"
    blob = cloudpickle.dumps(model)
    assert b"sk-literal-in-process" not in blob
    restored = cloudpickle.loads(blob)
    assert restored.config is not None and not restored.config.has_literal_key


def test_outputs_view_for_python_callers(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    from ame.registry import Outputs

    outputs = _loaded(config_file).outputs(["a", "b"])
    assert isinstance(outputs, Outputs)
    assert outputs.column("text") == ["echo: a", "echo: b"]
    assert outputs.metadata.uri == fake_openai.base_url and outputs.metadata.name == "fake-gpt"
    assert outputs.to_dict()["predictions"][0]["finish_reason"] == "stop"


def test_empty_batch_is_an_empty_frame_without_calls(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    frame = _loaded(config_file).predict(None, [])
    assert frame.empty and "text" in frame.columns
    assert fake_openai.script.requests == []


def test_bad_param_value_is_an_input_error(
    fake_openai: FakeOpenAI, config_file: Path, api_key: str
) -> None:
    from ame.llm.errors import LLMInputError

    with pytest.raises(LLMInputError, match="temperature"):
        _loaded(config_file).predict(None, "x", params={"temperature": "hot"})
    assert fake_openai.script.requests == []


def test_model_config_overrides_the_file_for_this_load(
    fake_openai: FakeOpenAI, config_file: Path, config_dict: dict[str, Any], api_key: str
) -> None:
    model = ChatModel()
    model.load_context(
        PythonModelContext(
            artifacts={"config": str(config_file)},
            model_config={"temperature": 1.5, "max_tokens": 7},
        )
    )
    model.predict(None, "tuned")
    (body,) = fake_openai.script.bodies("tuned")
    assert (body["temperature"], body["max_tokens"]) == (1.5, 7)
    # The other fields still come from the file.
    assert model.config is not None and model.config.timeout == config_dict["timeout"]


def test_model_config_alone_is_the_whole_config(
    fake_openai: FakeOpenAI, config_dict: dict[str, Any], api_key: str
) -> None:
    model = ChatModel()
    model.load_context(PythonModelContext(artifacts={}, model_config=config_dict))
    assert model.predict(None, "seed style")["text"].tolist() == ["echo: seed style"]


def test_model_config_override_keeps_an_in_memory_key_and_rejects_unknown_fields(
    fake_openai: FakeOpenAI, config_dict: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = ChatModel({**config_dict, "api_key": "sk-in-memory"})
    model.load_context(PythonModelContext(artifacts={}, model_config={"max_tokens": 2}))
    model.predict(None, "x")
    assert fake_openai.script.requests[0]["auth"] == "Bearer sk-in-memory"
    assert fake_openai.script.bodies()[0]["max_tokens"] == 2
    with pytest.raises(LLMConfigError, match=r"model_config: temprature"):
        ChatModel(config_dict).load_context(
            PythonModelContext(artifacts={}, model_config={"temprature": 0.1})
        )
