"""Templates and references: deep merge, chains, cycles, and finding other projects."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ame.errors import SpecError
from ame.spec import (
    Ref,
    UnresolvedReferenceError,
    load_project,
    resolve_data_set,
    resolve_project,
    resolve_task,
)

Write = Callable[..., Path]

SHARED = """
project: shared
templates:
  - name: gpu
    executor: !poetry
      pythonVersion: "3.11"
      command: python default.py
    resources: {cpu: 8, memory: 64Gi, nvidia.com/gpu: 1}
    env: {A: from-template, B: from-template}
dataSets:
  - name: images
    path: data/images
"""


def issues_of(file: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_project(file)
    return [str(i) for i in caught.value.issues]


def test_local_template_deep_merge_task_wins(write_project: Write) -> None:
    file = write_project(
        """
        project: p
        templates:
          - name: base
            executor: !uv {pythonVersion: "3.12", command: python base.py}
            resources: {cpu: 2, memory: 1Gi}
            env: {A: "1", B: "2"}
            timeout: 10m
        tasks:
          - name: t
            fromTemplate: base
            executor: !uv {command: python t.py}
            resources: {memory: 2Gi}
            env: {B: "20", C: "30"}
        """
    )
    task = load_project(file).task("t")
    assert task.executor.kind == "uv"
    assert task.executor.python_version == "3.12"
    assert task.executor.command == "python t.py"
    assert (task.resources.cpu, task.resources.memory) == (2.0, 2 * 1024**3)
    assert task.env == {"A": "1", "B": "20", "C": "30"}
    assert task.timeout == 600.0


def test_task_changing_only_the_kind_keeps_template_settings(write_project: Write) -> None:
    file = write_project(
        """
        project: p
        templates:
          - name: base
            executor: !poetry {pythonVersion: "3.10", command: python a.py}
        tasks:
          - name: t
            fromTemplate: base
            executor: !mlflow {entryPoint: main}
          - name: u
            templateRef: base
            taskType: PipEnv
        """
    )
    project = load_project(file)
    executor = project.task("t").executor
    assert (executor.kind, executor.entry_point) == ("mlflow", "main")
    assert (executor.python_version, executor.command) == ("3.10", "python a.py")
    assert project.task("u").executor.kind == "pipenv"
    assert project.task("u").executor.command == "python a.py"


def test_template_chain(write_project: Write) -> None:
    file = write_project(
        """
        project: p
        templates:
          - {name: a, fromTemplate: b, env: {FROM: a}}
          - {name: b, fromTemplate: c, resources: {cpu: 500m}}
          - {name: c, timeout: 30s, env: {FROM: c, ONLY_C: "yes"}}
        tasks:
          - {name: t, fromTemplate: a}
        """
    )
    task = load_project(file).task("t")
    assert task.env == {"FROM": "a", "ONLY_C": "yes"}
    assert task.resources.cpu == 0.5
    assert task.timeout == 30.0


def test_cross_project_template_from_sibling_directory(write_project: Write) -> None:
    write_project(SHARED, "shared")
    file = write_project(
        """
        project: p
        tasks:
          - name: t
            fromTemplate: shared.gpu
            executor: !poetry {command: python t.py}
            env: {B: mine}
        """
    )
    task = load_project(file).task("t")
    assert task.executor.python_version == "3.11"
    assert task.executor.command == "python t.py"
    assert task.resources.gpu == 1 and task.resources.memory == 64 * 1024**3
    assert task.env == {"A": "from-template", "B": "mine"}
    assert task.project == "p"


def test_project_found_by_declared_name_not_directory(write_project: Write) -> None:
    write_project(SHARED, "some-other-dir")
    file = write_project("project: p\ntasks:\n  - {name: t, fromTemplate: shared.gpu}\n")
    assert load_project(file).task("t").resources.cpu == 8.0


def test_template_sources_win_over_siblings(write_project: Write, tmp_path: Path) -> None:
    write_project(SHARED, "shared")
    write_project(SHARED.replace("cpu: 8", "cpu: 3"), "vendor/shared")
    file = write_project(
        """
        project: p
        templateSources: [../vendor]
        tasks:
          - {name: t, fromTemplate: shared.gpu}
        """
    )
    assert load_project(file).task("t").resources.cpu == 3.0


def test_ame_path_is_searched_before_siblings(
    write_project: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(SHARED, "shared")
    write_project(SHARED.replace("cpu: 8", "cpu: 5"), "elsewhere/shared")
    monkeypatch.setenv(
        "AME_PATH", os.pathsep.join([str(tmp_path / "nope"), str(tmp_path / "elsewhere")])
    )
    file = write_project("project: p\ntasks:\n  - {name: t, fromTemplate: shared.gpu}\n")
    assert load_project(file).task("t").resources.cpu == 5.0


def test_missing_project_names_every_place_looked(
    write_project: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AME_PATH", str(tmp_path / "lib"))
    file = write_project(
        """
        project: p
        templateSources: [../templates]
        tasks:
          - name: t
            fromTemplate: {name: gpu, project: ghost}
        """
    )
    (issue,) = issues_of(file)
    assert ":6:" in issue and "project 'ghost' not found" in issue
    assert f"{tmp_path / 'templates'} (templateSources)" in issue
    assert f"{tmp_path / 'lib'} (AME_PATH)" in issue
    assert f"{tmp_path} (sibling directories)" in issue


def test_missing_template_in_other_project_lists_its_templates(write_project: Write) -> None:
    write_project(SHARED, "shared")
    file = write_project("project: p\ntasks:\n  - {name: t, fromTemplate: shared.cpu}\n")
    (issue,) = issues_of(file)
    assert "project 'shared'" in issue and "has no template 'cpu' (its templates: gpu)" in issue


def test_invalid_other_project_reports_its_issues(write_project: Write) -> None:
    write_project("project: shared\ntemplates:\n  - {name: gpu, replica: 3}\n", "shared")
    file = write_project("project: p\ntasks:\n  - {name: t, fromTemplate: shared.gpu}\n")
    issues = issues_of(file)
    assert any("shared/ame.yml:3:" in i and "unknown key 'replica'" in i for i in issues)
    assert any(
        "p" in i and ":3:" in i and "project 'shared'" in i and "is invalid" in i for i in issues
    )


def test_cycle_between_projects(write_project: Write) -> None:
    write_project("project: a\ntemplates:\n  - {name: ta, fromTemplate: b.tb}\n", "a")
    write_project("project: b\ntemplates:\n  - {name: tb, fromTemplate: a.ta}\n", "b")
    file = write_project("project: p\ntasks:\n  - {name: t, fromTemplate: a.ta}\n")
    issues = issues_of(file)
    assert any("projects reference each other in a cycle: p -> a -> b -> a" in i for i in issues)


def test_dotted_local_name_wins_over_project_split(write_project: Write) -> None:
    file = write_project(
        """
        project: p
        models:
          - name: m
            training:
              task: {runcommand: python train.py}
          - name: m2
            training:
              task: {taskRef: m.training}
        """
    )
    project = load_project(file)
    assert project.model("m").training.task.name == "m.training"  # type: ignore[union-attr]
    assert project.model("m2").training.task.name == "m.training"  # type: ignore[union-attr]


def test_cross_project_task_ref(write_project: Write) -> None:
    write_project(SHARED + "tasks:\n  - {name: prep, fromTemplate: gpu}\n", "shared")
    file = write_project(
        """
        project: p
        models:
          - name: m
            training:
              task:
                taskRef: {name: prep, project: shared}
        """
    )
    task = load_project(file).model("m").training.task  # type: ignore[union-attr]
    assert task.name == "prep" and task.project == "shared"
    assert task.resources.gpu == 1


def test_cross_project_data_sets(write_project: Write) -> None:
    write_project(SHARED, "shared")
    file = write_project(
        """
        project: p
        dataSets:
          - {name: local_ds, path: data/local}
        tasks:
          - name: t
            dataSets: [local_ds, shared.images, {name: images, project: shared}]
        """
    )
    project = load_project(file)
    refs = project.task("t").data_sets
    assert [str(r) for r in refs] == ["local_ds", "shared.images", "shared.images"]
    owner, ds = resolve_data_set(project, refs[1])
    assert owner.name == "shared" and ds.path == "data/images"
    assert owner.root == file.parent.parent / "shared"
    owner, ds = resolve_data_set(project, "local_ds")
    assert owner is project and ds.name == "local_ds"
    owner, ds = resolve_data_set(project, Ref(name="images", project="shared"))
    assert ds.name == "images"


def test_dangling_cross_project_dataset(write_project: Write) -> None:
    write_project(SHARED, "shared")
    file = write_project("project: p\ntasks:\n  - {name: t, dataSets: [shared.videos]}\n")
    (issue,) = issues_of(file)
    assert ":3:" in issue and "has no dataset 'videos' (its dataSets: images)" in issue


def test_resolve_helpers_raise_clear_errors(write_project: Write) -> None:
    file = write_project("project: p\ntasks:\n  - {name: t, runcommand: python t.py}\n")
    project = load_project(file)
    with pytest.raises(UnresolvedReferenceError, match="has no dataset 'nope'"):
        resolve_data_set(project, "nope")
    with pytest.raises(UnresolvedReferenceError, match="project 'ghost' not found"):
        resolve_project(project, "ghost")
    with pytest.raises(UnresolvedReferenceError, match=r"has no task 'x' \(tasks: t\)"):
        resolve_task(project, "x")
    owner, task = resolve_task(project, "t")
    assert owner is project and task.executor.command == "python t.py"
