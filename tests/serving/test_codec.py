"""The fast path's decisions on real MLflow signatures: what it takes, what it leaves to MLflow."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from ame.serving.codec import ColumnPlan, decode, parse_fast, predictions_json, split_predictions


def _meta(schema: Schema) -> Model:
    return Model(signature=ModelSignature(inputs=schema))


PLAN = ColumnPlan.from_metadata(_meta(Schema([ColSpec("double", "a"), ColSpec("long", "n")])))


def test_plan_only_for_plain_required_columns() -> None:
    assert PLAN is not None and PLAN.names == ("a", "n")
    tensor = Schema([TensorSpec(np.dtype("float64"), (-1, 4))])
    assert ColumnPlan.from_metadata(_meta(tensor)) is None
    optional = Schema([ColSpec("double", "a", required=False)])
    assert ColumnPlan.from_metadata(_meta(optional)) is None
    assert ColumnPlan.from_metadata(Model()) is None  # no signature


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (b'{"dataframe_split": {"columns": ["a", "n"], "data": [[1.5, 2], [3, 4]]}}', True),
        (b'{"dataframe_split": {"columns": ["n", "a"], "data": [[2, 1.5]]}}', True),
        (b'{"dataframe_records": [{"a": 1.5, "n": 2}]}', True),
        (b'{"dataframe_records": [{"a": 1.5, "n": 2.5}]}', False),  # float for a long column
        (b'{"dataframe_records": [{"a": true, "n": 2}]}', False),  # bool is not a number here
        (b'{"dataframe_records": [{"a": null, "n": 2}]}', False),
        (b'{"dataframe_records": [{"a": 1.5}]}', False),
        (b'{"dataframe_split": {"columns": ["a", "n"], "data": [[1.5, 2]], "index": [0]}}', True),
        (
            b'{"dataframe_split": {"columns": ["a", "n"], "data": [[1.5, 2]], "index": [0, 1]}}',
            False,
        ),
        (
            b'{"dataframe_split": {"columns": ["a", "n"], "data": [[1.5, 2]], "index": [[0]]}}',
            False,
        ),
        (b'{"dataframe_split": {"columns": ["a", "n"], "data": []}}', False),
        (b'{"dataframe_records": [{"a": 1.5, "n": 2}], "params": {"k": 1}}', False),
        (b'{"inputs": {"a": [1.5], "n": [2]}}', False),
        (b'{"dataframe_records": [', False),
    ],
)
def test_fast_path_accepts_only_what_it_answers_exactly(body: bytes, accepted: bool) -> None:
    assert (parse_fast(PLAN, body, "application/json") is not None) is accepted


def test_fast_path_reads_only_what_mlflow_reads_as_utf8_json() -> None:
    body = b'{"dataframe_records": [{"a": 1.5, "n": 2}]}'
    assert parse_fast(PLAN, body, "application/json; charset=utf-8") is not None
    assert parse_fast(PLAN, body, "application/json; charset=latin-1") is None
    assert parse_fast(PLAN, body, "application/json; format=pandas-split") is None
    assert parse_fast(PLAN, body, "text/csv") is None
    assert parse_fast(PLAN, body, None) is None


def test_frame_merges_requests_with_signature_dtypes() -> None:
    assert PLAN is not None
    first = parse_fast(PLAN, b'{"dataframe_records": [{"a": 1, "n": 2}]}', "application/json")
    second = parse_fast(
        PLAN,
        b'{"dataframe_split": {"columns": ["n", "a"], "data": [[5, 0.5]]}}',
        "application/json",
    )
    assert first is not None and second is not None and first.key == second.key
    frame = PLAN.build([first.part, second.part])
    assert list(frame.columns) == ["a", "n"]
    assert frame.dtypes.tolist() == [np.dtype("float64"), np.dtype("int64")]
    assert frame.to_dict("list") == {"a": [1.0, 0.5], "n": [2, 5]}


def test_merged_index_keeps_each_requests_own() -> None:
    assert PLAN is not None
    with_index = parse_fast(
        PLAN,
        b'{"dataframe_split": {"columns": ["a", "n"], "data": [[1, 2], [3, 4]], "index": [7, 9]}}',
        "application/json",
    )
    without = parse_fast(
        PLAN, b'{"dataframe_split": {"columns": ["a", "n"], "data": [[5, 6]]}}', "application/json"
    )
    assert with_index is not None and without is not None
    assert PLAN.build([with_index.part, without.part]).index.tolist() == [7, 9, 0]


def test_deep_json_is_refused_with_a_reason_and_bad_json_left_to_mlflow() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    doc, refused = decode(deep)
    assert doc is None and refused is not None and "nested deeper" in refused
    assert decode(b'{"a": [1') == (None, None)
    assert decode(b'{"a": 1}') == ({"a": 1}, None)


@pytest.mark.parametrize(
    "preds",
    [np.arange(6), pd.Series(range(6)), pd.DataFrame({"p": range(6)}), list(range(6))],
    ids=["ndarray", "series", "frame", "list"],
)
def test_split_predictions_by_rows(preds: Any) -> None:
    pieces = split_predictions(preds, [1, 3, 2])
    assert pieces is not None and [len(p) for p in pieces] == [1, 3, 2]
    assert split_predictions(preds, [1, 2]) is None  # not one prediction per row
    assert split_predictions(np.float64(1.0), [1, 1]) is None


def test_predictions_json_is_byte_for_byte_mlflows() -> None:
    from io import StringIO

    from mlflow.pyfunc.scoring_server import predictions_to_json

    for preds in (
        np.array([1, 2]),
        np.array([True, False]),
        np.array([0.1, 2.5, 1e-05, 1e16, 5e-324]),
        np.array([0.1], dtype=np.float32),
        np.array([np.nan, 1.0]),
        np.array([[1.5, 2.0], [3.0, 4.0]]),
        pd.DataFrame({"x": [1.5]}),
        pd.Series([1, 2]),
    ):
        out = StringIO()
        predictions_to_json(preds, out)
        assert predictions_json(preds) == out.getvalue().encode(), preds
