"""Loading: the full current form, finding the file, every issue at once, robustness."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from ame.cli.project_cmds import _tree
from ame.errors import ProjectNotFoundError, SpecError
from ame.spec import Project, load_project, load_project_text

HERE = Path(__file__).resolve().parent
FULL = HERE / "fixtures" / "full" / "ame.yml"
Write = Callable[..., Path]


@pytest.fixture(scope="module")
def full() -> Project:
    return load_project(FULL)


def test_full_form_normalises(full: Project) -> None:
    assert full.name == "full_demo"
    assert full.root == FULL.parent and full.file == FULL
    assert full.template_sources == ["../vendor"]
    train = full.task("train")
    assert train.executor.kind == "uv"
    assert train.executor.python_version == "3.12"  # from the template
    assert train.executor.command == "python train.py --epochs 3"
    assert train.resources.cpu == 0.5  # template
    assert train.resources.memory == 16 * 1024**3  # own value wins
    assert train.resources.storage == 30 * 10**9
    assert train.resources.gpu == 1  # through a YAML merge key
    assert train.env == {"LOG_LEVEL": "info", "SEED": "42"}
    assert [(s.key, s.inject_as) for s in train.secrets] == [("hf_token", "HF_TOKEN")]
    assert [str(d) for d in train.data_sets] == ["reviews"]
    assert train.artifacts is not None and train.artifacts.paths == ["reports/"]
    assert train.artifacts.save_changed_files is True
    assert train.triggers is not None and str(train.triggers.schedule) == "0 3 * * 1"
    assert train.timeout == 9000.0
    assert full.task("check").executor.packages == ["scikit-learn"]

    model = full.model("sentiment")
    assert model.description == "Classifies product reviews."
    assert model.type == "mlflow" and model.champion_alias == "prod"
    assert model.training is not None and model.training.task == train
    assert model.validation is not None and model.validation.task.name == "check"
    dep = model.deployment
    assert dep is not None
    assert (dep.replicas, dep.image, dep.port) == (2, "ghcr.io/example/sentiment:1", 8081)
    assert dep.ingress_annotations == {"nginx.ingress.kubernetes.io/rewrite-target": "/"}
    assert (dep.auto_deploy, dep.auto_train, dep.enable_tls) == (True, False, True)
    assert (dep.resources.cpu, dep.resources.memory) == (2.0, 4 * 1024**3)
    assert dep.batching is not None
    assert (dep.batching.max_batch_size, dep.batching.max_latency_ms) == (64, 2.5)
    assert model.monitoring is not None and str(model.monitoring.schedule) == "*/15 * * * *"
    assert model.monitoring.task is not None
    assert model.monitoring.task.name == "sentiment.monitoring"
    assert model.monitoring.task.executor.command == "./monitor.sh"
    batch = model.batch_inference
    assert batch is not None and str(batch.schedule) == "@daily"
    assert str(batch.data_set) == "reviews"
    assert batch.task is not None and batch.task.name == "check"

    ds = full.data_set("reviews")
    assert ds.size == 1536 * 1024**2 and ds.path == "data/reviews.parquet"
    assert ds.task is not None and ds.task.name == "reviews.dataset"
    names = {t.name for t in full.all_tasks()}
    assert names == {"train", "check", "sentiment.monitoring", "reviews.dataset"}


def test_full_form_json_round_trip(full: Project) -> None:
    data = json.loads(json.dumps(full.model_dump(mode="json", by_alias=True)))
    assert data["tasks"][0]["resources"]["nvidia.com/gpu"] == 1
    assert data["models"][0]["deployment"]["enableTls"] is True
    assert Project.model_validate(data) == full


def test_tree_shows_the_resolved_project(full: Project) -> None:
    console = Console(record=True, width=200)
    console.print(_tree(full))
    text = console.export_text()
    for expected in (
        "full_demo",
        "sentiment  mlflow",
        "train  !uv  python train.py --epochs 3",
        "memory: 16Gi (17179869184 bytes)",
        "fromTemplate: base",
        "dataSet: reviews",
        "reviews.dataset  !custom  python fetch.py",
    ):
        assert expected in text


def test_load_finds_the_file_upwards(write_project: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    file = write_project("project: upwards\n")
    nested = file.parent / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert load_project().file == file.resolve()
    assert load_project(file.parent).name == "upwards"


def test_ame_yaml_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / "ame.yaml").write_text("project: yaml_ext\n")
    assert load_project(tmp_path).name == "yaml_ext"


def test_no_project_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError, match=r"no ame\.yml or ame\.yaml"):
        load_project(tmp_path)
    with pytest.raises(ProjectNotFoundError, match=r"missing\.yml: no such file"):
        load_project(tmp_path / "missing.yml")


def test_every_issue_at_once() -> None:
    text = (
        "project: p\n"  # 1
        "models:\n"  # 2
        "  - name: m\n"  # 3
        "    deployment: {replica: 2, autoDeploy: maybe}\n"  # 4
        "tasks:\n"  # 5
        "  - name: t\n"  # 6
        "    resources: {cpu: lots, memory: 1 GB}\n"  # 7
        "    timeout: -1\n"  # 8
    )
    with pytest.raises(SpecError) as caught:
        load_project_text(text, file="x/ame.yml")
    got = [(i.file, i.line, i.column, i.path) for i in caught.value.issues]
    assert got == [
        ("x/ame.yml", 4, 18, "models[0].deployment"),
        ("x/ame.yml", 4, 42, "models[0].deployment.autoDeploy"),
        ("x/ame.yml", 7, 22, "tasks[0].resources.cpu"),
        ("x/ame.yml", 7, 36, "tasks[0].resources.memory"),
        ("x/ame.yml", 8, 14, "tasks[0].timeout"),
    ]
    assert str(caught.value).splitlines()[0] == (
        "x/ame.yml:4:18 models[0].deployment: unknown key 'replica' (did you mean 'replicas'?)"
    )


def test_extension_keys_and_merge_keys() -> None:
    project = load_project_text(
        "project: p\n"
        "x-defaults: &env {A: '1', B: '2'}\n"
        "tasks:\n"
        "  - name: t\n"
        "    env:\n"
        "      <<: *env\n"
        "      B: own\n"
    )
    assert project.task("t").env == {"A": "1", "B": "own"}


def test_placeholder_inside_a_value_is_reported() -> None:
    with pytest.raises(SpecError, match=r"ame.yml:3:24 tasks\[0\].timeout: unfinished fragment"):
        load_project_text("project: p\ntasks:\n  - {name: t, timeout: TODO}\n")


def test_mutated_files_never_raise_anything_but_spec_error() -> None:
    """Random edits of valid files: a Project or a SpecError with positions, never a crash."""
    sources = [p.read_text() for p in (HERE / "fixtures").rglob("ame.yml")]
    rng = random.Random(20261123)
    alphabet = [*":-[]{}!&*#\t\n'\"|>.,?@%` ~0", "!poetry ", "<<: ", "&a ", "*a", "- "]
    for _ in range(300):
        text = rng.choice(sources)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randint(0, len(text))
            if rng.random() < 0.4:
                text = text[:pos] + text[pos + rng.randint(1, 5) :]
            else:
                text = text[:pos] + rng.choice(alphabet) + text[pos:]
        try:
            load_project_text(text, file=HERE / "fixtures" / "seeds" / "mutant" / "ame.yml")
        except SpecError as exc:
            assert exc.issues
            assert all(i.line >= 1 and i.column >= 1 for i in exc.issues)


def test_short_forms() -> None:
    project = load_project_text(
        "project: p\n"
        "tasks:\n"
        "  - name: t\n"
        "    executor: {kind: uv, command: python t.py}\n"
        "    resources: {gpu: 2}\n"
        "    artifacts: [out/]\n"
        "models:\n"
        "  - name: m\n"
        "    training:\n"
        "      task: {name: custom_name, runcommand: python train.py}\n"
    )
    task = project.task("t")
    assert (task.executor.kind, task.resources.gpu) == ("uv", 2)
    assert task.artifacts is not None and task.artifacts.paths == ["out/"]
    assert project.model("m").training.task.name == "custom_name"  # type: ignore[union-attr]
