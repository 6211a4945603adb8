"""Names in MLflow filter strings: quoted so that a name with a quote is still found.

MLflow's filter grammar has no escapes (a literal is what lies between its
quotes), so ``resolve.quote`` picks the quote character the value does not
hold. The searches below run on real stores (embedded SQLite and the session's
``mlflow server``), with model and task names holding a ``'``, a ``"`` and a
backslash; a backslash-escaped literal (the old way) found neither the ``'``
nor the backslash name.
"""

from __future__ import annotations

import pytest

from ame.errors import InvalidValueError
from ame.registry.facade import Registry
from ame.registry.resolve import client_for, escape, quote, version_numbers
from ame.registry.runs import RunRecorder, find_runs, tag_filter
from ame.registry.store import Store


def test_quote_picks_the_quote_the_value_does_not_hold() -> None:
    assert quote("plain") == "'plain'"
    assert quote("o'brien") == '"o\'brien"'
    assert quote('dq"x') == "'dq\"x'"
    assert quote("back\\slash") == "'back\\slash'"


@pytest.mark.parametrize("value", ["both'\"", "trail\\", "o'trail\\"])
def test_a_value_no_filter_can_hold_is_one_clear_error(value: str) -> None:
    with pytest.raises(InvalidValueError, match="MLflow filter"):
        quote(value)


def test_like_fragments_turn_quotes_into_one_character_wildcards() -> None:
    assert escape("o'brien") == "o_brien"
    assert escape("end\\\\") == "end__"
    assert escape("plain") == "plain"


def test_tag_filter_quotes_every_value() -> None:
    assert tag_filter({"ame.kind": "task", "ame.task": "it's"}) == (
        "tags.`ame.kind` = 'task' and tags.`ame.task` = \"it's\""
    )


def _model_with_versions(store: Store, name: str, count: int) -> None:
    # Straight through MLflow's client: ame's own references only take plain names,
    # but a training script may register any name MLflow accepts.
    client = client_for(store)
    client.create_registered_model(name)
    for _ in range(count):
        client.create_model_version(name, "s3://ame-tests/no-model")


@pytest.mark.parametrize("suffix", ["o'brien", 'say "hi"', "back\\slash"])
def test_versions_of_a_model_named_with_a_quote_are_found(
    store: Store, unique_name: str, suffix: str
) -> None:
    name = f"{unique_name}-{suffix}"
    _model_with_versions(store, name, 2)
    _model_with_versions(store, f"{name}x", 1)  # a longer name must not match
    client = client_for(store)
    assert version_numbers(client, name) == [1, 2]
    registry = Registry(store)
    listed = list(registry.iter_versions(name))
    assert [(v.name, v.version) for v in listed] == [(name, "2"), (name, "1")]
    # the name clause ANDed with the user's own filter still parses
    client.set_model_version_tag(name, "1", "stage", "x")
    narrowed = list(registry.iter_versions(name, "tags.stage = 'x'"))
    assert [v.version for v in narrowed] == ["1"]


def test_task_runs_named_with_a_quote_are_found(store: Store, unique_name: str) -> None:
    from ame.tasks.history import list_runs

    recorder = RunRecorder(store)
    experiment = recorder.ensure_experiment(unique_name)
    quoted = recorder.create_run(experiment, "q", {"ame.kind": "task", "ame.task": "it's"})
    other = recorder.create_run(experiment, "o", {"ame.kind": "task", "ame.task": "its"})
    recorder.set_terminated(quoted, "FINISHED")
    recorder.set_terminated(other, "FINISHED")
    assert [r["run_id"] for r in list_runs(store, unique_name, task="it's")] == [quoted]
    assert {r["run_id"] for r in list_runs(store, unique_name)} == {quoted, other}
    assert find_runs(store, "no-such-experiment", tags={"ame.kind": "task"}) == []
