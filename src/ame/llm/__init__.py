"""Chat-completion models (OpenAI/LiteLLM-compatible endpoints) as registry models.

Import-light on purpose: the names below are loaded on first use, so importing
``ame.llm`` does not import mlflow or openai. See ``docs/llm.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ame._lazy import lazy_exports

if TYPE_CHECKING:
    from ame.llm.config import ChatModelConfig
    from ame.llm.model import ChatModel, chat_signature
    from ame.llm.register import LLMConfigSource, register_llm_model, save_llm_model
    from ame.llm.results import ChatResult, results_from_frame

__all__ = [
    "ChatModel",
    "ChatModelConfig",
    "ChatResult",
    "LLMConfigSource",
    "chat_signature",
    "register_llm_model",
    "results_from_frame",
    "save_llm_model",
]

_HOMES = {
    "ChatModelConfig": "ame.llm.config",
    "ChatModel": "ame.llm.model",
    "chat_signature": "ame.llm.model",
    "LLMConfigSource": "ame.llm.register",
    "register_llm_model": "ame.llm.register",
    "save_llm_model": "ame.llm.register",
    "ChatResult": "ame.llm.results",
    "results_from_frame": "ame.llm.results",
}

__getattr__ = lazy_exports(__name__, _HOMES)
