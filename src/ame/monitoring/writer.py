"""The payload log: sampled requests written to rotated Parquet files, off the request path.

The server calls ``PayloadLogger.offer`` once per answered request. That call
only decides whether the request is sampled and appends the bytes it already
has (request body, response body, timings) to a bounded queue; when the queue
is full the record is dropped and counted, so a slow disk or artifact store
never slows a prediction. A background thread drains the queue every
``flush_seconds``, decodes the bodies into columns (``ame.monitoring.records``)
and appends them, as one row group, to this process's open file for the version.

Files are never shared: each worker process writes its own (host and pid are in
the name), so several workers, or replicas on several machines, need no locking.
A file is written under a hidden ``.part`` name and renamed when closed: after
``max_bytes``, after ``rotate_seconds``, when the columns change, and at
shutdown. Readers only ever see complete files. With a remote store a closed
file is uploaded to the model's artifact location and removed locally.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import shutil
import socket
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ame.monitoring import records
from ame.monitoring.settings import LogSettings

log = logging.getLogger(__name__)

# Meta columns of every row (a request of N rows gives N rows).
TIME = "ame.time"
REQUEST_ID = "ame.request_id"
LATENCY_MS = "ame.latency_ms"
VERSION = "ame.version"
PROTOCOL = "ame.protocol"
ROW = "ame.row"
META = (TIME, REQUEST_ID, LATENCY_MS, VERSION, PROTOCOL, ROW)
# Snappy: cheap to write on the server's writer thread, and about twice as fast
# as zstd for a drift check to read back (measured on 1M rows x 20 columns).
COMPRESSION = "snappy"


def is_sampled(request_id: Optional[str], rate: float) -> bool:
    """Whether a request is logged at sample ``rate``.

    With a request id (``x-request-id``) the choice is a hash of it, so a client
    or a test can tell which requests were kept; without one it is random.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    if request_id:
        return zlib.crc32(request_id.encode()) < rate * 4294967296.0
    return random.random() < rate


@dataclass
class _Pending:
    """One sampled request, as the server had it (decoded later, on the writer thread)."""

    at: float
    latency: float
    request_id: Optional[str]
    version: str
    protocol: str
    body: Any  # bytes; for gRPC the request already decoded (a dict)
    content_type: Optional[str]
    reply: Any  # bytes; for gRPC the ModelInferResponse
    default_output: str


@dataclass
class _OpenFile:
    writer: Any
    path: Path
    schema: Any
    started: float
    seq: int
    rows: int = 0


