"""The payload log's writer: bounded queue, drop counting, rotation, complete files only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry, generate_latest

from ame.monitoring.location import file_window
from ame.monitoring.settings import LogSettings
from ame.monitoring.writer import REQUEST_ID, PayloadLogger, is_sampled


def _body(rows: list[list[float]]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": rows}}).encode()


def _reply(n: int) -> bytes:
    return json.dumps({"predictions": list(range(n))}).encode()


def _offer(logger: PayloadLogger, request_id: str, rows: int = 2, status: int = 200) -> None:
    data = [[float(i), float(i) * 2] for i in range(rows)]
    logger.offer("mlflow", "1", request_id, _body(data), "application/json", status, _reply(rows),
                 time.perf_counter())  # fmt: skip


def _closed(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if file_window(p.name) is not None)


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    logger = PayloadLogger(LogSettings(local_dir=str(tmp_path), queue_size=5), "m", registry)
    for i in range(20):
        _offer(logger, f"r{i}")
    assert logger.counters.dropped == 15
    logger.close()  # writes what was queued (no thread was started)
    assert logger.counters.requests == 5 and logger.counters.records == 10
    text = generate_latest(registry).decode()
    assert "ame_payload_log_dropped_total 15.0" in text
    assert "ame_payload_log_requests_total 5.0" in text
    table = pq.read_table(_closed(tmp_path / "m" / "1")[0])
    assert table.column(REQUEST_ID).to_pylist() == [
        "r0",
        "r0",
        "r1",
        "r1",
        "r2",
        "r2",
        "r3",
        "r3",
        "r4",
        "r4",
    ]
    assert table.column("input.a").to_pylist()[:2] == [0.0, 1.0]
    assert table.column("output.prediction").to_pylist()[:2] == [0.0, 1.0]


def test_failed_requests_are_not_logged(tmp_path: Path) -> None:
    logger = PayloadLogger(LogSettings(local_dir=str(tmp_path)), "m")
    _offer(logger, "bad", status=400)
    logger.close()
    assert logger.counters.requests == 0
    assert not (tmp_path / "m").exists()


def test_rotation_by_size_and_at_close(tmp_path: Path) -> None:
    logger = PayloadLogger(LogSettings(local_dir=str(tmp_path), max_bytes=2000), "m")
    for batch in range(4):
        for i in range(10):
            _offer(logger, f"b{batch}-{i}", rows=5)
        logger.flush()
    logger.close()
    files = _closed(tmp_path / "m" / "1")
    assert len(files) >= 2  # the size limit closed files as they grew
    assert logger.counters.files == len(files)
    assert not [p for p in (tmp_path / "m" / "1").iterdir() if p.name.startswith(".")]
    ids = [i for f in files for i in pq.read_table(f).column(REQUEST_ID).to_pylist()]
    assert len(ids) == 4 * 10 * 5 and len(set(ids)) == 40
    for f in files:
        start, end = file_window(f.name) or (0, 0)
        assert start <= end


def test_open_file_is_hidden_until_rotated_by_age(tmp_path: Path) -> None:
    settings = LogSettings(local_dir=str(tmp_path), flush_seconds=0.05, rotate_seconds=0.3)
    logger = PayloadLogger(settings, "m")
    logger.start()
    try:
        _offer(logger, "early")
        directory = tmp_path / "m" / "1"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (directory.exists() and _closed(directory)):
            parts = [p for p in directory.iterdir()] if directory.exists() else []
            assert all(p.name.startswith(".") for p in parts)  # only the open .part file
            time.sleep(0.02)
        files = _closed(directory)
        assert len(files) == 1
        assert pq.read_table(files[0]).column(REQUEST_ID).to_pylist() == ["early", "early"]
    finally:
        logger.close()


def test_columns_that_change_start_a_new_file(tmp_path: Path) -> None:
    logger = PayloadLogger(LogSettings(local_dir=str(tmp_path)), "m")
    _offer(logger, "numbers")
    logger.flush()
    body = json.dumps({"dataframe_records": [{"a": "x", "b": "y"}]}).encode()
    logger.offer(
        "mlflow", "1", "text", body, "application/json", 200, _reply(1), time.perf_counter()
    )
    logger.close()
    files = _closed(tmp_path / "m" / "1")
    assert len(files) == 2
    assert pq.read_table(files[1]).column("input.a").to_pylist() == ["x"]


def test_sampling_by_request_id_is_deterministic() -> None:
    ids = [f"req-{i}" for i in range(2000)]
    kept = [i for i in ids if is_sampled(i, 0.25)]
    assert kept == [i for i in ids if is_sampled(i, 0.25)]
    assert 400 < len(kept) < 600
    assert all(is_sampled(i, 1.0) for i in ids) and not any(is_sampled(i, 0.0) for i in ids)
