"""The drift statistics: PSI over histograms, KS and chi² from scipy.

For each column the reference and the logged traffic share:

* numeric: PSI over ``bins`` bins cut at the reference's quantiles, and the
  two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``);
* categorical (strings, booleans): PSI over the categories and the chi² test of
  the 2 x K contingency table (``scipy.stats.chi2_contingency``);
* both: the share of missing values on each side.

PSI is computed over every logged row (one sort per column). The tests compare
the reference with a uniform sample of at most ``test_rows`` logged rows: over a
million rows any difference, however small, is "significant", and the p-value
would say more about the window's size than about the model's inputs. The
sample is seeded, so a check run twice on the same logs gives the same answer.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

DEFAULT_BINS = 10
DEFAULT_TEST_ROWS = 10_000
# Columns are compared on several threads from this many logged rows on.
PARALLEL_FROM = 100_000
# From this many values on a side, KS p-values use the asymptotic distribution.
ASYMPTOTIC_FROM = 5_000
# Proportions are floored at this before taking logs: an empty bin on one side
# gives a large, finite PSI instead of infinity.
EPSILON = 1e-4
# The most categories kept apart; rarer ones are pooled into OTHER.
MAX_CATEGORIES = 30
OTHER = "(other)"


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted: PSI above ``psi`` or p-value below ``p_value``."""

    psi: Optional[float] = 0.2
    p_value: Optional[float] = 0.05


@dataclass
class ColumnDrift:
    """The comparison of one column; ``bins``/``reference``/``current`` feed the report's plot."""

    name: str
    kind: str  # "numeric" | "categorical"
    psi: float
    test: str  # "ks" | "chi2"
    statistic: float
    p_value: float
    missing_reference: float
    missing_current: float
    rows_reference: int
    rows_current: int
    drifted: bool = False
    bins: list[str] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    current: list[float] = field(default_factory=list)

    def as_dict(self, plot: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not plot:
            for key in ("bins", "reference", "current"):
                data.pop(key)
        return data


def psi(reference: Any, current: Any) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    import numpy as np

    ref = np.maximum(np.asarray(reference, dtype=float), EPSILON)
    cur = np.maximum(np.asarray(current, dtype=float), EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _is_numeric(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _floats(column: Any) -> tuple[Any, int]:
    """Non-missing values as a sorted float64 array, and the count of missing ones (null or NaN)."""
    import numpy as np
    import pyarrow as pa

    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    missing = np.isnan(values)
    if missing.any():
        values = values[~missing]
    elif not values.flags.writeable:
        values = values.copy()
    values.sort()  # in place: the array is this call's own
    return values, len(column) - len(values)


def _bin_counts(sorted_values: Any, edges: Any) -> Any:
    """Counts in (-inf, e1], (e1, e2], ..., (ek, inf) of already sorted values."""
    import numpy as np

    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [len(sorted_values)])))


def _edge_labels(edges: Any) -> list[str]:
    bounds = ["-inf", *[f"{e:.4g}" for e in edges], "inf"]
    return [f"({bounds[i]}, {bounds[i + 1]}]" for i in range(len(bounds) - 1)]


def numeric_drift(name: str, reference: Any, current: Any, sample: Any, bins: int) -> ColumnDrift:
    """PSI and KS of one numeric column (``sample``: the rows of ``current`` the test uses)."""
    import numpy as np
    from scipy import stats

    ref_sorted, ref_missing = _floats(reference)
    cur_sorted, cur_missing = _floats(current)
    test_values, _ = _floats(sample)
    ref, cur = ref_sorted, cur_sorted
    edges: Any = (
        np.unique(np.quantile(ref_sorted, np.linspace(0, 1, bins + 1)[1:-1])) if len(ref) else []
    )
    ref_p = _bin_counts(ref_sorted, edges) / max(len(ref), 1)
    cur_p = _bin_counts(cur_sorted, edges) / max(len(cur), 1)
    if len(ref) and len(test_values):
        # scipy's exact method (its default up to 10,000 values a side) costs
        # more than the whole column's PSI; at these sizes the asymptotic
        # distribution is what the exact one converges to.
        method = "asymp" if max(len(ref), len(test_values)) >= ASYMPTOTIC_FROM else "auto"
        result = stats.ks_2samp(ref_sorted, test_values, method=method)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        statistic, p_value = math.nan, math.nan
    return ColumnDrift(
        name=name, kind="numeric", psi=psi(ref_p, cur_p), test="ks", statistic=statistic,
        p_value=p_value, missing_reference=ref_missing / max(len(reference), 1),
        missing_current=cur_missing / max(len(current), 1), rows_reference=len(reference),
        rows_current=len(current), bins=_edge_labels(edges), reference=ref_p.tolist(),
        current=cur_p.tolist(),
    )  # fmt: skip