@dataclass
class Counters:
    """What the log did, for tests and for ``/metrics``; also kept without Prometheus."""

    records: int = 0
    requests: int = 0
    dropped: int = 0
    files: int = 0
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class PayloadLogger:
    """One process's payload log for one served model (all its versions)."""

    def __init__(self, settings: LogSettings, model: str, registry: Any = None) -> None:
        self.settings = settings
        self.model = model
        self.counters = Counters()
        self._queue: collections.deque[_Pending] = collections.deque()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._open: dict[str, _OpenFile] = {}
        self._seq = 0
        self._host = socket.gethostname().replace("/", "_") or "host"
        self._spool: Optional[Path] = None
        self._remote: dict[str, str] = {}
        self._prom = _prometheus(registry) if registry is not None else None

    # --- the request path ----------------------------------------------------

    def offer(
        self,
        protocol: str,
        version: str,
        request_id: Optional[str],
        body: Any,
        content_type: Optional[str],
        status: int,
        reply: Any,
        started: float,
        default_output: str = "predict",
    ) -> None:
        """Queue one answered request if it is sampled; never blocks, never raises.

        ``started`` is the ``time.perf_counter()`` of the request's arrival.
        Only successful answers are logged: a failed request has no prediction
        to compare (errors are counted in ``ame_errors_total``). For gRPC,
        ``body`` is the request as the servicer decoded it and ``reply`` the
        response message: both already exist, nothing is serialized for the log.
        """
        if status != 200 or not is_sampled(request_id, self.settings.sample_rate):
            return
        if len(self._queue) >= self.settings.queue_size:
            self.counters.dropped += 1
            if self._prom is not None:
                self._prom["dropped"].inc()
            return
        self._queue.append(
            _Pending(time.time(), time.perf_counter() - started, request_id, version,
                     protocol, body, content_type, reply, default_output)
        )  # fmt: skip

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (in the process that serves: after any fork)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ame-payload-log", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, close (and upload) every file, stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self._flush(final=True)

    def flush(self) -> None:
        """Write what is queued now, on the caller's thread (tests, shutdown without a thread)."""
        self._flush(final=False)

    # --- the writer thread ---------------------------------------------------

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.settings.flush_seconds)
            self._flush(final=stopping)
            if stopping:
                return

    def _flush(self, final: bool) -> None:
        try:
            self._write_queued()
        except Exception:
            log.exception("payload log: writing failed")
        now = time.time()
        for version, open_file in list(self._open.items()):
            if final or now - open_file.started >= self.settings.rotate_seconds:
                self._close(version)
        if final and self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None

    def _write_queued(self) -> None:
        batches: dict[str, list[_Pending]] = {}
        queue = self._queue
        while queue:
            item = queue.popleft()
            batches.setdefault(item.version, []).append(item)
        for version, items in batches.items():
            try:
                written = self._write(version, items)
            except Exception:
                log.exception("payload log: %d record(s) of version %s lost", len(items), version)
                self._count("errors", len(items))
                continue
            self._count("requests", len(items))
            self._count("records", written)

    def _count(self, what: str, amount: int) -> None:
        setattr(self.counters, what, getattr(self.counters, what) + amount)
        if self._prom is not None and amount:
            self._prom[what].inc(amount)

    def _write(self, version: str, items: list[_Pending]) -> int:
        import pyarrow.parquet as pq

        table = _table(items)
        if table is None:
            return 0
        current = self._open.get(version)
        if current is not None:
            fitted = _fit(table, current.schema)
            if fitted is None:  # the columns changed: start a new file
                self._close(version)
                current = None
            else:
                table = fitted
        if current is None:
            directory = self._directory(version)
            directory.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            start = time.time()
            path = directory / f".{int(start * 1000)}-{self._host}-{os.getpid()}-{self._seq}.part"
            writer = pq.ParquetWriter(str(path), table.schema, compression=COMPRESSION)
            current = _OpenFile(writer, path, table.schema, start, self._seq)
            self._open[version] = current
        current.writer.write_table(table)
        current.rows += table.num_rows
        if current.path.stat().st_size >= self.settings.max_bytes:
            self._close(version)
        return int(table.num_rows)

    def _directory(self, version: str) -> Path:
        if self.settings.local_dir is not None:
            return Path(self.settings.local_dir) / self.model / version
        if self._spool is None:
            self._spool = Path(tempfile.mkdtemp(prefix="ame-payloads-"))
        return self._spool / version

    def _close(self, version: str) -> None:
        open_file = self._open.pop(version, None)
        if open_file is None:
            return
        try:
            open_file.writer.close()
        except Exception:
            log.exception("payload log: could not close %s", open_file.path)
            self._count("errors", open_file.rows)
            return
        start_ms = int(open_file.started * 1000)
        name = f"{start_ms}-{int(time.time() * 1000)}-{self._host}-{os.getpid()}-{open_file.seq}"
        final = open_file.path.with_name(f"{name}.parquet")
        os.replace(open_file.path, final)
        self._count("files", 1)
        if self.settings.local_dir is None:
            self._upload(version, final)

    def _upload(self, version: str, path: Path) -> None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        try:
            uri = self._remote.get(version)
            if uri is None:
                from ame.monitoring.location import remote_base
                from ame.registry.store import resolve_store

                store = resolve_store(self.settings.tracking_uri)
                uri = f"{remote_base(store, self.model)}/{version}"
                self._remote[version] = uri
            repo = get_artifact_repository(uri, tracking_uri=self.settings.tracking_uri)
            repo.log_artifact(str(path))
        except Exception:
            log.exception("payload log: could not upload %s", path.name)
            self._count("errors", 1)
        finally:
            path.unlink(missing_ok=True)


