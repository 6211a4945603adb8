"""Savers, loaders, registers and version management, on an embedded store and a real server.

Every test here runs against both stores (the ``store`` fixture is parametrised),
so anything ame does locally also works on a remote MLflow server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
import pytest

from ame.errors import (
    AliasNotFoundError,
    InvalidModelURIError,
    ModelNotFoundError,
    RegistryError,
    UnreadableFilesError,
    UnsupportedFlavorError,
    VersionInUseError,
    VersionNotFoundError,
)
from ame.registry import (
    BuiltinLoader,
    BuiltinSaver,
    CustomLoader,
    CustomSaver,
    Loader,
    MlflowRegister,
    Outputs,
    Register,
    Registry,
    Saver,
    activate,
)
from ame.registry.errors import LoaderHookError, PredictionError, RegistrationError, SaveError
from ame.registry.store import Store

from .conftest import PIP, Tiny


class Echo(mlflow.pyfunc.PythonModel):
    """A custom model that reads its JSON config and answers with it."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["config"]) as handle:
            self.config = json.load(handle)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return [f"{self.config['greeting']} {x}" for x in model_input["text"]]


# --- abstract bases ---------------------------------------------------------------


def test_bases_are_abstract() -> None:
    for base in (Saver, Loader, Register):
        with pytest.raises(TypeError):
            base()  # type: ignore[abstract]


def test_unknown_flavor_lists_valid_ones() -> None:
    with pytest.raises(UnsupportedFlavorError, match="sklearn"):
        BuiltinSaver(flavor="sklearnn")
    with pytest.raises(UnsupportedFlavorError):
        BuiltinSaver(flavor="store.tracking")


def test_custom_saver_refuses_what_it_cannot_save(store: Store, tmp_path: Path) -> None:
    with pytest.raises(SaveError, match="BuiltinSaver"):
        CustomSaver(store=store).save(model=object())
    with pytest.raises(UnreadableFilesError, match=r"missing\.json"):
        CustomSaver(config_file=str(tmp_path / "missing.json"), store=store).save(model=Echo())


def test_save_refuses_bad_schemas_and_models(store: Store, tiny: Tiny) -> None:
    from mlflow.models import infer_signature

    saver = BuiltinSaver(flavor="sklearn", store=store, pip_requirements=PIP)
    with pytest.raises(SaveError, match=r"must be an mlflow\.models\.ModelSignature"):
        saver.save(tiny.model, signature={"inputs": "a, b"})
    signature = infer_signature(tiny.X, tiny.y)
    with pytest.raises(SaveError, match=r"does not match the signature: .*missing inputs"):
        saver.save(tiny.model, signature=signature, input_example=pd.DataFrame({"zz": ["x"]}))
    with pytest.raises(SaveError, match="could not save the model"):
        saver.save(object())
    # The refusals above wrote no model: a good save still works and keeps its schema.
    info = saver.save(tiny.model, signature=signature, input_example=tiny.X.head(2))
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["a", "b"]


class Greeter(mlflow.pyfunc.PythonModel):
    """A custom model configured through ``model_config`` (overridable at load time).

    MLflow only lets a loader override keys the model was saved with.
    """

    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        if config.get("fail"):
            raise RuntimeError("asked to fail")
        self.greeting = config["greeting"]

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return [f"{self.greeting} {x}" for x in model_input["text"]]


def test_loader_adapter_load_context_overrides_model_config(
    store: Store, registry: Registry, logged: Any, unique_name: str
) -> None:
    info = CustomSaver(
        path="greeter",
        model_config={"greeting": "hello", "fail": False},
        store=store,
        pip_requirements=PIP,
    ).save(model=Greeter())
    version = registry.register(unique_name, info.model_uri)
    frame = pd.DataFrame({"text": ["x"]})

    adapter = CustomLoader(store=store).load(f"{unique_name}/{version.version}")
    assert adapter.predict(frame).column() == ["hello x"]
    assert adapter.load_context({"greeting": "hey"}) is adapter
    assert adapter.predict(frame).column() == ["hey x"]
    assert adapter.load_context().predict(frame).column() == ["hello x"]
    other = CustomLoader(store=store).load(unique_name, model_config={"greeting": "hi"})
    assert other.predict(frame).column() == ["hi x"]
    with pytest.raises(RegistryError, match=rf"cannot load model {unique_name}/1: .*asked to fail"):
        CustomLoader(store=store).load(unique_name, model_config={"fail": True})
    with pytest.raises(RegistryError, match="model_config must be a dict"):
        adapter.load_context("greeting=hey")  # type: ignore[arg-type]

    registry.register(unique_name, logged.model_uri)
    native = BuiltinLoader(store=store).load(f"{unique_name}/2")
    with pytest.raises(UnsupportedFlavorError, match="takes no model_config"):
        native.load_context({"greeting": "hey"})


