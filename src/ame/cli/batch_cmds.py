"""``ame predict`` (score a file, directory or glob) and ``ame batch`` (the batchInference section).

Commands only: the scoring lives in ``ame.batch``, imported inside each command
so ``ame --help`` stays quick. Progress goes to stderr, a Rich bar on a
terminal and a plain line every ``--progress-every`` rows when piped; the
summary goes to stdout, as a line or, with ``--json``, as JSON.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ame.cli import common
from ame.cli.common import CpuOnlyOption, FileOption, JsonOption, TrackingUriOption, print_json

if TYPE_CHECKING:
    from ame.batch.scorer import Progress, ScoreOptions

ChunkRowsOption = Annotated[
    int,
    typer.Option("--chunk-rows", min=1, help="Rows per chunk: memory is bounded by this."),
]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        "-w",
        min=1,
        help="Processes predicting chunks (used only when the model is CPU-bound and the "
        "input long enough).",
    ),
]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume", help="Continue an interrupted run of the same input, options and model."
    ),
]
OnErrorOption = Annotated[
    str,
    typer.Option(
        "--on-error",
        help="fail: a row that does not fit the signature stops the run (exit 2); "
        "skip: such rows go to OUTPUT.errors.jsonl and the rest are scored.",
    ),
]
MaxErrorsOption = Annotated[
    Optional[int],
    typer.Option(
        "--max-errors",
        min=0,
        help="With --on-error skip: more refused rows than this fail the run (exit 1).",
        show_default=False,
    ),
]
ProgressEveryOption = Annotated[
    int,
    typer.Option(
        "--progress-every", min=1, help="When not on a terminal: a progress line every N rows."
    ),
]


def _progress(every: int) -> tuple[Progress, Any]:
    """A progress callback and a closer: a Rich bar on a terminal, else periodic lines."""
    if common.err_console.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("[bold cyan]scoring[/bold cyan]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=common.err_console,
            transient=True,
        )
        bar.start()
        task = bar.add_task("score", total=None, rate="")
        clock: dict[str, float] = {}

        def on_bar(rows: int, total: Optional[int]) -> None:
            # The first call comes once the model is loaded: rates leave loading out.
            elapsed = time.perf_counter() - clock.setdefault("started", time.perf_counter())
            rate = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
            bar.update(task, completed=rows, total=total, rate=rate)

        return on_bar, bar.stop

    state: dict[str, float] = {"next": every}

    def on_line(rows: int, total: Optional[int]) -> None:
        state.setdefault("started", time.perf_counter())
        if rows == 0 or (rows < state["next"] and not (total is not None and rows >= total)):
            return
        while state["next"] <= rows:
            state["next"] += every
        elapsed = time.perf_counter() - state["started"]
        rate = rows / elapsed if elapsed > 0 else 0.0
        of = f"/{total:,}" if total else ""
        eta = ""
        if total and rate > 0 and total > rows:
            eta = f", ETA {(total - rows) / rate:.0f}s"
        common.err_console.print(
            f"scored {rows:,}{of} rows, {rate:,.0f} rows/s{eta}", highlight=False
        )

    return on_line, lambda: None


def _options(
    chunk_rows: int,
    id_col: Optional[list[str]],
    input_format: Optional[str],
    output_format: Optional[str],
    on_error: str,
    max_errors: Optional[int],
    workers: int,
    resume: bool,
) -> ScoreOptions:
    from ame.batch.scorer import ScoreOptions

    return ScoreOptions(
        chunk_rows=chunk_rows,
        id_columns=tuple(id_col or ()),
        input_format=input_format,
        output_format=output_format,
        on_error=on_error,
        max_errors=max_errors,
        workers=workers,
        resume=resume,
    )


def _package_key(key_file: Optional[Path], passphrase_env: Optional[str]) -> None:
    """Hand a package's key to this process and its workers the way packages read it."""
    from ame.errors import PackageError
    from ame.packaging.keys import KEY_FILE_ENV, PASSPHRASE_ENV

    if key_file is not None and passphrase_env is not None:
        raise PackageError("give --key-file or --passphrase-env, not both")
    if key_file is not None:
        os.environ[KEY_FILE_ENV] = str(key_file.expanduser().resolve())
    if passphrase_env is not None:
        value = os.environ.get(passphrase_env)
        if not value:
            raise PackageError(
                f"environment variable {passphrase_env} (named by --passphrase-env) is not set"
            )
        os.environ[PASSPHRASE_ENV] = value


def _summary_line(data: dict[str, Any]) -> str:
    line = (
        f"scored {data['input_rows']:,} rows with {data['model']} version {data['version']} "
        f"in {data['seconds']:.1f}s ({data['rows_per_second']:,.0f} rows/s) -> {data['output']}"
    )
    if data.get("errors"):
        line += f"; {data['errors']:,} row(s) refused, see {data['errors_file']}"
    if data.get("resumed_chunks"):
        line += f"; {data['resumed_chunks']} chunk(s) kept from the interrupted run"
    return line


