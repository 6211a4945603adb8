"""ChatModelConfig: validation, file loading, and the key policy (stripped, never stored)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ame.errors import AmeError, LLMConfigError
from ame.llm.config import NO_KEY, ChatModelConfig
from ame.llm.errors import LLMConfigFileNotFoundError


def test_from_file_reads_every_field(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "model": "gpt-4o-mini",
                "base_url": "http://127.0.0.1:4000/v1",
                "temperature": 0.2,
                "max_tokens": 128,
                "timeout": 12.5,
                "max_retries": 4,
                "api_key_env": "LITELLM_KEY",
            }
        )
    )
    cfg = ChatModelConfig.from_file(path)
    assert (cfg.model, cfg.base_url, cfg.temperature, cfg.max_tokens) == (
        "gpt-4o-mini",
        "http://127.0.0.1:4000/v1",
        0.2,
        128,
    )
    assert (cfg.timeout, cfg.max_retries, cfg.api_key_env) == (12.5, 4, "LITELLM_KEY")


def test_missing_file_is_a_file_not_found_and_an_ame_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        ChatModelConfig.from_file(tmp_path / "nope.json")
    assert isinstance(caught.value, LLMConfigFileNotFoundError)
    assert isinstance(caught.value, AmeError)
    assert "nope.json" in str(caught.value)


def test_unknown_key_and_bad_values_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": "m", "temprature": 0.5, "max_tokens": -1}))
    with pytest.raises(LLMConfigError) as caught:
        ChatModelConfig.from_file(path)
    message = str(caught.value)
    assert "temprature" in message and "max_tokens" in message and str(path) in message


def test_invalid_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{model: ")
    with pytest.raises(LLMConfigError, match="not valid JSON"):
        ChatModelConfig.from_file(path)


def test_literal_key_is_accepted_but_never_dumped(tmp_path: Path) -> None:
    cfg = ChatModelConfig.parse({"model": "m", "api_key": "sk-literal-123"})
    assert cfg.has_literal_key
    assert cfg.resolve_api_key() == "sk-literal-123"  # usable in this process
    assert "sk-literal-123" not in repr(cfg)
    assert "api_key" not in cfg.public_dict()
    assert "sk-literal-123" not in cfg.model_dump_json()
    written = cfg.write_public(tmp_path / "out" / "config.json")
    assert "sk-literal-123" not in written.read_text()
    # The stored copy reads the key from the environment again.
    assert ChatModelConfig.from_file(written).api_key_env == "OPENAI_API_KEY"


def test_key_comes_from_the_named_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ChatModelConfig.parse({"model": "m", "api_key_env": "AME_TEST_LLM_KEY"})
    monkeypatch.delenv("AME_TEST_LLM_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="AME_TEST_LLM_KEY"):
        cfg.resolve_api_key()
    monkeypatch.setenv("AME_TEST_LLM_KEY", "sk-env")
    assert cfg.resolve_api_key() == "sk-env"


def test_null_key_env_means_no_auth() -> None:
    cfg = ChatModelConfig.parse({"model": "m", "api_key_env": None})
    assert cfg.resolve_api_key() == NO_KEY


def test_write_public_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    cfg = ChatModelConfig.parse({"model": "m"})
    target = tmp_path / "config.json"
    target.write_text("old")
    cfg.write_public(target)
    assert json.loads(target.read_text())["model"] == "m"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_key_from_an_ame_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ame.secrets import SecretStore

    secrets = tmp_path / "secrets.json"
    monkeypatch.setenv("AME_SECRETS_FILE", str(secrets))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    cfg = ChatModelConfig.parse({"model": "m", "api_key_secret": "openai"})
    with pytest.raises(LLMConfigError, match="ame secret set openai"):
        cfg.resolve_api_key()  # the secret wins over the env, even when unset
    SecretStore(secrets).set("openai", "sk-from-secret")
    assert cfg.resolve_api_key() == "sk-from-secret"
    assert "sk-from-secret" not in json.dumps(cfg.public_dict())


def test_importing_ame_llm_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ame.llm, ame.llm.config; "
        "heavy = [m for m in ('mlflow', 'openai', 'pandas') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
