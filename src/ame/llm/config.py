"""The configuration of a chat-completion model, and the one rule about its API key.

A registered model is a directory anyone with read access to the store can
copy, so it must never carry a credential. The config therefore names *where*
the key comes from (``api_key_env``, or an ame secret ``api_key_secret``) and the
key itself is read only when the model is loaded, in the process that serves it.

Policy for a literal ``api_key`` (the seed's config has one): it is accepted so
existing config files keep working in-process, but it is *stripped*: it is a
``SecretStr`` excluded from every dump, so it never reaches the saved config
artifact or the pickled model, and the loaded model reads the key from
``api_key_env`` (or ``api_key_secret``) instead. ``register_llm_model`` logs a
warning when it strips one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ame.errors import LLMConfigError
from ame.llm.errors import LLMConfigFileNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
#: The placeholder handed to the client when the endpoint needs no key
#: (``api_key_env: null``): the official client refuses an empty key.
NO_KEY = "no-key-required"


class ChatModelConfig(BaseModel):
    """What a chat-completion model needs to call its endpoint, minus any secret.

    ``temperature`` and ``max_tokens`` are the defaults of every call; callers
    override them per request through ``params``. ``timeout`` is per attempt and
    ``max_retries`` bounds the client's own exponential backoff, so one item
    costs at most about ``(max_retries + 1) * timeout`` plus the backoff pauses.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, description="Model name the endpoint knows, e.g. gpt-4o-mini.")
    base_url: Optional[str] = Field(
        default=None, description="OpenAI-compatible endpoint, e.g. http://litellm:4000/v1."
    )
    temperature: Optional[float] = Field(default=None, ge=0.0, le=2.0)
    max_tokens: Optional[int] = Field(default=None, gt=0)
    timeout: float = Field(default=60.0, gt=0.0, description="Seconds per attempt.")
    max_retries: int = Field(default=2, ge=0, le=10)
    max_concurrency: int = Field(
        default=4, ge=1, le=64, description="Items of one batch sent at the same time."
    )
    system_prompt: Optional[str] = Field(
        default=None, description="Prepended as a system message to plain-string prompts."
    )
    api_key_env: Optional[str] = Field(
        default=DEFAULT_API_KEY_ENV,
        description="Environment variable holding the key; null for endpoints without auth.",
    )
    api_key_secret: Optional[str] = Field(
        default=None, description="Name of an ame secret holding the key (wins over the env)."
    )
    # Accepted for compatibility, never stored: see the module docstring.
    api_key: Optional[SecretStr] = Field(default=None, exclude=True, repr=False)

    @classmethod
    def from_file(cls, path: Path | str) -> ChatModelConfig:
        """Read a JSON config file; FileNotFoundError when missing, LLMConfigError when bad."""
        file = Path(path)
        if not file.is_file():
            raise LLMConfigFileNotFoundError(f"LLM config file not found: {file}")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LLMConfigError(f"{file}: not valid JSON ({exc})") from exc
        return cls.parse(data, source=str(file))

    @classmethod
    def parse(cls, data: Any, source: str = "LLM config") -> ChatModelConfig:
        """Validate a mapping into a config, turning pydantic's errors into one readable line."""
        if isinstance(data, ChatModelConfig):
            return data
        if not isinstance(data, dict):
            raise LLMConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise LLMConfigError(f"{source}: {problems}") from exc

    @property
    def has_literal_key(self) -> bool:
        """True when the config was given a key in clear (it will not be stored)."""
        return self.api_key is not None

    def public_dict(self) -> dict[str, Any]:
        """The config as stored in a model's artifacts: every field but the key."""
        return self.model_dump(mode="json", exclude={"api_key"})

    def write_public(self, path: Path) -> Path:
        """Write the key-free config as JSON to ``path`` atomically and return it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.public_dict(), handle, indent=2, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def resolve_api_key(self) -> str:
        """The key to call the endpoint with, read now from where the config says.

        Order: an ame secret (``api_key_secret``), a literal key given in this
        process, the environment variable ``api_key_env``; ``api_key_env: null``
        with none of those means the endpoint needs no key.
        """
        if self.api_key_secret:
            return _read_secret(self.api_key_secret)
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env is None:
            return NO_KEY
        value = os.environ.get(self.api_key_env)
        if not value:
            raise LLMConfigError(
                f"no API key for LLM model '{self.model}': set the environment variable "
                f"{self.api_key_env} (named by api_key_env in its config) where the model is loaded"
            )
        return value


def _read_secret(name: str) -> str:
    """Read an ame secret (``ame secret set NAME``) from ame's secret store (ame.secrets)."""
    from ame.secrets import SecretStore

    store = SecretStore()
    value = store.get(name)
    if not value:
        raise LLMConfigError(
            f"ame secret '{name}' (api_key_secret) is not set in {store.path}: "
            f"set it with 'ame secret set {name}' where the model is loaded"
        )
    return value