def predict(
    model: Annotated[
        str,
        typer.Argument(
            help="NAME, NAME@ALIAS, NAME/VERSION, models:/..., a model directory, or a "
            "package file.",
        ),
    ],
    input: Annotated[
        str,
        typer.Option(
            "-i",
            "--input",
            help="A CSV, Parquet or JSONL file, a directory or a glob; or a URI pyarrow "
            "reads (s3://, gs://, file://...).",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="The output file (.parquet, .csv or .jsonl)."),
    ],
    id_col: Annotated[
        Optional[list[str]],
        typer.Option(
            "--id-col",
            help="Input column carried to the output (repeat for several); default: the "
            "row index, as 'row'.",
            show_default=False,
        ),
    ] = None,
    chunk_rows: ChunkRowsOption = 65536,
    workers: WorkersOption = 1,
    resume: ResumeOption = False,
    on_error: OnErrorOption = "fail",
    max_errors: MaxErrorsOption = None,
    output_format: Annotated[
        Optional[str],
        typer.Option(
            "--format", help="Output format: parquet, csv or jsonl (default: by extension)."
        ),
    ] = None,
    input_format: Annotated[
        Optional[str],
        typer.Option("--input-format", help="Input format when file names do not tell."),
    ] = None,
    key_file: Annotated[
        Optional[Path],
        typer.Option("--key-file", help="Key of an encrypted package.", show_default=False),
    ] = None,
    passphrase_env: Annotated[
        Optional[str],
        typer.Option(
            "--passphrase-env",
            help="Variable holding an encrypted package's passphrase.",
            show_default=False,
        ),
    ] = None,
    progress_every: ProgressEveryOption = 100_000,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
    backend: Annotated[
        Optional[str],
        typer.Option(
            "--backend",
            help="Where to score: local, or ray (one Ray job running the same scorer; the "
            "node must reach INPUT and OUTPUT). Default: AME_BACKEND, ame.yml, local.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score a file, a directory or a glob with a model, streaming, in resumable chunks.

    Exit codes: 0 scored, 1 the model failed or --max-errors was passed, 2 bad input.

    Example: [bold]ame predict iris@champion -i data/ -o scored.parquet --id-col id[/bold]
    """
    from ame.batch.memory import settle_allocators
    from ame.batch.scorer import score
    from ame.cli.backend_cmds import wants_ray

    options = _options(
        chunk_rows, id_col, input_format, output_format, on_error, max_errors, workers, resume
    )
    if wants_ray(backend, None):
        if key_file is not None or passphrase_env is not None:
            from ame.errors import PackageError

            raise PackageError("encrypted packages are scored locally: drop --backend ray")
        data = _predict_on_ray(model, input, output, options, backend, tracking_uri, progress_every)
        if as_json:
            print_json(data)
        else:
            common.console.print(_summary_line(data), highlight=False, soft_wrap=True)
        return
    _package_key(key_file, passphrase_env)
    settle_allocators()
    on_progress, close = _progress(progress_every)
    try:
        summary = score(
            model, input, output, options, tracking_uri=tracking_uri, on_progress=on_progress
        )
    finally:
        close()
    data = summary.to_dict()
    if as_json:
        print_json(data)
        return
    if summary.workers_note:
        common.err_console.print(f"note: one process: {summary.workers_note}", highlight=False)
    common.console.print(_summary_line(data), highlight=False, soft_wrap=True)


def _predict_on_ray(
    model: str,
    input: str,
    output: Path,
    options: ScoreOptions,
    flag: Optional[str],
    tracking_uri: Optional[str],
    progress_every: int,
) -> dict[str, Any]:
    """``ame predict --backend ray``: the scorer as one Ray job; the same progress and summary."""
    from ame.backends.select import choose_backend, open_backend
    from ame.cli.backend_cmds import announce, load_optional_project
    from ame.registry.store import resolve_store

    project = load_optional_project(None)
    choice = choose_backend(flag or "ray", project)
    announce(choice)
    root = project.root if project else None
    engine: Any = open_backend(choice, root, tracking_uri)
    store = resolve_store(tracking_uri, project_root=root)
    on_progress, close = _progress(progress_every)
    try:
        data: dict[str, Any] = engine.predict(
            model,
            input,
            output,
            options,
            store,
            on_progress=on_progress,
            on_output=lambda line: common.err_console.print(line, highlight=False, markup=False),
        )
    finally:
        close()
    common.err_console.print(f"Ray job {data.get('ray_job_id')}", style="dim", highlight=False)
    return data


def _schedule_note(root: Path, model: str, schedule: str) -> Optional[str]:
    """One line on who runs ``batchInference.schedule``; None when a scheduler does.

    The schedule is never silently ignored: when no ``ame scheduler`` runs for
    the project (or this ame has none), the line says so and that this command
    is the run by hand.
    """
    try:
        from ame.schedule.daemon import running
    except ImportError:
        return (
            f"note: batchInference.schedule '{schedule}' is read, but nothing runs it yet "
            f"(ame has no scheduler); `ame batch {model}` runs it by hand"
        )
    if running(root) is not None:
        return None
    return (
        f"note: batchInference.schedule '{schedule}' runs under `ame scheduler start`, and no "
        f"scheduler is running for this project; `ame batch {model}` runs it by hand"
    )


def _batch_backend(flag: Optional[str], project: Any, tracking_uri: Optional[str]) -> Any:
    """The backend ``ame batch`` runs on: the Ray backend (announced), or None for here.

    The choice is every command's (``--backend``, AME_BACKEND, ame.yml, local).
    On Ray the built-in scorer and the section's task run as Ray jobs; any
    other cluster backend runs the section here, said in one line.
    """
    from ame.backends.select import choose_backend, open_backend
    from ame.cli.backend_cmds import announce

    choice = choose_backend(flag, project)
    if choice.kind == "ray":
        announce(choice)
        return open_backend(choice, project.root, tracking_uri)
    _say_batch_runs_here(choice.kind)
    return None


def _say_batch_runs_here(kind: str) -> None:
    """One line when the backend is a cluster ``ame batch`` does not run on (Kubernetes).

    There a batchInference schedule is a CronJob (``ame render kubernetes``).
    """
    if kind in ("local", "ray"):
        return
    where = {
        "kubernetes": "its schedule runs on the cluster as a CronJob (`ame render kubernetes`)",
    }.get(kind, "")
    common.err_console.print(
        f"note: ame batch runs on this machine, not on the {kind} backend; {where}".rstrip("; "),
        highlight=False,
        markup=False,
    )


def batch(
    model: Annotated[str, typer.Argument(help="The model whose batchInference section to run.")],
    chunk_rows: ChunkRowsOption = 65536,
    workers: WorkersOption = 1,
    resume: ResumeOption = False,
    on_error: OnErrorOption = "fail",
    max_errors: MaxErrorsOption = None,
    progress_every: ProgressEveryOption = 100_000,
    cpu_only: CpuOnlyOption = False,
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
    backend: Annotated[
        Optional[str],
        typer.Option(
            "--backend",
            help="Where to run: local, or ray (the scorer, or the section's task, as a Ray job; "
            "the node must reach the input and output; --workers is the job's CPUs). "
            "Default: AME_BACKEND, ame.yml, local.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run MODEL's batchInference section on its champion: the built-in scorer, or its task.

    The run is tracked in the project's experiment (rows, seconds, version, the output),
    here or on the Ray backend.

    Example: [bold]ame batch iris[/bold]
    """
    from ame.batch.memory import settle_allocators
    from ame.batch_section import run_batch, section_of
    from ame.registry.store import resolve_store
    from ame.spec import load_project

    project = load_project(file)
    store = resolve_store(tracking_uri, project_root=project.root)
    _, section = section_of(project, model)
    engine = _batch_backend(backend, project, tracking_uri)
    if section.schedule:
        note = _schedule_note(project.root, model, str(section.schedule))
        if note:
            common.err_console.print(note, highlight=False, markup=False)
    options = _options(chunk_rows, None, None, None, on_error, max_errors, workers, resume)
    settle_allocators()

    def on_output(line: str) -> None:
        from rich.markup import escape

        common.err_console.print(f"[dim]│[/dim] {escape(line)}", highlight=False, soft_wrap=True)

    on_progress, close = _progress(progress_every)
    try:
        result = run_batch(
            project,
            model,
            store,
            options=options,
            on_output=on_output,
            on_progress=on_progress,
            cpu_only=cpu_only,
            backend=engine,
        )
    finally:
        close()
    data = result.to_dict()
    if result.ray_job_id and not as_json:
        common.err_console.print(f"Ray job {result.ray_job_id}", style="dim", highlight=False)
    if as_json:
        print_json(data)
        return
    if result.note:
        common.err_console.print(f"note: {result.note}", highlight=False, markup=False)
    rows = f"{result.rows:,} rows" if result.rows is not None else "output"
    how = f"task {result.task}" if result.task else "the built-in scorer"
    common.console.print(
        f"{model} version {result.version} ({how}): {rows} -> {result.output} "
        f"in {result.seconds:.1f}s, run {result.run_id}",
        highlight=False,
        soft_wrap=True,
    )