def _table(items: list[_Pending]) -> Any:
    """The rows of ``items`` as one Arrow table (None when no request had rows)."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    meta: dict[str, list[Any]] = {name: [] for name in META}
    total = 0
    for item in items:
        if item.protocol == "v2":
            inputs = records.v2_inputs(item.body)
            outputs = records.v2_outputs(item.reply, item.default_output)
        elif item.protocol == "grpc":
            inputs = records.grpc_inputs(item.body)
            outputs = records.grpc_outputs(item.reply, item.default_output)
        else:
            inputs = records.mlflow_inputs(item.body, item.content_type)
            outputs = records.mlflow_outputs(item.reply)
        if not inputs:
            continue
        rows = len(next(iter(inputs.values())))
        if rows == 0 or any(len(v) != rows for v in inputs.values()):
            continue
        if outputs and any(len(v) != rows for v in outputs.values()):
            outputs = None  # not one prediction per row: keep the inputs only
        request_id = item.request_id or uuid.uuid4().hex
        for prefix, part in (("input.", inputs), ("output.", outputs or {})):
            for name, values in part.items():
                key = prefix + name
                column = columns.get(key)
                if column is None:
                    column = columns[key] = [None] * total
                column.extend(values)
        total += rows
        for column in columns.values():
            if len(column) < total:
                column.extend([None] * (total - len(column)))
        meta[TIME].extend([int(item.at * 1_000_000)] * rows)
        meta[REQUEST_ID].extend([request_id] * rows)
        meta[LATENCY_MS].extend([item.latency * 1000.0] * rows)
        meta[VERSION].extend([item.version] * rows)
        meta[PROTOCOL].extend([item.protocol] * rows)
        meta[ROW].extend(range(rows))
    if total == 0:
        return None
    arrays = {
        TIME: pa.array(meta[TIME], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        REQUEST_ID: pa.array(meta[REQUEST_ID], pa.string()),
        LATENCY_MS: pa.array(meta[LATENCY_MS], pa.float64()),
        VERSION: pa.array(meta[VERSION], pa.string()),
        PROTOCOL: pa.array(meta[PROTOCOL], pa.string()),
        ROW: pa.array(meta[ROW], pa.int32()),
    }
    for name in sorted(columns):
        arrays[name] = _column(columns[name])
    return pa.table(arrays)


def _column(values: list[Any]) -> Any:
    """One logged column, typed: numbers as float64, else strings (nested values as JSON)."""
    import orjson
    import pyarrow as pa

    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is not None:
        kind = array.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return array.cast(pa.float64())
        if pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_null(kind):
            return array
    return pa.array(
        [None if v is None else (v if isinstance(v, str) else orjson.dumps(v).decode())
         for v in values],
        pa.string(),
    )  # fmt: skip


def _fit(table: Any, schema: Any) -> Any:
    """``table`` in the open file's ``schema``, or None when it cannot be (columns changed)."""
    import pyarrow as pa

    if set(table.schema.names) - set(schema.names):
        return None
    arrays = []
    for schema_field in schema:
        if schema_field.name in table.schema.names:
            column = table.column(schema_field.name)
            if column.type != schema_field.type:
                if not pa.types.is_null(column.type):
                    return None
                column = column.cast(schema_field.type)
            arrays.append(column)
        else:
            arrays.append(pa.nulls(table.num_rows, schema_field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _prometheus(registry: Any) -> dict[str, Any]:
    """The payload log's counters in the server's metrics registry (multiprocess-aware)."""
    from prometheus_client import Counter

    def counter(name: str, text: str) -> Any:
        return Counter(name, text, registry=registry)

    return {
        "records": counter("ame_payload_log_records_total", "Rows written to the payload log."),
        "requests": counter(
            "ame_payload_log_requests_total", "Sampled requests written to the payload log."
        ),
        "dropped": counter(
            "ame_payload_log_dropped_total",
            "Sampled requests dropped because the payload log's queue was full.",
        ),
        "files": counter("ame_payload_log_files_total", "Payload log files closed (rotations)."),
        "errors": counter(
            "ame_payload_log_errors_total", "Payload log records or files lost to write errors."
        ),
    }
