"""The tensor and no-signature plans: which bodies they take, and how parts merge."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from ame.serving.codec import ColumnPlan
from ame.serving.plans import FreePlan, TensorPlan, plan_for


def _meta(schema: Schema) -> Model:
    return Model(signature=ModelSignature(inputs=schema))


UNNAMED = plan_for(_meta(Schema([TensorSpec(np.dtype("float64"), (-1, 3))])))
NAMED = plan_for(
    _meta(
        Schema(
            [
                TensorSpec(np.dtype("float32"), (-1, 2), "x"),
                TensorSpec(np.dtype("int64"), (-1,), "y"),
            ]
        )
    )
)


def test_each_signature_gets_its_plan() -> None:
    assert isinstance(UNNAMED, TensorPlan) and not UNNAMED.named
    assert isinstance(NAMED, TensorPlan) and NAMED.named
    assert isinstance(plan_for(Model()), FreePlan)
    columns = _meta(Schema([ColSpec("double", "a")]))
    assert isinstance(plan_for(columns), ColumnPlan)
    # a fixed batch size cannot be merged; strings are left to MLflow
    fixed = _meta(Schema([TensorSpec(np.dtype("float64"), (2, 3))]))
    assert plan_for(fixed) is None
    text = _meta(Schema([TensorSpec(np.dtype("O"), (-1,))]))
    assert plan_for(text) is None


@pytest.mark.parametrize(
    ("doc", "rows"),
    [
        ({"inputs": [[1, 2, 3]]}, 1),
        ({"instances": [[1, 2, 3], [4.5, 5, 6]]}, 2),
        ({"inputs": [[1, 2]]}, None),
        ({"inputs": [1, 2, 3]}, None),
        ({"inputs": []}, None),
        ({"inputs": {"a": [1]}}, None),
        ({"inputs": [[1, 2, 3]], "params": {}}, None),
        ({"inputs": [["x", 2, 3]]}, None),
    ],
)
def test_unnamed_tensor_bodies(doc: object, rows: object) -> None:
    assert UNNAMED is not None
    parsed = UNNAMED.parse(doc)
    assert (parsed.rows if parsed else None) == rows
    if parsed is not None:
        assert parsed.part.dtype == np.float64 and parsed.key == (3,)


def test_named_tensors_from_dicts_and_instances_merge_on_axis_0() -> None:
    assert NAMED is not None
    first = NAMED.parse({"inputs": {"y": [1, 2], "x": [[1, 2], [3, 4]]}})
    second = NAMED.parse({"instances": [{"x": [5, 6], "y": 3}]})
    assert first is not None and second is not None and first.key == second.key
    merged = NAMED.build([first.part, second.part])
    assert list(merged) == ["x", "y"]  # the signature's order, as MLflow's enforcement gives
    assert merged["x"].dtype == np.float32 and merged["x"].shape == (3, 2)
    assert merged["y"].tolist() == [1, 2, 3]
    assert NAMED.parse({"inputs": {"x": [[1, 2]], "y": [1, 2]}}) is None  # rows differ
    assert NAMED.parse({"instances": [{"x": [5, 6]}]}) is None


def test_free_plan_keys_keep_apart_what_pandas_would_type_differently() -> None:
    plan = FreePlan()
    ints = plan.parse({"dataframe_split": {"columns": ["a"], "data": [[1]]}})
    floats = plan.parse({"dataframe_split": {"columns": ["a"], "data": [[1.5]]}})
    ints2 = plan.parse({"dataframe_split": {"columns": ["a"], "data": [[2], [3]]}})
    assert ints is not None and floats is not None and ints2 is not None
    assert ints.key != floats.key and ints.key == ints2.key
    frame = plan.build([ints.part, ints2.part])
    assert frame["a"].dtype == np.int64 and frame["a"].tolist() == [1, 2, 3]
    # values pandas would not type the same whatever the mix: MLflow's path
    assert plan.parse({"dataframe_split": {"columns": ["a"], "data": [[True], [1]]}}) is None
    assert plan.parse({"dataframe_split": {"columns": ["a"], "data": [[2**70]]}}) is None
    assert plan.parse({"dataframe_records": [{"a": 1}, {"b": 1}]}) is None
    arrays = [plan.parse({"inputs": [[1, 2]]}), plan.parse({"inputs": [[3, 4], [5, 6]]})]
    assert arrays[0] is not None and arrays[1] is not None
    assert plan.build([a.part for a in arrays if a]).tolist() == [[1, 2], [3, 4], [5, 6]]
