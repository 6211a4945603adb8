"""The statistics: a shift in one feature is found and the others are left alone."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ame.monitoring import drift


def _tables(shift: float, n_ref: int = 5000, n_cur: int = 20000) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(7)
    ref = pa.table({f"f{i}": rng.normal(size=n_ref) for i in range(5)})
    cur = {f"input.f{i}": rng.normal(size=n_cur) for i in range(5)}
    cur["input.f2"] = cur["input.f2"] + shift
    return ref, pa.table(cur)


def _pairs() -> list[tuple[str, str, str]]:
    return [(f"f{i}", f"f{i}", f"input.f{i}") for i in range(5)]


def test_shift_in_one_feature_is_detected_and_only_that_one() -> None:
    ref, cur = _tables(shift=1.0)
    result = drift.compare(ref, cur, _pairs(), drift.Thresholds(psi=0.2, p_value=0.01))
    flagged = {c.name for c in result if c.drifted}
    assert flagged == {"f2"}
    shifted = next(c for c in result if c.name == "f2")
    assert shifted.psi > 0.5 and shifted.p_value < 1e-10 and shifted.test == "ks"
    for column in result:
        if column.name != "f2":
            assert column.psi < 0.02 and column.p_value > 0.01
    assert len(shifted.bins) == len(shifted.reference) == len(shifted.current) == 10


def test_no_shift_flags_nothing() -> None:
    ref, cur = _tables(shift=0.0)
    result = drift.compare(ref, cur, _pairs(), drift.Thresholds(psi=0.2, p_value=0.01))
    assert not any(c.drifted for c in result)


def test_categorical_drift_uses_psi_and_chi2() -> None:
    rng = np.random.default_rng(1)
    ref = pa.table({"colour": rng.choice(["red", "green", "blue"], 4000, p=[0.5, 0.3, 0.2])})
    same = pa.table({"input.colour": rng.choice(["red", "green", "blue"], 4000, p=[0.5, 0.3, 0.2])})
    moved = pa.table(
        {"input.colour": rng.choice(["red", "green", "blue", "pink"], 4000, p=[0.2, 0.3, 0.3, 0.2])}
    )
    pair = [("colour", "colour", "input.colour")]
    calm = drift.compare(ref, same, pair, drift.Thresholds())[0]
    assert calm.kind == "categorical" and calm.test == "chi2" and not calm.drifted
    shifted = drift.compare(ref, moved, pair, drift.Thresholds())[0]
    assert shifted.drifted and shifted.psi > 0.2 and shifted.p_value < 1e-6
    assert "pink" in shifted.bins  # a category the reference never saw is counted


def test_missing_values_are_reported_not_compared() -> None:
    ref = pa.table({"x": np.arange(1000, dtype=float)})
    values = np.arange(1000, dtype=float)
    values[:250] = np.nan
    cur = pa.table({"input.x": values})
    column = drift.compare(ref, cur, [("x", "x", "input.x")], drift.Thresholds())[0]
    assert column.missing_reference == 0.0
    assert abs(column.missing_current - 0.25) < 1e-9
    assert column.rows_current == 1000


def test_thresholds_can_be_switched_off() -> None:
    ref, cur = _tables(shift=0.3)
    pairs = [("f2", "f2", "input.f2")]
    column = drift.compare(ref, cur, pairs, drift.Thresholds(psi=None, p_value=None))[0]
    assert not column.drifted
    assert drift.compare(ref, cur, pairs, drift.Thresholds(psi=None, p_value=0.05))[0].drifted
