"""``score``: stream an input through a model into one output, in chunks, resumably.

One process streaming pyarrow batches through ``predict`` into a writer is
the fastest way to score a file on one machine (Ray Data measured 60x slower
for the same model, see docs/batch.md). So the core is a plain loop: read a
chunk, check it against the signature, predict, write the chunk's part, note
it done. ``workers > 1`` spreads the predict step over processes (each loads
the model once) only when the model is CPU-bound, the machine has the CPUs and
the input has chunks enough to keep them busy; otherwise the loop runs alone
and the summary says why.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.batch.errors import (
    BatchError,
    InputError,
    PredictionFailedError,
    SchemaMismatchError,
    TooManyErrorsError,
)
from ame.batch.inputs import ChunkReader, InputFile, estimate_rows, resolve_inputs
from ame.batch.model import BatchModel, load_for_worker, load_model
from ame.batch.outputs import errors_path, output_format, output_table, write_final, write_part
from ame.batch.parts import ChunkRecord, PartStore
from ame.batch.prefetch import prefetched
from ame.batch.signature import Conformed, Conformer, input_schema
from ame.errors import AmeError

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 65536
ON_ERROR = ("fail", "skip")

# rows read so far (resumed chunks included), estimated rows in all
Progress = Callable[[int, Optional[int]], None]


@dataclass(frozen=True)
class ScoreOptions:
    """How to score. Only ``content()`` decides the output; the rest is how fast or how strict."""

    chunk_rows: int = DEFAULT_CHUNK_ROWS
    id_columns: tuple[str, ...] = ()
    input_format: Optional[str] = None
    output_format: Optional[str] = None
    on_error: str = "fail"
    max_errors: Optional[int] = None
    workers: int = 1
    resume: bool = False

    def content(self, fmt: str) -> dict[str, Any]:
        """The options a resumed run must share with the interrupted one."""
        return {
            "chunk_rows": self.chunk_rows,
            "id_columns": list(self.id_columns),
            "input_format": self.input_format,
            "output_format": fmt,
            "on_error": self.on_error,
        }


@dataclass
class ScoreSummary:
    """What a run did: for ``--json``, the tracked run, and tests."""

    rows: int
    errors: int
    seconds: float  # the whole run, loading the model included
    output: str
    model: str
    version: str
    input_rows: int
    chunks: int
    resumed_chunks: int = 0
    workers: int = 1
    workers_note: str = ""
    errors_file: Optional[str] = None
    files: list[str] = field(default_factory=list)
    load_seconds: float = 0.0  # resolving and loading the model

    @property
    def scoring_seconds(self) -> float:
        """Reading, predicting and writing: the run without loading the model."""
        return max(0.0, self.seconds - self.load_seconds)

    @property
    def rows_per_second(self) -> float:
        """Input rows per second of scoring (model loading left out)."""
        seconds = self.scoring_seconds
        return self.input_rows / seconds if seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows_per_second"] = round(self.rows_per_second, 1)
        data["seconds"] = round(self.seconds, 3)
        data["load_seconds"] = round(self.load_seconds, 3)
        data["scoring_seconds"] = round(self.scoring_seconds, 3)
        return data


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


# Chunks scored in this process before deciding whether workers pay: the first
# one's wait on the reader is its start-up, so two more are timed.
PROBE_CHUNKS = 3
# The scorer waiting on the reader more than this share of its time: reading is
# the bottleneck, and processes that predict faster would only wait longer.
READER_BOUND = 0.25


def plan_workers(
    requested: int, model: BatchModel, estimated_rows: Optional[int], chunk_rows: int
) -> tuple[int, str]:
    """How many processes may be used, before any chunk is scored; why not more.

    ``pays`` decides after the first chunks whether that many really are used.
    """
    if requested <= 1:
        return 1, ""
    if model.is_llm:
        return 1, "a chat model waits on its endpoint; its requests are already concurrent"
    cpus = usable_cpus()
    if cpus < 2:
        return 1, "this machine gives the process one CPU"
    n = min(requested, cpus)
    chunks = -(-estimated_rows // chunk_rows) if estimated_rows is not None else None
    if chunks is not None and chunks < 2 * n:
        return 1, (
            f"about {chunks} chunk(s) to score: starting {n} processes, each loading the "
            "model, would cost more than it saves"
        )
    note = f"{cpus} CPU(s) usable, so {n} worker(s)" if n < requested else ""
    return n, note


@dataclass(frozen=True)
class Probe:
    """How the first chunks went in this process: time scoring, time waiting on the reader."""

    chunks: int
    scoring: float
    waiting: float


def pays(n: int, probe: Probe, load_seconds: float, chunks_left: Optional[int]) -> tuple[int, str]:
    """``n`` workers, or 1 with the reason, from the first chunks' timing.

    Workers only share out the scoring; the reading stays in this process. So
    they pay when the scorer, not the reader, is what takes the time, and when
    the scoring left, split ``n`` ways, saves more than the workers' start-up
    (each loads the model: about ``load_seconds``, in parallel).
    """
    if probe.chunks == 0 or probe.scoring <= 0:
        return 1, "nothing left to score after the first chunks"
    if probe.waiting > READER_BOUND * probe.scoring:
        share = probe.waiting / (probe.waiting + probe.scoring)
        return 1, (
            f"reading the input is the bottleneck (the scorer waited on it {share:.0%} of the "
            "time): processes that predict faster would only wait longer"
        )
    if chunks_left is not None:
        per_chunk = probe.scoring / probe.chunks
        saved = chunks_left * per_chunk * (1 - 1 / n)
        if saved < 1.5 * load_seconds:
            return 1, (
                f"about {chunks_left} chunk(s) left at {per_chunk:.2f}s each: {n} processes "
                f"would save {saved:.1f}s, less than their start-up (~{load_seconds:.1f}s)"
            )
    return n, ""


def score(
    model: str | BatchModel,
    input: str,
    output: str | Path,
    options: ScoreOptions = ScoreOptions(),
    *,
    tracking_uri: Optional[str] = None,
    on_progress: Optional[Progress] = None,
) -> ScoreSummary:
    """Score ``input`` (a file, directory or glob) with ``model`` into ``output``.

    Raises ``SchemaMismatchError`` (exit 2) for input that does not fit the
    signature under ``on_error="fail"``, ``ResumeRefusedError`` when ``resume``
    does not match the interrupted run, ``TooManyErrorsError`` (exit 1) past
    ``max_errors`` skipped rows. An interrupted or failed run leaves its parts
    for ``resume``; the output is only ever replaced whole.
    """
    started = time.perf_counter()
    _check_options(options)
    files = resolve_inputs(input, options.input_format)
    out = Path(output).expanduser().resolve()
    if any(f.filesystem is None and f.path == out for f in files):
        raise BatchError(f"the output {out} is also an input file")
    if out.is_dir():
        raise BatchError(f"the output {out} is a directory; give a file name")
    fmt = output_format(out, options.output_format)
    loaded = model if isinstance(model, BatchModel) else load_model(model, tracking_uri)
    load_seconds = time.perf_counter() - started
    conformer = Conformer(input_schema(loaded.predictor), options.id_columns)
    identity = {
        "model": loaded.identity,
        "inputs": [f.fingerprint() for f in files],
        "options": options.content(fmt),
    }
    store = PartStore(out)
    from filelock import FileLock, Timeout

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create the output's directory {out.parent}: {exc}") from exc

    lock = FileLock(str(out.parent / f".{out.name}.ame-lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise BatchError(f"another run is writing {out} (lock {lock.lock_file})") from exc
    try:
        done = store.open(identity, options.resume)
        estimated = estimate_rows(files)
        workers, note = plan_workers(options.workers, loaded, estimated, options.chunk_rows)
        run = _Run(loaded, conformer, options, store, done, estimated, on_progress)
        try:
            reader = ChunkReader(
                files,
                options.chunk_rows,
                string_columns=conformer.string_columns(),
                typed_columns=conformer.parse_types(),
                columns=conformer.wanted_columns(),
            )
            chunks = run.chunks_of(reader)
            if workers > 1:
                probe = run.inline(chunks, limit=PROBE_CHUNKS)
                workers, note = pays(workers, probe, load_seconds, run.chunks_left())
                log.debug("after %s: %d worker(s) %s", probe, workers, note)
            if workers > 1:
                run.pooled(chunks, workers)
            else:
                run.inline(chunks)
            parts = [store.part(i) for i in range(run.chunks)]
            written = write_final(parts, out, fmt, run.empty_schema())
            errors_file = (
                _merge_errors(store, run.chunks, out) if options.on_error == "skip" else None
            )
        except (SchemaMismatchError, InputError):
            store.remove()  # the input must change; nothing here can be resumed
            raise
        store.remove()
    finally:
        store.close()
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)
    return ScoreSummary(
        rows=written,
        errors=run.errors,
        seconds=time.perf_counter() - started,
        load_seconds=load_seconds,
        output=str(out),
        model=loaded.name,
        version=loaded.version,
        input_rows=run.input_rows,
        chunks=run.chunks,
        resumed_chunks=len(done),
        workers=workers,
        workers_note=note,
        errors_file=errors_file,
        files=[f.name for f in files],
    )


def _check_options(options: ScoreOptions) -> None:
    if options.on_error not in ON_ERROR:
        raise BatchError(
            f"--on-error must be one of {', '.join(ON_ERROR)}, not {options.on_error!r}"
        )
    if options.chunk_rows < 1:
        raise BatchError("--chunk-rows must be at least 1")
    if options.max_errors is not None and options.on_error != "skip":
        raise BatchError("--max-errors goes with --on-error skip")
    if len(set(options.id_columns)) != len(options.id_columns):
        raise BatchError("an id column is given twice")


class _Run:
    """The state of one run's loop: counters, the record, the progress callback."""

    def __init__(
        self,
        model: BatchModel,
        conformer: Conformer,
        options: ScoreOptions,
        store: PartStore,
        done: dict[int, ChunkRecord],
        estimated: Optional[int],
        on_progress: Optional[Progress],
    ) -> None:
        self.model = model
        self.conformer = conformer
        self.options = options
        self.store = store
        self.done = done
        self.estimated = estimated
        self.on_progress = on_progress
        self.chunks = 0
        self.input_rows = 0
        self.errors = 0
        self.rows_read = 0
        self._schema: Optional[pa.Schema] = None
        self._reader: Optional[ChunkReader] = None

    def empty_schema(self) -> pa.Schema:
        import pyarrow as pa

        ids = [f for f in (self._schema or pa.schema([])) if f.name in self.options.id_columns]
        return pa.schema(ids) if self.options.id_columns else pa.schema([("row", pa.int64())])

    def chunks_of(self, reader: ChunkReader) -> Iterator[tuple[int, int, pa.Table]]:
        """(index, first row, chunk) for the chunks still to do; counts the ones already done.

        One iterator for the whole run: the first chunks may be scored here and
        the rest by workers, each chunk read once.
        """
        self._reader = reader
        if self.on_progress is not None:
            self.on_progress(0, self.estimated)  # the model is loaded: scoring starts now
        first_row = 0
        for index, chunk in enumerate(prefetched(reader)):
            if index == 0:
                self._schema = chunk.schema
                missing = [c for c in self.options.id_columns if c not in chunk.column_names]
                if missing:
                    raise InputError(
                        f"id column(s) {', '.join(missing)} not in the input "
                        f"(columns: {', '.join(chunk.column_names)})"
                    )
            self.chunks = index + 1
            rows = chunk.num_rows
            self.rows_read += rows
            if index in self.done:
                self._count(self.done[index], rows)
            else:
                yield index, first_row, chunk
            first_row += rows

    def _count(self, record: ChunkRecord, rows: int) -> None:
        self.input_rows += rows
        self.errors += record.errors
        max_errors = self.options.max_errors
        if max_errors is not None and self.errors > max_errors:
            raise TooManyErrorsError(
                f"{self.errors} rows refused, more than --max-errors {max_errors} (the rows "
                f"refused so far, with reasons: {self.store.dir}/errors-*.jsonl; --resume with a "
                "higher --max-errors goes on from here)"
            )
        if self.on_progress is not None:
            self.on_progress(self.input_rows, self._total())

    def _total(self) -> Optional[int]:
        """The rows in all: rows parsed over the fraction of the input read; early, a guess."""
        reader = self._reader
        fraction = reader.fraction_done() if reader is not None else 0.0
        if reader is None or fraction <= 0.05:
            return max(self.input_rows, self.estimated) if self.estimated is not None else None
        return max(self.input_rows, round(reader.rows_parsed / fraction))

    def chunks_left(self) -> Optional[int]:
        """Chunks still to read, from the estimate of the rows in all (None: unknown)."""
        total = self._total()
        if total is None:
            return None
        return max(0, -(-(total - self.rows_read) // self.options.chunk_rows))

    def inline(
        self, chunks: Iterator[tuple[int, int, pa.Table]], limit: Optional[int] = None
    ) -> Probe:
        """Score ``chunks`` in this process (the first ``limit`` only, when given), timed."""
        predictor = self.model.predictor
        scored = 0
        scoring = waiting = 0.0
        while limit is None or scored < limit:
            asked = time.perf_counter()
            item = next(chunks, None)
            if item is None:
                break
            index, first_row, chunk = item
            started = time.perf_counter()
            if scored:  # the first wait is the reader's start-up, not its pace
                waiting += started - asked
            record = process_chunk(
                predictor, self.conformer, chunk, index, first_row, self.options, self.store
            )
            self.store.finish_chunk(record)
            self._count(record, chunk.num_rows)
            if scored:
                scoring += time.perf_counter() - started
            scored += 1
        return Probe(chunks=max(0, scored - 1), scoring=scoring, waiting=waiting)

    def pooled(self, chunks: Iterator[tuple[int, int, pa.Table]], workers: int) -> None:
        """The same loop with ``predict`` in ``workers`` processes, at most 2 chunks each in flight.

        Processes are spawned, not forked: the parent holds MLflow's threads and
        the reader's, which a fork would copy mid-flight.
        """
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        spec = self.model.worker_spec()
        failures: list[tuple[int, BaseException]] = []
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_worker_init,
            initargs=(spec, self.options.id_columns),
        ) as pool:
            running: dict[Future[ChunkRecord], int] = {}

            def collect(block: bool) -> None:
                if not running:
                    return
                finished, _ = wait(
                    list(running), timeout=None if block else 0, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    rows = running.pop(future)
                    try:
                        record = future.result()
                    except BaseException as exc:
                        failures.append((rows, exc))
                        continue
                    self.store.finish_chunk(record)
                    self._count(record, rows)

            for index, first_row, chunk in chunks:
                while len(running) >= 2 * workers:
                    collect(block=True)
                if failures:
                    break
                future = pool.submit(
                    _worker_chunk, index, first_row, _to_ipc(chunk), self.options, self.store.output
                )
                running[future] = chunk.num_rows
                collect(block=False)
            while running:
                collect(block=True)
        if failures:
            # The error of the earliest failing chunk, whatever order workers finished in.
            raise min(failures, key=lambda f: getattr(f[1], "first_row", 0))[1]


def process_chunk(
    predictor: Any,
    conformer: Conformer,
    chunk: pa.Table,
    index: int,
    first_row: int,
    options: ScoreOptions,
    store: PartStore,
) -> ChunkRecord:
    """Check, predict and write one chunk; returns its record (not yet noted as done)."""
    conformed = conformer.conform(chunk, first_row)
    if conformed.errors and options.on_error == "fail":
        error = conformed.errors[0]
        exc = SchemaMismatchError(
            f"row {error.row}{_ids(chunk, error.row - first_row, options.id_columns)}: "
            f"column '{error.column}': {error.reason}"
        )
        exc.first_row = error.row  # type: ignore[attr-defined]
        raise exc
    prediction = (
        _predict(predictor, conformed, first_row, chunk.num_rows) if conformed.rows else None
    )
    if prediction is None:
        table = _ids_only(chunk, conformed, first_row, options.id_columns)
    else:
        table = output_table(chunk, conformed, prediction, first_row, options.id_columns)
    if conformed.errors:
        _write_errors(store.errors(index), chunk, conformed, first_row, options.id_columns)
    write_part(table, store.part(index))
    return ChunkRecord(index=index, rows=table.num_rows, errors=len(conformed.errors))


def _predict(predictor: Any, conformed: Conformed, first_row: int, rows: int) -> Any:
    try:
        return predictor.predict(conformed.data)
    except AmeError:
        raise
    except Exception as exc:  # the model's own code: any exception, reported with its rows
        where = f"rows {first_row}..{first_row + rows - 1}"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if type(exc).__name__ == "MlflowException" and "schema" in str(exc).lower():
            raise SchemaMismatchError(
                f"{where}: the model's signature refused them: {text}"
            ) from exc
        raise PredictionFailedError(
            f"the model failed on {where}: {type(exc).__name__}: {text}"
        ) from exc


def _ids(chunk: pa.Table, offset: int, id_columns: tuple[str, ...]) -> str:
    if not id_columns:
        return ""
    values = ", ".join(f"{c}={chunk.column(c)[offset].as_py()!r}" for c in id_columns)
    return f" ({values})"


def _ids_only(
    chunk: pa.Table, conformed: Conformed, first_row: int, id_columns: tuple[str, ...]
) -> pa.Table:
    """The output of a chunk with no row left to predict (an empty input, all rows refused)."""
    import numpy as np
    import pyarrow as pa

    keep = pa.array(conformed.keep) if conformed.keep is not None else None
    if id_columns:
        ids = chunk.select(list(id_columns))
        return ids.filter(keep) if keep is not None else ids
    index = np.arange(first_row, first_row + chunk.num_rows, dtype=np.int64)
    kept = index[conformed.keep] if conformed.keep is not None else index
    return pa.table({"row": pa.array(kept, pa.int64())})


def _write_errors(
    path: Path, chunk: pa.Table, conformed: Conformed, first_row: int, id_columns: tuple[str, ...]
) -> None:
    lines = []
    for error in conformed.errors:
        item: dict[str, Any] = {"row": error.row}
        for column in id_columns:
            item[column] = chunk.column(column)[error.row - first_row].as_py()
        item["column"] = error.column
        item["reason"] = error.reason
        lines.append(json.dumps(item, default=str))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _merge_errors(store: PartStore, chunks: int, output: Path) -> Optional[str]:
    """Concatenate the chunks' refused rows into ``<output>.errors.jsonl`` (atomically)."""
    target = errors_path(output)
    pieces = [store.errors(i) for i in range(chunks) if store.errors(i).is_file()]
    if not pieces:
        target.unlink(missing_ok=True)  # an earlier run's errors do not belong to this output
        return None
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as fh:
        for piece in pieces:
            fh.write(piece.read_bytes())
    os.replace(tmp, target)
    return str(target)


# --- worker processes ---------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(spec: dict[str, str], id_columns: tuple[str, ...]) -> None:
    from ame import _logging
    from ame.batch.memory import settle_allocators

    _logging.configure(verbose=False, debug=False)
    settle_allocators()
    predictor = load_for_worker(spec)
    _WORKER["predictor"] = predictor
    _WORKER["conformer"] = Conformer(input_schema(predictor), id_columns)


def _worker_chunk(
    index: int, first_row: int, data: bytes, options: ScoreOptions, output: Path
) -> ChunkRecord:
    import pyarrow as pa

    chunk = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    return process_chunk(
        _WORKER["predictor"],
        _WORKER["conformer"],
        chunk,
        index,
        first_row,
        options,
        PartStore(output),
    )


def _to_ipc(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def describe_input(files: list[InputFile]) -> str:
    """A short description of the input for progress lines."""
    if len(files) == 1:
        return files[0].name
    return f"{len(files)} {files[0].format.upper()} files"