def test_custom_saver_adapter_is_the_llm_client_adapter(tmp_path: Path) -> None:
    """The seed's ``CustomSaver.Adapter``: a LiteLLM/OpenAI-compatible client from a config."""
    from types import SimpleNamespace

    from ame.llm.model import ChatModel

    assert CustomSaver.Adapter is ChatModel
    config = {
        "model": "gpt-4o-mini",
        "api_key": "sk-test",
        "base_url": "http://127.0.0.1:9/v1",
        "temperature": 0.2,
        "max_tokens": 16,
    }
    adapter = CustomSaver.Adapter(config)
    assert adapter._client is not None
    assert str(adapter._client.base_url).rstrip("/") == "http://127.0.0.1:9/v1"
    assert adapter.config is not None
    assert (adapter.config.temperature, adapter.config.max_tokens) == (0.2, 16)

    with pytest.raises(ValueError, match="no configuration"):
        CustomSaver.Adapter().load_context(SimpleNamespace(artifacts={}))
    missing = str(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        CustomSaver.Adapter().load_context(SimpleNamespace(artifacts={"config": missing}))
    with pytest.raises(FileNotFoundError):
        CustomSaver.Adapter(config_file=missing).load_context(SimpleNamespace(artifacts={}))


# --- save -> register -> load -----------------------------------------------------


def test_custom_saver_round_trip(
    store: Store, registry: Registry, tmp_path: Path, unique_name: str
) -> None:
    from mlflow.models import infer_signature

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"greeting": "hello"}))
    example = pd.DataFrame({"text": ["a", "b"]})
    signature = infer_signature(example, ["hello a", "hello b"])
    info = CustomSaver(
        path="chat", config_file=str(config), store=store, pip_requirements=PIP
    ).save(model=Echo(), signature=signature, input_example=example)
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["text"]
    assert info.saved_input_example_info is not None

    version = MlflowRegister(tags={"kind": "echo"}, store=store).register(
        unique_name, info.model_uri
    )
    assert version.version == "1" or int(version.version) >= 1
    assert version.tags["kind"] == "echo"

    adapter = CustomLoader(store=store).load(f"{unique_name}/{version.version}")
    outputs = adapter.predict([{"text": "x"}, {"text": "y"}])
    assert isinstance(outputs, Outputs)
    assert outputs.column() == ["hello x", "hello y"]
    assert outputs.metadata.name == unique_name
    assert outputs.metadata.version == str(version.version)
    assert outputs.metadata.flavor == "python_function"
    assert outputs.metadata.latency_ms >= 0
    assert adapter.model.metadata.get_input_schema().input_names() == ["text"]
    # Inputs follow the saved schema: a dict of columns works, a missing column is refused.
    assert adapter.predict({"text": ["z"]}).column() == ["hello z"]
    assert adapter.predict(example).to_dict()["predictions"] == [
        {"prediction": "hello a"},
        {"prediction": "hello b"},
    ]
    with pytest.raises(PredictionError, match="failed to predict"):
        adapter.predict([{"wrong": "x"}])


def test_registered_by_ame_loads_with_plain_mlflow(
    store: Store, logged: Any, tiny: Tiny, unique_name: str
) -> None:
    version = MlflowRegister(store=store).register(unique_name, logged.model_uri)
    activate(store)
    plain = mlflow.pyfunc.load_model(f"models:/{unique_name}/{version.version}")
    assert list(plain.predict(tiny.X)) == tiny.y


