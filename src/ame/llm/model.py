"""``ChatModel``: a chat-completion endpoint packaged as an MLflow pyfunc model.

This is the seed's ``CustomSaver.Adapter``: registering a configured client as
a model version lets an LLM be versioned, aliased, validated and served exactly
like a trained model. It calls the endpoint with the official ``openai``
client, which speaks to OpenAI and to every OpenAI-compatible server (LiteLLM,
vLLM, Ollama...).

Decisions:

- Retries are the client's own (``max_retries`` from the config): exponential
  backoff from 0.5 s with jitter, capped at 8 s a pause, on connection errors,
  timeouts, 408, 409, 429 and 5xx, honouring ``Retry-After``. A 401 is not retried.
- An item still failing after its retries becomes an error row (``text`` null,
  ``error_type`` and ``error`` set); the batch carries on.
- If *every* item of a batch fails with 401, the key is wrong, not an item:
  ``predict`` raises ``LLMAuthError`` so a server answers with an error instead of
  a 200 full of identical failures. A 401 on some items only stays in its rows.
- The client (it holds the key) is never pickled, and the config kept on the
  object is the key-free one, so saving the model stores no secret.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from mlflow.pyfunc import PythonModel

from ame.errors import AmeError
from ame.llm.config import ChatModelConfig
from ame.llm.errors import (
    LLMAuthError,
    LLMConfigFileNotFoundError,
    LLMInputError,
    MissingLLMConfigError,
)
from ame.llm.inputs import Conversation, to_conversations
from ame.llm.results import OUTPUT_COLUMNS, OUTPUT_TYPES, ChatResult, results_to_frame

if TYPE_CHECKING:
    import openai
    import pandas as pd
    from mlflow.models import ModelSignature

    from ame.registry.schemas import Outputs

logger = logging.getLogger(__name__)

#: Request parameters a caller may override per call through ``params``.
PARAM_TYPES: dict[str, type] = {"temperature": float, "max_tokens": int}

#: Config fields a loader may override for one load through ``model_config``.
#: They are saved as ``model_config`` keys with null values ("as in the config
#: file"), because MLflow only passes load-time keys that were saved; the API key
#: is deliberately not among them.
OVERRIDABLE: tuple[str, ...] = (
    "model",
    "base_url",
    "temperature",
    "max_tokens",
    "timeout",
    "max_retries",
    "max_concurrency",
    "system_prompt",
    "api_key_env",
    "api_key_secret",
)


class ChatModel(PythonModel):
    """A pyfunc model whose prediction is a chat completion from a configured endpoint.

    ``ChatModel(config)`` is ready to predict in this process (the seed's
    ``__init__`` builds the client when the key is available). A saved and
    re-loaded one gets its config from the ``config`` artifact in
    ``load_context``, and its key from the environment at that moment.
    """

    # Inputs are normalised by ame.llm.inputs and governed by the signature;
    # MLflow's type-hint validation would only warn about the Union hint.
    _skip_type_hint_validation = True

    def __init__(
        self,
        config: Union[ChatModelConfig, dict[str, Any], None] = None,
        config_file: Optional[str] = None,
    ) -> None:
        self.config_file = config_file
        self.config: Optional[ChatModelConfig] = (
            ChatModelConfig.parse(config) if config is not None else None
        )
        self._client: Optional[openai.OpenAI] = None
        if self.config is not None:
            try:
                self._client = build_client(self.config)
            except AmeError as exc:  # no key here: fine until the model is loaded
                logger.debug("chat client not built at init (%s); built on load", exc)

    # --- pickling: what MLflow stores -------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Drop the client and any literal key: a saved model carries no secret."""
        state = dict(self.__dict__)
        state["_client"] = None
        if self.config is not None:
            state["config"] = ChatModelConfig.parse(self.config.public_dict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # --- pyfunc -----------------------------------------------------------

    def load_context(self, context: Any) -> None:
        """Read the JSON config (artifact ``config``, else ``config_file``); build the client.

        ``context.model_config`` (what ``CustomLoader().load(uri, model_config=...)``
        and ``Adapter.load_context(...)`` pass) overrides fields of that config for
        this load only, e.g. ``{"temperature": 0.0}``: one stored version can run
        with other settings without a new registration. Given alone, with no file
        and no config, it is the whole config (the seed's
        ``load_context(model_config)``).

        Raises ``MissingLLMConfigError`` (a ``ValueError``) when no config was
        given in any form, ``LLMConfigFileNotFoundError`` (a ``FileNotFoundError``)
        when the file is missing, and ``LLMConfigError`` when no key can be read or
        an override is not a config field.
        """
        artifacts = getattr(context, "artifacts", None) or {}
        overrides = dict(getattr(context, "model_config", None) or {})
        path = artifacts.get("config") or self.config_file
        if path:
            if not Path(path).is_file():
                raise LLMConfigFileNotFoundError(f"LLM config file not found: {path}")
            self.config = ChatModelConfig.from_file(path)
        elif self.config is None and not any(v is not None for v in overrides.values()):
            raise MissingLLMConfigError(
                "no configuration for the chat model: log it with artifacts={'config': <json>} "
                "or pass config / config_file"
            )
        self.config = _with_overrides(self.config, overrides)
        self._client = build_client(self.config)
        logger.info("chat model %s ready (endpoint %s)", self.config.model, self._endpoint())

    def predict(
        self, context: Any, model_input: Any, params: Optional[dict[str, Any]] = None
    ) -> pd.DataFrame:
        """One row per item of ``model_input``: ``text`` plus model, usage, latency, error.

        ``params`` may override ``temperature`` and ``max_tokens`` for this call.
        See ``ame.llm.inputs`` for the accepted input shapes.
        """
        config, client = self._ready()
        conversations = to_conversations(model_input, config.system_prompt)
        request = _request_options(config, params)
        workers = min(config.max_concurrency, max(1, len(conversations)))
        if workers == 1:
            results = [_complete(client, config, c, request) for c in conversations]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ame-llm") as pool:
                results = list(
                    pool.map(lambda c: _complete(client, config, c, request), conversations)
                )
        if results and all(r.error_type == "AuthenticationError" for r in results):
            raise LLMAuthError(
                f"the endpoint {self._endpoint()} rejected the API key for model "
                f"'{config.model}' (401: {results[0].error}); check {_key_source(config)}"
            )
        return results_to_frame(results)

    def outputs(self, model_input: Any, params: Optional[dict[str, Any]] = None) -> Outputs:
        """``predict`` for Python callers: the rows as the registry's ``Outputs``.

        ``Outputs.predictions`` is the same frame ``predict`` returns; its
        metadata names the endpoint and the batch latency. A loaded model gives
        the same through ``CustomLoader().load(uri).predict(inputs)``.
        """
        from ame.registry.schemas import OutputMetadata, Outputs

        started = time.perf_counter()
        frame = self.predict(None, model_input, params)
        config, _ = self._ready()
        metadata = OutputMetadata(
            uri=self._endpoint(),
            flavor="python_function",
            name=config.model,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
        return Outputs(predictions=frame, metadata=metadata, raw=frame)

    # --- helpers ----------------------------------------------------------

    def _ready(self) -> tuple[ChatModelConfig, openai.OpenAI]:
        if self.config is None:
            raise MissingLLMConfigError(
                "the chat model has no configuration: call load_context or pass config"
            )
        if self._client is None:
            self._client = build_client(self.config)
        return self.config, self._client

    def _endpoint(self) -> str:
        if self.config is not None and self.config.base_url:
            return self.config.base_url
        return "https://api.openai.com/v1"


def _with_overrides(
    config: Optional[ChatModelConfig], overrides: dict[str, Any]
) -> ChatModelConfig:
    """``config`` with the fields of ``overrides`` replaced, validated like a config file.

    A literal key held in memory survives the merge (``public_dict`` leaves it
    out); it is still never pickled or stored (see ``__getstate__``).
    """
    # A null value is a key saved in the model's model_config but not overridden.
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        if config is None:
            raise MissingLLMConfigError(
                "no configuration for the chat model: model_config is empty"
            )
        return config
    merged: dict[str, Any] = config.public_dict() if config is not None else {}
    if config is not None and config.api_key is not None and "api_key" not in overrides:
        merged["api_key"] = config.api_key.get_secret_value()
    merged.update(overrides)
    return ChatModelConfig.parse(merged, source="model_config")


def build_client(config: ChatModelConfig) -> openai.OpenAI:
    """The official client for ``config``, its key read now from where the config says."""
    import openai

    return openai.OpenAI(
        api_key=config.resolve_api_key(),
        base_url=config.base_url,
        timeout=config.timeout,
        max_retries=config.max_retries,
    )


def chat_signature() -> ModelSignature:
    """String prompt in; text plus metadata columns out; temperature/max_tokens as params.

    The input column is unnamed so a served model takes a plain list of
    strings (``{"inputs": ["hi"]}``) as well as a table with a ``prompt`` column.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string")]),
        outputs=Schema(
            [ColSpec(OUTPUT_TYPES[c], c, required=(c == "text")) for c in OUTPUT_COLUMNS]
        ),
        params=ParamSchema(
            [ParamSpec("temperature", "double", None), ParamSpec("max_tokens", "long", None)]
        ),
    )


def _request_options(config: ChatModelConfig, params: Optional[dict[str, Any]]) -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": config.temperature, "max_tokens": config.max_tokens}
    for key, value in (params or {}).items():
        if key not in PARAM_TYPES:
            logger.warning("ignoring unknown parameter %r (known: %s)", key, sorted(PARAM_TYPES))
            continue
        if value is not None:
            try:
                options[key] = PARAM_TYPES[key](value)
            except (TypeError, ValueError):
                raise LLMInputError(
                    f"parameter {key} must be a {PARAM_TYPES[key].__name__}, got {value!r}"
                ) from None
    return {k: v for k, v in options.items() if v is not None}


def _complete(
    client: openai.OpenAI,
    config: ChatModelConfig,
    messages: Conversation,
    options: dict[str, Any],
) -> ChatResult:
    """Call the endpoint for one conversation; any failure becomes an error row."""
    started = time.perf_counter()
    try:
        response = client.chat.completions.create(
            model=config.model,
            messages=messages,  # type: ignore[arg-type]
            **options,
        )
    except Exception as exc:  # the seed: a failing item is handled, not fatal
        elapsed = (time.perf_counter() - started) * 1000.0
        # Endpoint errors are expected and say enough; anything else gets its traceback.
        endpoint_error = type(exc).__module__.startswith("openai")
        logger.warning(
            "chat completion failed for model %s: %s: %s",
            config.model,
            type(exc).__name__,
            exc,
            exc_info=not endpoint_error,
        )
        return ChatResult(
            text=None,
            model=config.model,
            latency_ms=round(elapsed, 3),
            error_type=type(exc).__name__,
            error=str(exc),
        )
    elapsed = (time.perf_counter() - started) * 1000.0
    choice = response.choices[0] if response.choices else None
    usage = response.usage
    return ChatResult(
        text=choice.message.content if choice is not None else None,
        model=response.model or config.model,
        finish_reason=choice.finish_reason if choice is not None else None,
        prompt_tokens=usage.prompt_tokens if usage is not None else None,
        completion_tokens=usage.completion_tokens if usage is not None else None,
        total_tokens=usage.total_tokens if usage is not None else None,
        latency_ms=round(elapsed, 3),
    )


def _key_source(config: ChatModelConfig) -> str:
    if config.api_key_secret:
        return f"the ame secret {config.api_key_secret}"
    if config.api_key_env:
        return f"the environment variable {config.api_key_env}"
    return "the endpoint's authentication settings"
