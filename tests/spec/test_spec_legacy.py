"""Each older spelling of AME files loads and normalises into the current form."""

from __future__ import annotations

import textwrap

from ame.spec import load_project_text
from ame.spec.model import Project

TRAIN = """
tasks:
  - name: train
    executor: !poetry
      command: python train.py
"""


def load(text: str, extra: str = "") -> Project:
    return load_project_text(textwrap.dedent(text) + textwrap.dedent(extra))


def test_projectid_names_the_project() -> None:
    assert load("projectid: legacy_demo\n").name == "legacy_demo"


def test_name_names_the_project() -> None:
    assert load("name: old_demo\n").name == "old_demo"


def test_validation_task_is_the_validation_task() -> None:
    project = load(
        """
        project: p
        models:
          - name: m
            validationTask:
              taskRef: check
        tasks:
          - name: check
            runcommand: python check.py
        """
    )
    validation = project.model("m").validation
    assert validation is not None
    assert validation.task.name == "check"
    assert validation.task.executor.command == "python check.py"


def test_string_task_ref() -> None:
    project = load(
        """
        project: p
        models:
          - name: m
            training:
              task:
                taskRef: train
        """,
        TRAIN,
    )
    training = project.model("m").training
    assert training is not None and training.task.executor.kind == "poetry"
    assert training.task == project.task("train")


def test_mapping_task_ref_to_own_project() -> None:
    project = load(
        """
        project: p
        models:
          - name: m
            training:
              task:
                taskRef: {name: train, project: p}
        """,
        TRAIN,
    )
    assert project.model("m").training.task.name == "train"  # type: ignore[union-attr]


def test_template_ref_project_dot_template() -> None:
    project = load(
        """
        project: p
        templates:
          - name: big
            resources: {memory: 1Gi}
        tasks:
          - name: t
            templateRef: p.big
            runcommand: python t.py
        """
    )
    task = project.task("t")
    assert task.resources.memory == 1024**3
    assert task.from_template is not None and task.from_template.name == "big"


def test_from_template_mapping_form() -> None:
    project = load(
        """
        project: p
        templates:
          - name: big
            timeout: 1h
        tasks:
          - name: t
            fromTemplate: {name: big}
        """
    )
    assert project.task("t").timeout == 3600.0


def test_runcommand_becomes_the_command() -> None:
    task = load(
        """
        project: p
        tasks:
          - name: t
            runcommand: python run.py --fast
        """
    ).task("t")
    assert task.executor.command == "python run.py --fast"
    assert task.executor.kind == "custom"


def test_task_type_mlflow_pipenv_poetry() -> None:
    project = load(
        """
        project: p
        tasks:
          - name: a
            taskType: Mlflow
          - name: b
            taskType: PipEnv
            runcommand: python b.py
          - name: c
            taskType: Poetry
        """
    )
    assert [project.task(n).executor.kind for n in "abc"] == ["mlflow", "pipenv", "poetry"]
    assert project.task("b").executor.command == "python b.py"


def test_legacy_deployment_flags() -> None:
    deployment = (
        load(
            """
        project: p
        models:
          - name: m
            deployment:
              deploy: true
              auto_train: true
              enable_tls: true
        """
        )
        .model("m")
        .deployment
    )
    assert deployment is not None
    assert (deployment.auto_deploy, deployment.auto_train, deployment.enable_tls) == (
        True,
        True,
        True,
    )


def test_model_type_mlflow() -> None:
    assert load("project: p\nmodels:\n  - name: m\n    type: Mlflow\n").model("m").type == "mlflow"


def test_env_list_form() -> None:
    task = load(
        """
        project: p
        tasks:
          - name: t
            env:
              - key: ALPHA
                val: 0.5
              - key: DEBUG
                val: true
        """
    ).task("t")
    assert task.env == {"ALPHA": "0.5", "DEBUG": "true"}


def test_env_mapping_form_keeps_values_as_written() -> None:
    task = load(
        """
        project: p
        tasks:
          - name: t
            env: {VERSION: 3.10, ZERO_PADDED: 007}
        """
    ).task("t")
    assert task.env == {"VERSION": "3.10", "ZERO_PADDED": "007"}


def test_data_set_singular() -> None:
    project = load(
        """
        project: p
        dataSet:
          - name: images
            path: data/images
            size: 2Gi
        tasks:
          - name: t
            dataSet: [images]
        """
    )
    assert project.data_set("images").size == 2 * 1024**3
    assert [str(r) for r in project.task("t").data_sets] == ["images"]


def test_artifact_cfg() -> None:
    task = load(
        """
        project: p
        tasks:
          - name: t
            artifactCfg:
              save_changed_files: true
              paths: [out/, metrics.json]
        """
    ).task("t")
    assert task.artifacts is not None
    assert task.artifacts.save_changed_files is True
    assert task.artifacts.paths == ["out/", "metrics.json"]


def test_task_projectid_matching_the_project_is_accepted() -> None:
    task = load(
        """
        projectid: p
        tasks:
          - name: t
            projectid: p
            runcommand: python t.py
        """
    ).task("t")
    assert task.project == "p"


def test_executor_tags_all_kinds() -> None:
    project = load(
        """
        project: p
        tasks:
          - {name: a, executor: !poetry {pythonVersion: "3.12"}}
          - {name: b, executor: !pip {packages: [numpy]}}
          - {name: c, executor: !pipEnv {command: python c.py}}
          - {name: d, executor: !pipenv {}}
          - {name: e, executor: !custom {command: ./run.sh}}
          - {name: f, executor: !mlflow {entryPoint: main}}
          - {name: g, executor: !uv {pythonVersion: 3.11, command: python g.py}}
        """
    )
    kinds = [project.task(n).executor.kind for n in "abcdefg"]
    assert kinds == ["poetry", "pip", "pipenv", "pipenv", "custom", "mlflow", "uv"]
    assert project.task("b").executor.packages == ["numpy"]
    assert project.task("f").executor.entry_point == "main"
    assert project.task("g").executor.python_version == "3.11"