def test_plain_mlflow_model_predicts_through_ame(
    store: Store, tiny: Tiny, unique_name: str
) -> None:
    activate(store)
    from ame.registry.store import ensure_experiment

    experiment = ensure_experiment(store)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.sklearn.log_model(tiny.model, name="plain", pip_requirements=PIP)
    mlflow.register_model(info.model_uri, unique_name)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(unique_name, "champion", "1")

    for uri in (
        f"models:/{unique_name}/1",
        f"models:/{unique_name}@champion",
        f"{unique_name}@champion",
        f"{unique_name}/1",
        unique_name,
        f"runs:/{run.info.run_id}/plain",
        f"runs:/{run.info.run_id}",
    ):
        outputs = CustomLoader(store=store).load(uri).predict(tiny.X)
        assert outputs.column() == tiny.y, uri
        assert outputs.metadata.flavor == "sklearn"

    pyfunc = CustomLoader(store=store).load(f"{unique_name}@champion")
    for shape in (tiny.X.to_dict(orient="records"), tiny.X.to_dict(orient="list")):
        assert pyfunc.predict(shape).column() == tiny.y

    native = BuiltinLoader(store=store).load(f"{unique_name}@champion")
    assert type(native.model).__name__ == "LogisticRegression"
    assert native.predict(tiny.X).column() == tiny.y
    with pytest.raises(UnsupportedFlavorError, match="sklearn"):
        BuiltinLoader(flavor="xgboost", store=store).load(unique_name)


def test_bad_references_name_what_exists(store: Store, logged: Any, unique_name: str) -> None:
    registry = Registry(store)
    registry.register(unique_name, logged.model_uri)
    registry.set_alias(unique_name, "prod", "1")
    loader = CustomLoader(store=store)
    with pytest.raises(ModelNotFoundError, match=f"did you mean '{unique_name}'"):
        loader.load(unique_name + "x")
    with pytest.raises(VersionNotFoundError, match="its versions: 1"):
        loader.load(f"{unique_name}/7")
    with pytest.raises(AliasNotFoundError, match="its aliases: prod"):
        loader.load(f"{unique_name}@staging")
    with pytest.raises(InvalidModelURIError, match="accepted"):
        loader.load("models:/")
    with pytest.raises(InvalidModelURIError):
        loader.load("not a ref!")


def test_prediction_failure_is_a_prediction_error(
    store: Store, logged: Any, unique_name: str
) -> None:
    Registry(store).register(unique_name, logged.model_uri)
    adapter = BuiltinLoader(store=store).load(unique_name)
    with pytest.raises(PredictionError, match=f"{unique_name}/1 failed to predict"):
        adapter.predict(pd.DataFrame({"zzz": ["not", "numbers"]}))


def test_register_refuses_missing_sources_and_leaves_nothing(
    registry: Registry, tmp_path: Path, unique_name: str
) -> None:
    for uri in (
        "runs:/0123456789abcdef0123456789abcdef/model",
        "models:/m-0123456789abcdef0123456789abcdef",
        str(tmp_path / "nowhere"),
    ):
        with pytest.raises(RegistrationError):
            registry.register(unique_name, uri)
    with pytest.raises(ModelNotFoundError):
        registry.get_model(unique_name)
    with pytest.raises(InvalidModelURIError, match="invalid model name"):
        registry.register("bad/name", "runs:/0123456789abcdef0123456789abcdef")


def test_failure_after_create_removes_the_version(
    registry: Registry, logged: Any, unique_name: str
) -> None:
    # MLflow reserves the alias "latest": setting it fails after the version exists.
    with pytest.raises(RegistryError):
        registry.register(unique_name, logged.model_uri, aliases=["latest"])
    with pytest.raises(ModelNotFoundError):
        registry.get_model(unique_name)
    registry.register(unique_name, logged.model_uri)
    with pytest.raises(RegistryError):
        registry.register(unique_name, logged.model_uri, aliases=["latest"])
    assert [v.version for v in registry.iter_versions(unique_name)] == ["1"]


# --- versions from runs and files -------------------------------------------------


