"""Memory is bounded by the chunk size, not the input size (peak RSS of real ``ame predict``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import csv

from tests.batch.conftest import AME, FEATURES, SavedModel

WIDTH = 20  # a, b, c and 17 more float columns the model does not read


def _input(path: Path, rows: int) -> int:
    """A Parquet or CSV file of ``rows`` x (id + WIDTH doubles); its in-memory size in bytes."""
    rng = np.random.default_rng(rows)
    columns = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    names = FEATURES + [f"x{i}" for i in range(WIDTH - len(FEATURES))]
    for name in names:
        columns[name] = pa.array(rng.normal(size=rows))
    table = pa.table(columns)
    if path.suffix == ".csv":
        csv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=100_000)
    return int(table.nbytes)


# Run a command from a bare interpreter and write its peak RSS (KiB) to a file. A
# child forked from this test process would start with the test's own resident
# pages (MLflow, pandas...) counted in its ru_maxrss, hiding the figure measured.
LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _peak_rss(model: Path, source: Path, output: Path) -> int:
    """Peak resident memory of one ``ame predict`` process, in bytes (Linux: ru_maxrss in KiB)."""
    record = output.with_suffix(".rss")
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, str(record), AME, "predict", str(model),
         "-i", str(source), "-o", str(output), "--chunk-rows", "50000", "--id-col", "id"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(record.read_text()) * 1024


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_peak_memory_is_flat_in_input_size(
    tmp_path: Path, sk_model: SavedModel, suffix: str
) -> None:
    _input(tmp_path / f"small{suffix}", 100_000)
    big_size = _input(tmp_path / f"big{suffix}", 1_000_000)
    small = _peak_rss(sk_model.path, tmp_path / f"small{suffix}", tmp_path / "small.out.parquet")
    big = _peak_rss(sk_model.path, tmp_path / f"big{suffix}", tmp_path / "big.out.parquet")
    assert pq.ParquetFile(tmp_path / "big.out.parquet").metadata.num_rows == 1_000_000
    growth = big - small
    assert growth < 0.2 * big_size, (
        f"peak RSS {small / 2**20:.0f} MiB at 100k rows, {big / 2**20:.0f} MiB at 1M rows: "
        f"+{growth / 2**20:.0f} MiB, over 20% of the 1M rows' {big_size / 2**20:.0f} MiB"
    )
