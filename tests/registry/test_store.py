"""Store resolution, the project's experiment, model references and import cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ame.errors import InvalidModelURIError
from ame.registry.store import ensure_experiment, read_project_name, resolve_store
from ame.registry.uris import parse_model_ref


def test_embedded_store_lives_in_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ame.yml").write_text("project: shop\ntasks:\n  - name: t\n    executor: !uv {}\n")
    sub = tmp_path / "training" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    store = resolve_store()
    assert store.embedded
    assert store.tracking_uri == f"sqlite:///{tmp_path.resolve() / '.ame' / 'mlflow.db'}"
    assert store.artifact_root == (tmp_path.resolve() / ".ame" / "artifacts").as_uri()
    assert store.project_root == tmp_path.resolve()
    assert store.experiment_name == "shop"
    assert store.sqlite_path == tmp_path.resolve() / ".ame" / "mlflow.db"


def test_project_name_spellings(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("projectid: legacy_name\nmodels: []\n")
    assert read_project_name(tmp_path) == "legacy_name"
    (tmp_path / "ame.yml").write_text("name: [broken\n")
    assert read_project_name(tmp_path) is None


def test_outside_a_project_uses_cwd_and_default_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = resolve_store()
    assert store.project_name is None
    assert store.experiment_name == "ame"
    assert (tmp_path / ".ame" / "artifacts").is_dir()


def test_tracking_uri_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ame.yml").write_text("project: remote\n")
    store = resolve_store("http://127.0.0.1:1", tmp_path)
    assert not store.embedded and store.artifact_root is None and store.sqlite_path is None
    assert store.experiment_name == "remote"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'x' / 'db.sqlite'}")
    from_env = resolve_store(project_root=tmp_path)
    assert from_env.embedded
    assert from_env.artifact_root == (tmp_path / "x" / "artifacts").resolve().as_uri()


def test_project_experiment_keeps_artifacts_under_dot_ame(tmp_path: Path) -> None:
    import mlflow

    (tmp_path / "ame.yml").write_text("project: arts\n")
    store = resolve_store(project_root=tmp_path)
    experiment_id = ensure_experiment(store)
    assert ensure_experiment(store) == experiment_id
    client = mlflow.MlflowClient(store.tracking_uri)
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == "arts"
    assert experiment.artifact_location == f"{store.artifact_root}/arts"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:/fraud/3", ("fraud", "3", None, None, None)),
        ("models:/fraud@champion", ("fraud", None, "champion", None, None)),
        ("fraud@champion", ("fraud", None, "champion", None, None)),
        ("fraud/3", ("fraud", "3", None, None, None)),
        ("fraud", ("fraud", None, None, None, None)),
        ("runs:/0123456789abcdef/model", (None, None, None, "0123456789abcdef", "model")),
        ("runs:/0123456789abcdef", (None, None, None, "0123456789abcdef", None)),
    ],
)
def test_reference_forms(text: str, expected: tuple[object, ...]) -> None:
    ref = parse_model_ref(text)
    assert (ref.name, ref.version, ref.alias, ref.run_id, ref.artifact_path) == expected


@pytest.mark.parametrize("text", ["", "models:/", "fraud/x", "fraud@", "runs:/nothex", "a b/3@x"])
def test_invalid_references(text: str) -> None:
    with pytest.raises(InvalidModelURIError, match="accepted"):
        parse_model_ref(text)


def test_importing_the_registry_and_cli_stays_light() -> None:
    code = (
        "import sys, ame.registry, ame.cli.model_cmds\n"
        "heavy = {'mlflow', 'pandas', 'numpy', 'sklearn'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