def test_version_from_run(store: Store, registry: Registry, tiny: Tiny, unique_name: str) -> None:
    from ame.registry.store import ensure_experiment

    activate(store)
    experiment = ensure_experiment(store)
    with mlflow.start_run(experiment_id=experiment) as one:
        mlflow.sklearn.log_model(tiny.model, name="clf", pip_requirements=PIP)
    with mlflow.start_run(experiment_id=experiment) as two:
        mlflow.sklearn.log_model(tiny.model, name="a", pip_requirements=PIP)
        mlflow.sklearn.log_model(tiny.model, name="b", pip_requirements=PIP)
    with mlflow.start_run(experiment_id=experiment) as empty:
        mlflow.log_param("p", 1)

    version = registry.register_from_run(unique_name, one.info.run_id, description="weekly")
    assert version.run_id == one.info.run_id
    assert version.description == "weekly"
    assert version.tags["ame.source"] == "run"
    with pytest.raises(RegistrationError, match="several models"):
        registry.register_from_run(unique_name, two.info.run_id)
    picked = registry.register_from_run(unique_name, two.info.run_id, "b")
    assert picked.version == "2"
    with pytest.raises(RegistrationError, match="its models: a, b"):
        registry.register_from_run(unique_name, two.info.run_id, "c")
    with pytest.raises(RegistrationError, match="logged no model"):
        registry.register_from_run(unique_name, empty.info.run_id)
    assert CustomLoader(store=store).load(f"{unique_name}/2").predict(tiny.X).column() == tiny.y


HOOK = """
import os
import joblib

def load(path):
    return joblib.load(os.path.join(path, "weights", "model.joblib"))

def predict(model, inputs):
    return model.predict_proba(inputs)[:, 1]
"""


