"""Issue 15, one schema: the pydantic classes are the ame.yml schema, errors placed by ``loc``.

The corpus (``test_spec_corpus.py``) and the fuzz test hold the messages; these
tests hold what the rewrite added: executors as one class per kind, the
executor-kind table of ``ame.tasks.environments``, keys and spellings read from
the classes, and a valid file loaded in one validation giving the same project
as the careful, piece-by-piece reading.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ame.errors import SpecError
from ame.spec import load_project_text
from ame.spec.model import (
    EXECUTOR_CLASSES,
    EXECUTOR_KINDS,
    CustomExecutor,
    Deployment,
    Executor,
    MlflowExecutor,
    PipExecutor,
    PoetryExecutor,
    Task,
)
from ame.spec.normalise import spellings


def issues_of(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_project_text(text, tmp_path / "ame.yml")
    return [str(issue) for issue in caught.value.issues]


def test_each_executor_kind_is_its_own_class(tmp_path: Path) -> None:
    project = load_project_text(
        "project: p\n"
        "tasks:\n"
        "  - name: a\n    executor: !pip {packages: [numpy], command: python a.py}\n"
        "  - name: b\n    executor: !mlflow {entryPoint: main}\n"
        "  - name: c\n    executor: !poetry {pythonVersion: 3.10}\n"
        "  - name: d\n    runcommand: echo d\n",
        tmp_path / "ame.yml",
    )
    kinds = {t.name: type(t.executor) for t in project.tasks}
    assert kinds == {
        "a": PipExecutor,
        "b": MlflowExecutor,
        "c": PoetryExecutor,
        "d": CustomExecutor,
    }
    assert project.task("a").executor.packages == ["numpy"]
    assert project.task("b").executor.entry_point == "main"
    # Written unquoted, 3.10 is still the version 3.10, not the number 3.1.
    assert project.task("c").executor.python_version == "3.10"
    # Code that handles every kind may ask any executor for these.
    assert project.task("c").executor.packages == []
    assert project.task("d").executor.entry_point is None


def test_a_key_of_another_kind_is_refused_and_says_whose_it_is(tmp_path: Path) -> None:
    issues = issues_of(
        "project: p\ntasks:\n  - name: t\n    executor: !poetry\n      packages: [numpy]\n",
        tmp_path,
    )
    assert issues == [
        f"{tmp_path / 'ame.yml'}:5:7 tasks[0].executor: unknown key 'packages' for a "
        "!poetry executor (only !pip takes it)"
    ]


def test_the_kind_from_tasktype_picks_the_class(tmp_path: Path) -> None:
    issues = issues_of(
        "project: p\ntasks:\n  - name: t\n    taskType: Poetry\n    executor: {entryPoint: x}\n",
        tmp_path,
    )
    assert len(issues) == 1
    assert ":5:16 tasks[0].executor: unknown key 'entryPoint' for a !poetry executor" in issues[0]


def test_executor_made_in_code_is_the_class_of_its_kind() -> None:
    for kind in EXECUTOR_KINDS:
        executor = Executor(kind=kind)
        assert type(executor) is EXECUTOR_CLASSES[kind]
        assert Task(name="t", executor=executor).executor.kind == kind
    assert Task(name="t").executor == CustomExecutor()


def test_every_executor_kind_has_one_builder_entry() -> None:
    from ame.tasks.environments import KINDS

    assert set(KINDS) == set(EXECUTOR_KINDS) == set(EXECUTOR_CLASSES)
    assert KINDS["custom"] is None
    assert all(KINDS[kind] is not None for kind in EXECUTOR_KINDS if kind != "custom")


def test_keys_and_legacy_spellings_come_from_the_class() -> None:
    keys = spellings(Deployment)
    for name, field in Deployment.model_fields.items():
        assert keys[field.alias or name] == field.alias or name
    assert keys["deploy"] == "autoDeploy" and keys["enable_tls"] == "enableTls"
    task_keys = spellings(Task)
    assert task_keys["runcommand"] == "runcommand" and task_keys["templateRef"] == "fromTemplate"


def test_bounds_and_types_are_placed_at_the_value(tmp_path: Path) -> None:
    issues = issues_of(
        "project: p\n"
        "models:\n"
        "  - name: m\n"
        "    deployment:\n"
        "      replicas: 0\n"
        "      port: 70000\n"
        "      enableTls: 'yes'\n"
        "      path: models\n",
        tmp_path,
    )
    where = tmp_path / "ame.yml"
    assert issues == [
        f"{where}:5:17 models[0].deployment.replicas: must be at least 1, got 0",
        f"{where}:6:13 models[0].deployment.port: must be at most 65535, got 70000",
        f"{where}:7:18 models[0].deployment.enableTls: "
        "expected true or false, got the string 'yes'",
        f"{where}:8:13 models[0].deployment.path: a path must start with '/', got 'models'",
    ]


def test_every_issue_of_every_piece_is_reported_at_once(tmp_path: Path) -> None:
    issues = issues_of(
        "project: p\n"
        "templates:\n"
        "  - name: base\n    resources: {memory: 10 gigs}\n"
        "tasks:\n"
        "  - name: a\n    fromTemplate: base\n    timeout: soon\n"
        "  - name: b\n    fromTemplate: nope\n",
        tmp_path,
    )
    assert len(issues) == 3, issues
    assert "templates[0].resources.memory: '10 gigs' is not a quantity" in issues[0]
    assert "tasks[0].timeout: 'soon' is not a duration" in issues[1]
    assert "tasks[1].fromTemplate: unknown template 'nope' (templates here: base)" in issues[2]


def test_short_forms_are_spelt_out(tmp_path: Path) -> None:
    project = load_project_text(
        "project: p\n"
        "tasks:\n"
        "  - name: t\n    artifacts: [out/, logs/]\n    triggers: {schedule: '0 2 * * *'}\n"
        "models:\n"
        "  - name: m\n    monitoring:\n      log:\n",
        tmp_path / "ame.yml",
    )
    task = project.task("t")
    assert task.artifacts is not None and task.artifacts.paths == ["out/", "logs/"]
    assert task.triggers is not None and task.triggers.schedule is not None
    assert (task.triggers.schedule.cron, task.triggers.schedule.timezone) == ("0 2 * * *", "UTC")
    monitoring = project.model("m").monitoring
    assert monitoring is not None and monitoring.log is not None
    assert monitoring.log.sample_rate == 1.0


def test_a_bad_merge_key_is_reported_once(tmp_path: Path) -> None:
    issues = issues_of("project: p\nx-base: &b 3\ntasks:\n  - <<: *b\n    name: t\n", tmp_path)
    assert len(issues) == 1
    assert "a merge key (<<) takes a mapping or a list of mappings" in issues[0]


def test_merge_keys_still_merge(tmp_path: Path) -> None:
    project = load_project_text(
        "project: p\n"
        "x-defaults: &d {resources: {cpu: 2}, runcommand: echo hi}\n"
        "tasks:\n  - <<: *d\n    name: t\n",
        tmp_path / "ame.yml",
    )
    assert project.task("t").resources.cpu == 2.0
    assert project.task("t").executor.command == "echo hi"


def test_unresolved_reference_error_lives_in_the_errors_module() -> None:
    import ame.errors
    import ame.spec
    import ame.spec.loader

    assert ame.spec.UnresolvedReferenceError is ame.errors.UnresolvedReferenceError
    assert ame.spec.loader.UnresolvedReferenceError is ame.errors.UnresolvedReferenceError