def _counts(column: Any) -> tuple[dict[str, int], int]:
    """Category -> count (as strings) and the count of missing values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = column.cast(pa.string())
    counts: dict[str, int] = {}
    for item in pc.value_counts(text).to_pylist():
        if item["values"] is not None:
            counts[item["values"]] = int(item["counts"])
    return counts, int(text.null_count)


def categorical_drift(name: str, reference: Any, current: Any, sample: Any) -> ColumnDrift:
    """PSI and chi² of one categorical column."""
    import numpy as np
    from scipy import stats

    ref_counts, ref_missing = _counts(reference)
    cur_counts, cur_missing = _counts(current)
    test_counts, _ = _counts(sample)
    ranked = sorted(set(ref_counts) | set(cur_counts),
                    key=lambda c: (-ref_counts.get(c, 0), -cur_counts.get(c, 0), c))  # fmt: skip
    kept, pooled = ranked[:MAX_CATEGORIES], ranked[MAX_CATEGORIES:]

    def vector(counts: dict[str, int]) -> Any:
        values = [counts.get(c, 0) for c in kept]
        if pooled:
            values.append(sum(counts.get(c, 0) for c in pooled))
        return np.asarray(values, dtype=float)

    labels = kept + ([OTHER] if pooled else [])
    ref_v, cur_v, test_v = vector(ref_counts), vector(cur_counts), vector(test_counts)
    ref_p = ref_v / max(ref_v.sum(), 1)
    cur_p = cur_v / max(cur_v.sum(), 1)
    table = np.vstack([ref_v, test_v])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and table[0].sum() > 0 and table[1].sum() > 0:
        chi2 = stats.chi2_contingency(table)
        statistic, p_value = float(chi2.statistic), float(chi2.pvalue)
    elif table.shape[1] == 1:
        statistic, p_value = 0.0, 1.0  # one category on both sides: nothing moved
    else:
        statistic, p_value = math.nan, math.nan
    return ColumnDrift(
        name=name, kind="categorical", psi=psi(ref_p, cur_p), test="chi2", statistic=statistic,
        p_value=p_value, missing_reference=ref_missing / max(len(reference), 1),
        missing_current=cur_missing / max(len(current), 1), rows_reference=len(reference),
        rows_current=len(current), bins=labels, reference=ref_p.tolist(), current=cur_p.tolist(),
    )  # fmt: skip


def flag(column: ColumnDrift, thresholds: Thresholds) -> ColumnDrift:
    """Mark ``column`` drifted when it crosses either threshold (a NaN crosses none)."""
    over_psi = thresholds.psi is not None and column.psi > thresholds.psi
    under_p = thresholds.p_value is not None and column.p_value < thresholds.p_value
    column.drifted = bool(over_psi or under_p)
    return column


def compare(
    reference: Any,
    current: Any,
    pairs: list[tuple[str, str, str]],
    thresholds: Thresholds,
    *,
    bins: int = DEFAULT_BINS,
    test_rows: int = DEFAULT_TEST_ROWS,
    seed: int = 0,
) -> list[ColumnDrift]:
    """Compare columns of two Arrow tables; ``pairs`` is (label, reference column, current column).

    A column is numeric when both sides are numbers, else categorical (a
    number logged as text on one side is compared as text).
    """
    import numpy as np
    import pyarrow as pa

    rows = current.num_rows
    if rows > test_rows:
        rng = np.random.default_rng(seed)
        picked = pa.array(np.sort(rng.choice(rows, size=test_rows, replace=False)))
    else:
        picked = None

    def one(pair: tuple[str, str, str]) -> ColumnDrift:
        label, ref_name, cur_name = pair
        ref_col = reference.column(ref_name)
        cur_col = current.column(cur_name)
        sample = cur_col.take(picked) if picked is not None else cur_col
        if _is_numeric(ref_col.type) and _is_numeric(cur_col.type):
            result = numeric_drift(label, ref_col, cur_col, sample, bins)
        else:
            result = categorical_drift(label, ref_col, cur_col, sample)
        return flag(result, thresholds)

    # Columns are independent, and the work per column (Arrow casts, numpy
    # sorts) releases the GIL: one thread per CPU, results in column order.
    workers = min(len(pairs), os.cpu_count() or 1)
    if workers <= 1 or rows < PARALLEL_FROM:
        return [one(pair) for pair in pairs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="ame-drift") as pool:
        return list(pool.map(one, pairs))