def test_version_from_files_with_hook_loads_from_elsewhere(
    store: Store,
    registry: Registry,
    tiny: Tiny,
    tmp_path: Path,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weights = tmp_path / "src" / "weights"
    weights.mkdir(parents=True)
    joblib.dump(tiny.model, weights / "model.joblib")
    (tmp_path / "src" / "hook.py").write_text(HOOK)
    (tmp_path / "src" / "README.txt").write_text("notes")

    version = registry.register_from_files(
        unique_name,
        [weights, tmp_path / "src" / "hook.py", tmp_path / "src" / "README.txt"],
        description="from data",
        tags={"origin": "upload"},
        pip_requirements=PIP,
    )
    assert version.tags["ame.source"] == "files"
    assert version.tags["origin"] == "upload"
    assert set(version.tags["ame.files"].split(", ")) == {"weights", "hook.py", "README.txt"}

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    expected = list(tiny.model.predict_proba(tiny.X)[:, 1])
    got = CustomLoader(store=store).load(unique_name).predict(tiny.X).column()
    assert got == pytest.approx(expected)
    activate(store)
    plain = mlflow.pyfunc.load_model(version.uri)
    assert list(plain.predict(tiny.X)) == pytest.approx(expected)


def test_files_version_in_a_fresh_process(
    store: Store, registry: Registry, tiny: Tiny, tmp_path: Path, unique_name: str
) -> None:
    """Loaded by plain mlflow in another process and directory, without importing ame."""
    joblib.dump(tiny.model, tmp_path / "clf.joblib")
    (tmp_path / "loaders.py").write_text(
        "import joblib, os\n"
        "def build(path):\n"
        "    return joblib.load(os.path.join(path, 'clf.joblib'))\n"
    )
    version = registry.register_from_files(
        unique_name,
        [tmp_path / "clf.joblib", tmp_path / "loaders.py"],
        loader="loaders:build",
        pip_requirements=PIP,
    )
    script = (
        "import sys, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print([int(x) for x in m.predict(pd.DataFrame({'a': [0.0, 3.0], 'b': [1.0, 0.0]}))])\n"
        "assert 'ame' not in sys.modules\n"
    )
    cwd = tmp_path / "other"
    cwd.mkdir()
    env = {**os.environ, **store.env()}
    done = subprocess.run(
        [sys.executable, "-c", script, version.uri],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[0, 1]"


def test_files_default_loaders(
    store: Store, registry: Registry, tiny: Tiny, tmp_path: Path, unique_name: str
) -> None:
    joblib.dump(tiny.model, tmp_path / "only.pkl")
    pickled = registry.register_from_files(
        unique_name, [tmp_path / "only.pkl"], pip_requirements=PIP
    )
    assert (
        CustomLoader(store=store).load(pickled.uri[len("models:/") :]).predict(tiny.X).column()
        == tiny.y
    )

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    listed = registry.register_from_files(unique_name, [tmp_path / "data"], pip_requirements=PIP)
    frame = (
        CustomLoader(store=store)
        .load(f"{unique_name}/{listed.version}")
        .predict(pd.DataFrame({"x": [1]}))
        .predictions
    )
    assert frame.to_dict(orient="records") == [{"path": "data/a.csv", "size": 4}]


def test_files_errors(registry: Registry, tmp_path: Path, unique_name: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "w.bin").write_text("1")
    (tmp_path / "b" / "w.bin").write_text("2")
    with pytest.raises(UnreadableFilesError, match="does not exist"):
        registry.register_from_files(unique_name, [tmp_path / "missing.bin"])
    with pytest.raises(UnreadableFilesError, match="same name"):
        registry.register_from_files(
            unique_name, [tmp_path / "a" / "w.bin", tmp_path / "b" / "w.bin"]
        )
    with pytest.raises(UnreadableFilesError, match="no files"):
        registry.register_from_files(unique_name, [])
    with pytest.raises(LoaderHookError, match="MODULE:FUNCTION"):
        registry.register_from_files(unique_name, [tmp_path / "a"], loader="not valid!")
    if os.geteuid() != 0:
        secret = tmp_path / "secret.bin"
        secret.write_text("x")
        secret.chmod(0)
        with pytest.raises(UnreadableFilesError, match="not readable"):
            registry.register_from_files(unique_name, [secret])
    with pytest.raises(ModelNotFoundError):
        registry.get_model(unique_name)


# --- descriptions, tags, aliases --------------------------------------------------


def test_models_descriptions_tags_aliases(
    registry: Registry, logged: Any, unique_name: str
) -> None:
    created = registry.create_model(unique_name, "first model", {"team": "risk"})
    assert created.description == "first model" and created.tags == {"team": "risk"}
    with pytest.raises(RegistryError, match="already exists"):
        registry.create_model(unique_name)
    registry.register(unique_name, logged.model_uri)
    registry.register(unique_name, logged.model_uri)

    assert registry.set_model_description(unique_name, "updated").description == "updated"
    assert registry.set_model_tags(unique_name, {"tier": 1}).tags == {"team": "risk", "tier": "1"}
    assert registry.delete_model_tag(unique_name, "team").tags == {"tier": "1"}
    assert registry.set_version_description(unique_name, 1, "v1").description == "v1"
    assert registry.set_version_tags(unique_name, 1, {"ok": "yes"}).tags["ok"] == "yes"
    assert "ok" not in registry.delete_version_tag(unique_name, 1, "ok").tags

    assert registry.set_alias(unique_name, "champion", 1).aliases == ["champion"]
    moved = registry.set_alias(unique_name, "champion", 2)
    assert moved.aliases == ["champion"]
    assert registry.get_version(unique_name, 1).aliases == []
    assert registry.resolve(f"{unique_name}@champion").version == "2"
    assert registry.get_model(unique_name).aliases == {"champion": "2"}
    registry.delete_alias(unique_name, "champion")
    with pytest.raises(AliasNotFoundError):
        registry.delete_alias(unique_name, "champion")
    with pytest.raises(VersionNotFoundError):
        registry.set_alias(unique_name, "champion", 9)
    with pytest.raises(InvalidModelURIError):
        registry.set_alias(unique_name, "bad alias", 1)
    assert registry.resolve(unique_name).version == "2"
    assert registry.get_model(unique_name).latest_version == "2"


def test_listing_and_pagination(registry: Registry, logged: Any, unique_name: str) -> None:
    names = [f"{unique_name}-{i}" for i in range(3)]
    for name in names:
        registry.create_model(name)
    for _ in range(3):
        registry.register(names[0], logged.model_uri)
    where = f"name LIKE '{unique_name}-%'"
    first = registry.list_models(where, max_results=2)
    assert [m.name for m in first.items] == names[:2]
    assert first.next_page_token
    second = registry.list_models(where, max_results=2, page_token=first.next_page_token)
    assert [m.name for m in second.items] == names[2:]
    assert not second.next_page_token
    assert [m.name for m in registry.iter_models(where)] == names

    page = registry.list_versions(names[0], max_results=2)
    assert [v.version for v in page.items] == ["3", "2"]
    rest = registry.list_versions(names[0], max_results=2, page_token=page.next_page_token)
    assert [v.version for v in rest.items] == ["1"]
    assert [v.version for v in registry.iter_versions(names[0])] == ["3", "2", "1"]
    assert registry.list_versions(names[1]).items == []
    registry.set_version_tags(names[0], 2, {"stage": "qa"})
    found = registry.search_versions(f"name = '{names[0]}' and tags.stage = 'qa'")
    assert [v.version for v in found.items] == ["2"]
    with pytest.raises(ModelNotFoundError):
        registry.list_versions(unique_name + "-none")


# --- deletion and copy ------------------------------------------------------------


def _deployment(store: Store, model: str, version: str, pid: int) -> Path:
    assert store.project_root is not None
    folder = store.project_root / ".ame" / "deployments"
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"{model}.json"
    record.write_text(
        json.dumps(
            {
                "model": model,
                "ref": f"{model}/{version}",
                "version": version,
                "url": "http://127.0.0.1:9",
                "pid": pid,
                "port": 9,
                "log": "",
                "started": 0.0,
            }
        )
    )
    return record


def test_delete_refuses_versions_in_use(
    store: Store, registry: Registry, logged: Any, unique_name: str
) -> None:
    for _ in range(3):
        registry.register(unique_name, logged.model_uri)
    registry.set_alias(unique_name, "champion", 1)
    with pytest.raises(VersionInUseError, match="alias 'champion'"):
        registry.delete_version(unique_name, 1)
    with pytest.raises(VersionInUseError, match="alias 'champion'"):
        registry.delete_model(unique_name)

    # The registry knows no deployments: the check is passed in from above, here
    # the backends' (only local is configured). A live server (this very process)
    # serves version 2; a dead one served version 3.
    from ame.backends.select import deployment_users

    in_use = deployment_users(None, store.project_root, env={})
    record = _deployment(store, unique_name, "2", os.getpid())
    registry.delete_version(unique_name, 3, in_use=in_use)  # nobody serves 3
    with pytest.raises(VersionInUseError, match="local deployment of version 2"):
        registry.delete_version(unique_name, 2, in_use=in_use)
    with pytest.raises(VersionInUseError, match="local deployment of version 2"):
        registry.delete_model(unique_name, in_use=in_use)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record.write_text(record.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {dead.pid}'))
    registry.delete_version(unique_name, 2, in_use=in_use)
    for _ in range(2):
        registry.register(unique_name, logged.model_uri)  # versions 4 and 5

    registry.delete_version(unique_name, 1, force=True)
    assert sorted(v.version for v in registry.iter_versions(unique_name)) == ["4", "5"]
    with pytest.raises(VersionNotFoundError):
        registry.delete_version(unique_name, 1)
    registry.delete_model(unique_name)
    with pytest.raises(ModelNotFoundError):
        registry.get_model(unique_name)
    record.unlink()


def test_copy_version(
    registry: Registry, logged: Any, tiny: Tiny, store: Store, unique_name: str
) -> None:
    registry.register(unique_name, logged.model_uri, tags={"k": "v"})
    registry.set_alias(unique_name, "champion", 1)
    copied = registry.copy_version(f"{unique_name}@champion", f"{unique_name}-prod")
    assert (copied.name, copied.version) == (f"{unique_name}-prod", "1")
    assert copied.tags["ame.copied_from"] == f"{unique_name}/1"
    outputs = CustomLoader(store=store).load(f"{unique_name}-prod/1").predict(tiny.X)
    assert outputs.column() == tiny.y
    with pytest.raises(AliasNotFoundError):
        registry.copy_version(f"{unique_name}@nope", f"{unique_name}-prod")
