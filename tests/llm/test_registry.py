"""Save, register and load a chat model through the registry, in a real embedded store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest

from ame.errors import LLMConfigError
from ame.llm import ChatModelConfig, register_llm_model, results_from_frame
from ame.llm.errors import LLMConfigFileNotFoundError
from ame.registry import CustomLoader, Outputs
from tests.helpers import run_ame
from tests.llm.llm_fake_server import FakeOpenAI, Registered


def test_the_key_is_nowhere_in_the_store(registered: Registered) -> None:
    store_dir = registered.project / ".ame"
    files = [p for p in store_dir.rglob("*") if p.is_file()]
    artifact_files = [p for p in files if "artifacts" in p.parts]
    assert any(p.name == "config.json" for p in artifact_files)
    assert any(p.name == "python_model.pkl" for p in artifact_files)
    needle = registered.key.encode()
    leaking = [p for p in files if needle in p.read_bytes()]
    assert leaking == []  # artifacts and the mlflow.db alike


def test_saved_config_artifact_is_the_key_free_config(registered: Registered) -> None:
    (config,) = [
        p for p in (registered.project / ".ame" / "artifacts").rglob("config.json") if p.is_file()
    ]
    stored = json.loads(config.read_text())
    assert "api_key" not in stored
    assert stored["api_key_env"] == "OPENAI_API_KEY"
    assert ChatModelConfig.from_file(config).temperature == 0.1


def test_version_is_tagged_and_described(registered: Registered) -> None:
    assert registered.tags["ame.kind"] == "llm"
    assert registered.tags["ame.llm.model"] == "fake-gpt"
    client = mlflow.MlflowClient(registered.store.tracking_uri, registered.store.registry_uri)
    mv = client.get_model_version(registered.name, registered.version)
    assert mv.description == "a chat model"
    assert registered.requests_during_save == 0  # saving never calls the endpoint
    # --tag and --alias of `ame model register` apply to an LLM version as to any other.
    assert registered.tags["team"] == "support"
    by_alias = client.get_model_version_by_alias(registered.name, "champion")
    assert str(by_alias.version) == registered.version


def test_cli_refuses_bad_llm_configs_in_one_line(
    registered: Registered, tmp_path: Path, unique_name: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "m", "temprature": 0.5}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"model": "m"}))
    cases = [
        (["--llm-config", str(tmp_path / "missing.json")], "LLM config file not found"),
        (["--llm-config", str(bad)], "temprature: Extra inputs are not permitted"),
        (["--llm-config", str(good), "--run", "abc"], "give exactly one of"),
        (["--llm-config", str(good), "--pip", "x"], "--pip go with --files"),
    ]
    for args, message in cases:
        done = run_ame("model", "register", unique_name, *args, cwd=registered.project)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    client = mlflow.MlflowClient(registered.store.tracking_uri, registered.store.registry_uri)
    assert client.search_registered_models(f"name = '{unique_name}'") == []


def test_custom_loader_predicts_outputs(
    registered: Registered, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", registered.key)
    adapter = CustomLoader(store=registered.store).load(f"{registered.name}/{registered.version}")
    outputs = adapter.predict(["hi there", "second"])
    assert isinstance(outputs, Outputs)
    assert outputs.column("text") == ["echo: hi there", "echo: second"]
    assert outputs.metadata.name == registered.name
    assert outputs.metadata.version == registered.version
    rows = results_from_frame(outputs.predictions)
    assert rows[0].model == "fake-gpt" and rows[0].total_tokens == 5
    body = fake_openai.script.bodies("hi there")[0]
    assert (body["temperature"], body["max_tokens"]) == (0.1, 32)
    assert fake_openai.script.requests[0]["auth"] == f"Bearer {registered.key}"


def test_loader_model_config_overrides_settings_without_a_new_version(
    registered: Registered, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", registered.key)
    ref = f"{registered.name}/{registered.version}"
    adapter = CustomLoader(store=registered.store).load(
        ref, model_config={"temperature": 0.0, "max_tokens": 3}
    )
    adapter.predict(["overridden"])
    body = fake_openai.script.bodies("overridden")[0]
    assert (body["temperature"], body["max_tokens"]) == (0.0, 3)
    # The seed's Adapter.load_context(model_config): reload the same adapter otherwise.
    adapter.load_context({"temperature": 1.2})
    adapter.predict(["reloaded"])
    body = fake_openai.script.bodies("reloaded")[0]
    assert (body["temperature"], body["max_tokens"]) == (1.2, 32)  # max_tokens as saved


def test_plain_pyfunc_load_with_params(
    registered: Registered, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", registered.key)
    mlflow.set_tracking_uri(registered.store.tracking_uri)
    mlflow.set_registry_uri(registered.store.registry_uri)
    model = mlflow.pyfunc.load_model(f"models:/{registered.name}/{registered.version}")
    conversation = json.dumps([{"role": "user", "content": "as json"}])
    frame = model.predict(["plain", conversation], params={"temperature": 0.7})
    assert frame["text"].tolist() == ["echo: plain", "echo: as json"]
    assert {b["temperature"] for b in fake_openai.script.bodies()} == {0.7}
    signature = model.metadata.signature
    assert signature is not None
    assert [c.type.name for c in signature.inputs.inputs] == ["string"]
    assert "text" in signature.outputs.input_names()
    assert {p.name for p in signature.params.params} == {"temperature", "max_tokens"}


def test_loading_without_the_key_fails_clearly(
    registered: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(Exception) as caught:
        CustomLoader(store=registered.store).load(f"{registered.name}/{registered.version}")
    assert "OPENAI_API_KEY" in str(caught.value)


def test_register_with_missing_or_bad_config_registers_nothing(
    registered: Registered, tmp_path: Path, unique_name: str
) -> None:
    store = registered.store
    with pytest.raises(LLMConfigFileNotFoundError):
        register_llm_model(unique_name, tmp_path / "missing.json", store=store)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "m", "max_token": 5}))
    with pytest.raises(LLMConfigError, match="max_token"):
        register_llm_model(unique_name, bad, store=store)
    client = mlflow.MlflowClient(store.tracking_uri, store.registry_uri)
    assert client.search_registered_models(f"name = '{unique_name}'") == []


@pytest.mark.slow
def test_register_and_load_against_a_tracking_server(
    mlflow_server: str,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ame.registry.store import resolve_store

    key = f"sk-remote-{uuid.uuid4().hex}"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"model": "fake-gpt", "base_url": fake_openai.base_url, "api_key": key})
    )
    store = resolve_store(tracking_uri=mlflow_server)
    version = register_llm_model(unique_name, config, store=store)
    # What the server stores, fetched back through its artifact API: no key anywhere.
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{unique_name}/{version.version}",
            dst_path=str(tmp_path / "download"),
            tracking_uri=mlflow_server,
        )
    )
    files = [p for p in local.rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in files)
    assert [p for p in files if key.encode() in p.read_bytes()] == []

    monkeypatch.setenv("OPENAI_API_KEY", key)
    adapter = CustomLoader(store=store).load(f"models:/{unique_name}/{version.version}")
    assert adapter.predict(["remote"]).column("text") == ["echo: remote"]
    assert fake_openai.script.requests[-1]["auth"] == f"Bearer {key}"
