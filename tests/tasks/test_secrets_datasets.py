"""Secrets reach tasks but never logs; datasets are produced once and reused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ame.errors import SecretError, TaskError
from ame.registry.store import Store
from ame.secrets import Redactor, SecretStore
from ame.spec.model import DataSet, Project, Ref, SecretRef
from ame.tasks import run_task
from ame.tasks.datasets import dataset_dir, variable_name
from ame.tasks.history import read_log
from tests.tasks.helpers import add, custom, py

TOKEN = "s3cr3t-Value-123"


def test_secret_store_file_is_private_and_atomic(private_secrets: Path) -> None:
    store = SecretStore()
    store.set("api_token", TOKEN)
    store.set("other", "x")
    assert store.path == private_secrets
    assert stat.S_IMODE(private_secrets.stat().st_mode) == 0o600
    assert store.keys() == ["api_token", "other"]
    assert store.get("api_token") == TOKEN
    store.delete("other")
    assert store.keys() == ["api_token"]
    assert [p.name for p in private_secrets.parent.iterdir()] == ["secrets.json"]
    with pytest.raises(SecretError, match="no secret 'missing'"):
        store.delete("missing")
    with pytest.raises(SecretError, match="may only hold"):
        store.set("bad key!", "v")


def test_printed_secret_is_redacted_everywhere(project: Project, task_store: Store) -> None:
    SecretStore().set("api_token", TOKEN)
    code = """
        import os
        token = os.environ["API_TOKEN"]
        print("token is", token)
        print("length", len(token))
    """
    task = custom("leak", py(code), secrets=[SecretRef(key="api_token", inject_as="API_TOKEN")])
    lines: list[str] = []
    run = run_task(add(project, task), task, task_store, on_output=lines.append)
    assert run.status == "FINISHED", run.tail(20)
    assert lines == ["token is ***", f"length {len(TOKEN)}"]
    stored_log = read_log(task_store, run.run_id)
    assert TOKEN not in stored_log and "token is ***" in stored_log
    assert TOKEN not in run.log_path.read_text()
    data = MlflowClient(tracking_uri=task_store.tracking_uri).get_run(run.run_id).data
    for value in [*data.params.values(), *data.tags.values()]:
        assert TOKEN not in value


def test_missing_secret_names_key_and_fix(project: Project, task_store: Store) -> None:
    task = custom("needs", "true", secrets=[SecretRef(key="db_password", inject_as="PW")])
    with pytest.raises(SecretError, match=r"'db_password'.*ame secret set db_password"):
        run_task(add(project, task), task, task_store)


def test_redactor_masks_longest_first() -> None:
    redact = Redactor(["abc", "abcdef", ""])
    assert redact("x abcdef y abc") == "x *** y ***"
    assert not Redactor([])


def _producer_project(project: Project, command: str) -> Project:
    producer = custom("make_raw", command)
    project.data_sets = [DataSet(name="raw-data", task=producer)]
    return project


PRODUCE = (
    'echo run >> producer-runs.txt; echo "$AME_DATASET_RAW_DATA" > where.txt; '
    'echo 1,2,3 > "$AME_DATASET_RAW_DATA/rows.csv"'
)


def test_dataset_is_produced_once_and_reused(project: Project, task_store: Store) -> None:
    assert variable_name("raw-data") == "AME_DATASET_RAW_DATA"
    _producer_project(project, PRODUCE)
    consumer = custom(
        "consume",
        'cat "$AME_DATASET_RAW_DATA/rows.csv"; echo "$AME_DATASET_RAW_DATA"',
        data_sets=[Ref(name="raw-data")],
    )
    add(project, consumer)
    first = run_task(project, consumer, task_store)
    assert first.status == "FINISHED", first.tail(20)
    expected = dataset_dir(project, project.data_sets[0])
    assert first.tail(2) == ["1,2,3", str(expected)]
    assert expected.parent.parent.name == "datasets"
    second = run_task(project, consumer, task_store)
    assert second.tail(2) == ["1,2,3", str(expected)]
    assert (project.root / "producer-runs.txt").read_text() == "run\n"
    # A changed producer spec makes a new dataset.
    _producer_project(project, PRODUCE + '; echo 4 >> "$AME_DATASET_RAW_DATA/rows.csv"')
    third = run_task(project, consumer, task_store)
    assert third.tail(3)[:2] == ["1,2,3", "4"]
    assert (project.root / "producer-runs.txt").read_text() == "run\nrun\n"
    assert dataset_dir(project, project.data_sets[0]) != expected


def test_failed_producer_leaves_no_dataset(project: Project, task_store: Store) -> None:
    _producer_project(project, 'echo partial > "$AME_DATASET_RAW_DATA/x"; exit 4')
    consumer = custom("consume", "true", data_sets=[Ref(name="raw-data")])
    add(project, consumer)
    with pytest.raises(TaskError, match=r"producer task 'make_raw' ended FAILED \(exit 4"):
        run_task(project, consumer, task_store)
    folder = dataset_dir(project, project.data_sets[0]).parent
    assert [p for p in folder.iterdir() if p.is_dir()] == []


def test_a_dataset_over_its_size_is_refused_and_nothing_kept(
    project: Project, task_store: Store
) -> None:
    producer = custom("make_raw", 'head -c 2000 /dev/zero > "$AME_DATASET_RAW_DATA/big.bin"')
    project.data_sets = [DataSet(name="raw-data", task=producer, size=1024)]
    consumer = custom("consume", "true", data_sets=[Ref(name="raw-data")])
    add(project, consumer)
    with pytest.raises(
        TaskError,
        match=r"^dataset 'raw-data': its producer wrote 2k, over the dataset's size 1Ki "
        r"\(dataSets\[\]\.size\); nothing of it was kept$",
    ):
        run_task(project, consumer, task_store)
    folder = dataset_dir(project, project.data_sets[0]).parent
    assert [p for p in folder.iterdir() if p.is_dir()] == []
    # Within its size, the same producer's dataset is kept and read.
    project.data_sets = [DataSet(name="raw-data", task=producer, size=4096)]
    assert run_task(project, consumer, task_store).status == "FINISHED"
    assert (dataset_dir(project, project.data_sets[0]) / "big.bin").stat().st_size == 2000


def test_path_dataset_must_exist(project: Project, task_store: Store) -> None:
    project.data_sets = [DataSet(name="given", path="data/given")]
    consumer = custom("consume", 'ls "$AME_DATASET_GIVEN"', data_sets=[Ref(name="given")])
    add(project, consumer)
    with pytest.raises(TaskError, match="does not exist"):
        run_task(project, consumer, task_store)
    (project.root / "data" / "given").mkdir(parents=True)
    (project.root / "data" / "given" / "f.txt").write_text("x")
    run = run_task(project, consumer, task_store)
    assert run.tail(1) == ["f.txt"]


def test_cross_project_dataset_resolves_like_templates(
    tmp_path: Path, unique_name: str, task_store: Store
) -> None:
    from ame.spec import load_project

    shared = tmp_path / "shared"
    main = tmp_path / "main"
    shared.mkdir()
    main.mkdir()
    (shared / "ame.yml").write_text(
        "project: shared\ndataSets:\n  - name: base\n    task:\n      name: make_base\n"
        "      executor: !custom\n"
        '        command: pwd > "$AME_DATASET_BASE/made_in.txt"\n'
    )
    (main / "ame.yml").write_text(
        f"project: {unique_name}\ntasks:\n  - name: use\n    executor: !custom\n"
        '      command: cat "$AME_DATASET_BASE/made_in.txt"\n'
        "    dataSets: [shared.base]\n"
    )
    project = load_project(main)
    task = project.task("use")
    run = run_task(project, task, task_store)
    assert run.status == "FINISHED", run.tail(20)
    assert run.tail(1) == [str(shared.resolve())]
    assert (shared / ".ame" / "datasets" / "base").is_dir()
