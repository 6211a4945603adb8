"""The ame.yml examples of the product seeds: the complete ones load, the fragments fail well."""

from __future__ import annotations

from pathlib import Path

import pytest

from ame.errors import SpecError
from ame.spec import load_project

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"

COMPLETE = ["000-1-training", "002-1-validation"]
# fragment directory -> lines that hold the `...`/`TODO` placeholders an issue must name
FRAGMENTS = {
    "000-2-deployment": {16},
    "000-3-ingress": {7, 15},
    "000-4-replicas": {7},
    "000-5-image": {7},
    "000-6-validation": {9},
}


def test_every_seed_fixture_is_listed() -> None:
    examples = {p.name for p in SEEDS.iterdir() if p.name[:3].isdigit()}
    assert examples == set(COMPLETE) | set(FRAGMENTS)


@pytest.mark.parametrize("name", COMPLETE)
def test_complete_seed_examples_validate(name: str) -> None:
    project = load_project(SEEDS / name / "ame.yml")
    assert project.models and project.tasks


def test_seed_000_training_resolves_the_shared_template() -> None:
    project = load_project(SEEDS / "000-1-training")
    assert project.name == "xgboost_project"
    task = project.model("product_recommendor").training.task  # type: ignore[union-attr]
    assert task.name == "train_my_model"
    assert task.executor.kind == "poetry"
    assert task.executor.python_version == "3.11"
    assert task.executor.command == "python train.py"
    # the task's own resources win over the template's...
    assert task.resources.memory == 10 * 1000**3
    assert task.resources.cpu == 4.0
    assert task.resources.storage == 30 * 1000**3
    assert task.resources.gpu == 1
    # ...and what only the template sets is merged in.
    assert task.env == {"XGB_NTHREAD": "4"}
    assert str(task.from_template) == "shared_templates.xgboost_resources"
    assert task.project == "xgboost_project"


def test_seed_002_legacy_example_normalises() -> None:
    project = load_project(SEEDS / "002-1-validation" / "ame.yml")
    assert project.name == "sklearn_logistic_regression"
    model = project.model("logreg")
    assert model.type == "mlflow"
    assert model.validation is not None
    assert model.validation.task.name == "mlflow_validation"
    assert model.validation.task.executor.command == "python validate.py"
    assert model.deployment is not None
    assert model.deployment.auto_train and model.deployment.auto_deploy
    assert model.deployment.enable_tls is False
    training = project.task("training")
    assert training.executor.kind == "mlflow"
    assert training.executor.command == "python train.py"  # from the template's runcommand
    assert training.resources.memory == 512 * 1024**2
    assert training.env == {"MLFLOW_EXPERIMENT": "logreg"}
    assert str(training.from_template) == "shared-templates.logistic_reg_template"


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_fragments_fail_at_the_fragment_line(name: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_project(SEEDS / name / "ame.yml")
    lines = {issue.line for issue in caught.value.issues}
    assert FRAGMENTS[name] <= lines
    assert any("unfinished fragment" in issue.message for issue in caught.value.issues)
    for issue in caught.value.issues:
        assert Path(issue.file).name == "ame.yml"
