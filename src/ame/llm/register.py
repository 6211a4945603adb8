"""Saving and registering a chat model from its JSON config: what ``ame model register
M --llm-config config.json`` does.

The config file the user hands over may hold a literal ``api_key`` (the seed's
format has one). It is validated, stripped of the key (a warning says so), and
the key-free copy is what gets logged as the ``config`` artifact. The model is
saved through the registry's ``CustomSaver`` and registered through
``MlflowRegister`` like any other model, so aliases, tags, validation, packaging
and serving treat it as one.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from ame.llm.config import ChatModelConfig

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo

    from ame.registry.facade import Registry
    from ame.registry.registration import SavedModel
    from ame.registry.store import Store

logger = logging.getLogger(__name__)

#: Tags set on every version registered from an LLM config, so listings can tell.
KIND_TAG = "ame.kind"
KIND_VALUE = "llm"


def _as_config(config: Union[ChatModelConfig, dict[str, Any], Path, str]) -> ChatModelConfig:
    if isinstance(config, (str, Path)):
        return ChatModelConfig.from_file(config)
    return ChatModelConfig.parse(config)


def _requirements() -> list[str]:
    # Given explicitly: MLflow's inference would load the model in a subprocess,
    # which needs the API key and a reachable endpoint at save time.
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "openai", "pandas", "pydantic")]


def save_llm_model(
    config: Union[ChatModelConfig, dict[str, Any], Path, str],
    *,
    store: Optional[Store] = None,
    path: str = "model",
) -> ModelInfo:
    """Log a chat model (config artifact and signature) and return its ``ModelInfo``.

    No input example is logged on purpose: MLflow validates an input example by
    running the model on it, which would call the paid endpoint (and need the
    key) at every registration. The signature alone tells servers the shape.
    Logs into the active run when there is one, else a new run of the
    project's experiment (the registry's ``CustomSaver`` decides).
    """
    from ame.llm.model import OVERRIDABLE, ChatModel, chat_signature
    from ame.registry.savers import CustomSaver

    cfg = _as_config(config)
    if cfg.has_literal_key:
        logger.warning(
            "the LLM config for '%s' contains a literal api_key: it is NOT stored with the "
            "model; set %s where the model is loaded",
            cfg.model,
            cfg.api_key_env or "the key's environment variable",
        )
    public = ChatModelConfig.parse(cfg.public_dict())
    with tempfile.TemporaryDirectory(prefix="ame-llm-") as tmp:
        config_file = public.write_public(Path(tmp) / "config.json")
        saver = CustomSaver(
            path=path,
            config_file=str(config_file),
            store=store,
            pip_requirements=_requirements(),
            # Declares which fields a loader may override (null: as in config.json).
            model_config=dict.fromkeys(OVERRIDABLE),
            metadata={KIND_TAG: KIND_VALUE, "llm_model": public.model},
        )
        return saver.save(
            model=ChatModel(config=public),
            signature=chat_signature(),
            input_example=None,
        )


def register_llm_model(
    name: str,
    config_path: Path,
    *,
    store: Store,
    description: Optional[str] = None,
    tags: Optional[dict[str, Any]] = None,
) -> ModelVersion:
    """Save the chat model of ``config_path`` and register it as a new version of ``name``.

    Returns the registered ``ModelVersion`` (fetched again, with its tags).
    Raises ``LLMConfigError`` subclasses for a missing or invalid config
    (``LLMConfigFileNotFoundError`` is also a ``FileNotFoundError``), and the
    registry's errors when saving or registering fails; nothing is registered then.
    """
    from ame.registry.registers import MlflowRegister

    cfg = _as_config(config_path)
    info = save_llm_model(cfg, store=store)
    version_tags: dict[str, Any] = {**_version_tags(cfg), **(tags or {})}
    register = MlflowRegister(tags=version_tags, store=store)
    version = register.register(name, info.model_uri, description=description)
    logger.info("registered LLM model %s version %s (%s)", name, version.version, cfg.model)
    return version


def _version_tags(cfg: ChatModelConfig) -> dict[str, str]:
    return {
        KIND_TAG: KIND_VALUE,
        "ame.llm.model": cfg.model,
        "ame.llm.base_url": cfg.base_url or "https://api.openai.com/v1",
    }


@dataclass(frozen=True)
class LLMConfigSource:
    """A chat-model JSON config as the source of a new version (``--llm-config``).

    ``ame.registry.registration.register_new_version`` takes it like a run or
    files: the registry's rules (one source, the alias policy) apply, and the
    registry never imports this package.
    """

    config_path: Path

    def save(self, registry: Registry) -> SavedModel:
        """Validate the config, log the key-free chat model and return where it is."""
        from ame.registry.registration import SavedModel

        cfg = _as_config(self.config_path)
        info = save_llm_model(cfg, store=registry.store)
        return SavedModel(info.model_uri, _version_tags(cfg))
