"""Fixtures of the LLM tests: the fake OpenAI-compatible endpoint, a key, a config."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from ame.registry.store import embedded_store
from tests.helpers import run_ame
from tests.llm.llm_fake_server import FakeOpenAI, Registered

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """One fake endpoint per test session (per xdist worker)."""
    server = FakeOpenAI()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The session's fake endpoint with a fresh script for this test."""
    fake_openai_server.script.reset()
    yield fake_openai_server
    fake_openai_server.script.reset()


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A key in OPENAI_API_KEY, unique to the test, so artifact searches mean something."""
    key = f"sk-test-{os.urandom(12).hex()}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


@pytest.fixture
def config_dict(fake_openai: FakeOpenAI) -> dict[str, Any]:
    """A config pointing at the fake endpoint, with short timeouts."""
    return {
        "model": "fake-gpt",
        "base_url": fake_openai.base_url,
        "temperature": 0.3,
        "max_tokens": 64,
        "timeout": 5.0,
        "max_retries": 2,
    }


@pytest.fixture
def config_file(tmp_path: Path, config_dict: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_dict))
    return path


@pytest.fixture(scope="session")
def registered(
    tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI
) -> Iterator[Registered]:
    project = tmp_path_factory.mktemp("llm-project")
    (project / "ame.yml").write_text("project: llmtest\n")
    key = f"sk-secret-{uuid.uuid4().hex}"
    config = project / "config.json"
    # A literal key, as in the seed's config format: it must be stripped.
    config.write_text(
        json.dumps(
            {
                "model": "fake-gpt",
                "base_url": fake_openai_server.base_url,
                "temperature": 0.1,
                "max_tokens": 32,
                "timeout": 5,
                "max_retries": 1,
                "api_key": key,
            }
        )
    )
    store = embedded_store(project)
    name = f"llm-{uuid.uuid4().hex[:8]}"
    before = len(fake_openai_server.script.requests)
    # Registered through the real CLI, as a user would: `ame model register --llm-config`.
    done = run_ame(
        "model",
        "register",
        name,
        "--llm-config",
        str(config),
        "-d",
        "a chat model",
        "--tag",
        "team=support",
        "--alias",
        "champion",
        "--json",
        cwd=project,
        env={"OPENAI_API_KEY": key},  # present at save time too: still not stored
    )
    assert done.returncode == 0, done.stderr
    assert "api_key" in done.stderr and key not in done.stdout + done.stderr
    printed = json.loads(done.stdout)
    client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    version = client.get_model_version(name, printed["version"])
    yield Registered(
        store=store,
        project=project,
        name=name,
        version=str(version.version),
        key=key,
        tags=dict(version.tags),
        requests_during_save=len(fake_openai_server.script.requests) - before,
    )
