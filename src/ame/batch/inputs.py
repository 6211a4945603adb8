"""What to score: the input files, their fingerprint, and a stream of fixed-size chunks.

Chunks are cut by global row number (chunk ``i`` holds rows ``i*N .. i*N+N-1``
of the whole input, across files), never by how a reader happens to block its
reads. That is what makes a resumed run write exactly the parts an
uninterrupted one would: the chunk boundaries depend on the input and
``--chunk-rows`` only.

Memory stays bounded by the chunk size: files are read as streams of record
batches (pyarrow's streaming CSV and JSON readers, Parquet batch iteration) and
at most one chunk plus one reader block is held at a time.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Optional

from ame.batch.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
FORMATS = ("csv", "parquet", "jsonl")
# Reader block: large enough for pyarrow's parsers to be fast, small beside a chunk.
# pyarrow's streaming CSV and JSON readers read up to 32 blocks ahead on their own
# I/O thread, so the block, times 32, is what reading holds on top of the chunks:
# at 1 MiB that was 50 MiB more at 1M rows than at 100k; at 256 KiB, 20 MiB, at
# the same speed (bench/batch.py). A row longer than a block reads again with
# blocks 4x larger, up to MAX_BLOCK_BYTES.
BLOCK_BYTES = 256 << 10
MAX_BLOCK_BYTES = 256 << 20
_FINGERPRINT_BYTES = 1 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputFile:
    """One file of the input, with what identifies its content for ``--resume``.

    A file named by URI (``ame.batch.remote``) keeps its pyarrow filesystem:
    ``path`` is then the path inside it and ``uri`` what is shown and recorded.
    """

    path: Path
    format: str
    size: int
    mtime_ns: int
    uri: Optional[str] = None
    filesystem: Any = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        """The file as the user named it: its local path, or its URI (no credentials)."""
        return self.uri or str(self.path)

    def open_stream(self) -> Any:
        """A binary stream of the file from its start."""
        if self.filesystem is None:
            return self.path.open("rb")
        return self.filesystem.open_input_stream(str(self.path))

    def open_random(self) -> Any:
        """A binary file that seeks (Parquet footers, the fingerprint's last MiB)."""
        if self.filesystem is None:
            return self.path.open("rb")
        return self.filesystem.open_input_file(str(self.path))

    def fingerprint(self) -> dict[str, Any]:
        """Size, modification time and a hash of the first and last MiB.

        Hashing whole inputs of many GiB would cost as much as scoring them;
        size, mtime and both ends catch an appended, truncated, rewritten or
        replaced file.
        """
        digest = hashlib.sha256()
        with self.open_random() as fh:
            digest.update(fh.read(_FINGERPRINT_BYTES))
            if self.size > _FINGERPRINT_BYTES:
                fh.seek(max(_FINGERPRINT_BYTES, self.size - _FINGERPRINT_BYTES))
                digest.update(fh.read(_FINGERPRINT_BYTES))
        return {
            "path": self.name,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "sha256_ends": digest.hexdigest(),
        }


def format_of(path: PurePath, given: Optional[str] = None) -> Optional[str]:
    """The format a file is read as: ``given``, else its suffix; None when unknown."""
    if given is not None:
        return given
    return SUFFIXES.get(path.suffix.lower())


def _stat(path: Path) -> InputFile:
    st = path.stat()
    return InputFile(path=path.resolve(), format="", size=st.st_size, mtime_ns=st.st_mtime_ns)


def resolve_inputs(text: str, input_format: Optional[str] = None) -> list[InputFile]:
    """The files ``text`` names: a file, a directory (its data files, sorted) or a glob.

    ``text`` is a local path or a URI pyarrow reads (``s3://``, ``gs://``,
    ``file://``...; see ``ame.batch.remote``). A directory's files are taken in
    sorted path order, skipping hidden files and those starting with ``_``
    (``_SUCCESS`` and other writers' markers), so the row order, hence the
    output, is the same on every run.
    """
    if input_format is not None and input_format not in FORMATS:
        raise InputError(f"unknown input format '{input_format}'; valid: {', '.join(FORMATS)}")
    from ame.batch import remote

    if remote.is_uri(text):
        filesystem, single, listing, where = remote.list_uri(text)
        entries = [
            (rel, InputFile(path=Path(inner), format="", size=info.size or 0,
                            mtime_ns=info.mtime_ns or 0, uri=uri, filesystem=filesystem))
            for rel, inner, info, uri in listing
        ]  # fmt: skip
        return _choose(single, entries, where, input_format)
    path = Path(text).expanduser()
    if path.is_file():
        return _choose(True, [(PurePath(path.name), _stat(path))], str(path), input_format)
    if path.is_dir():
        candidates = sorted(p for p in path.rglob("*") if p.is_file())
        where = f"directory {path}"
    elif glob.has_magic(text):
        candidates = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
        candidates = [p for p in candidates if p.is_file()]
        where = f"glob {text!r}"
    else:
        raise InputError(f"input {path} does not exist")
    found = [
        (c.relative_to(path) if path.is_dir() else PurePath(c.name), _stat(c)) for c in candidates
    ]
    return _choose(False, found, where, input_format)


def _choose(
    single: bool,
    entries: Sequence[tuple[PurePath, InputFile]],
    where: str,
    input_format: Optional[str],
) -> list[InputFile]:
    """The data files among ``entries`` (relative path, file), each given its format.

    One file named alone must have a format; in a directory or glob, hidden
    and ``_`` files and other formats' files are left out, and one format only.
    """
    if single:
        (rel, only), *_ = entries
        fmt = format_of(rel, input_format)
        if fmt is None:
            raise InputError(
                f"cannot tell the format of {only.name} from its name; give --input-format "
                f"({', '.join(FORMATS)})"
            )
        return [replace(only, format=fmt)]
    files = []
    for rel, candidate in entries:
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        fmt = format_of(rel, input_format)
        if fmt is not None:
            files.append(replace(candidate, format=fmt))
    if not files:
        raise InputError(f"no CSV, Parquet or JSONL files in {where}")
    kinds = sorted({f.format for f in files})
    if len(kinds) > 1:
        raise InputError(f"{where} mixes formats ({', '.join(kinds)}); score one format at a time")
    return files


class _CountingFile:
    """A binary file that counts the bytes read from it, for progress by bytes."""

    def __init__(self, f: InputFile, counter: list[int]) -> None:
        self._fh = f.open_stream()
        self._counter = counter
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._counter[0] += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._fh.close()


class _ReadAgain(Exception):
    """Reading must start again from the top, another way (``why`` says which)."""

    def __init__(self, why: str, message: str) -> None:
        super().__init__(message)
        # "typed": a value did not parse as its type; "block": a row longer than a block;
        # "newlines": a quoted value spans lines across a block boundary.
        self.why = why


_STRADDLING = "straddles two block boundaries"
_NEWLINES = "newlines_in_values"  # pyarrow's advice in its "out of sync with chunker" error


class ChunkReader:
    """Iterate over the input as tables of exactly ``chunk_rows`` rows (the last may be short).

    ``columns`` (when given) are the only ones read from Parquet and CSV: the
    model's and the ids, so a wide file costs only what is scored.
    ``string_columns`` are read from CSV as text, whatever they look like, so that
    a bad value in them reaches the signature check with its row number instead
    of failing a whole reader block; the check converts them. Other CSV
    columns keep the types inferred from the first block of the first file, for
    every later block and file, so the output's schema never changes mid-run.

    ``typed_columns`` (a subset of ``string_columns``, with the type the check
    wants) are first parsed straight to that type: parsing to text and casting
    after cost 40 % more on numeric files. A block with a value that does not
    parse sends the whole read back to text for the rest of the run: reading
    starts again from the top and the rows of chunks already yielded are
    skipped, so the chunks are the same, and the bad value reaches the check
    with its row number. The two ways agree on every value the check accepts
    (it trims whitespace as the CSV parser does), so which one read a chunk
    never shows in the output.
    """

    def __init__(
        self,
        files: list[InputFile],
        chunk_rows: int,
        *,
        string_columns: frozenset[str] = frozenset(),
        typed_columns: Optional[dict[str, pa.DataType]] = None,
        columns: Optional[list[str]] = None,
    ) -> None:
        self.files = files
        self.typed_columns = dict(typed_columns or {})
        self.block_bytes = BLOCK_BYTES
        # Off by default: pyarrow splits blocks at any newline, faster; a quoted
        # value spanning lines across a block boundary turns it on (reading again).
        self.newlines_in_values = False
        self.columns = columns
        self.chunk_rows = chunk_rows
        self.string_columns = string_columns
        self.total_bytes = sum(f.size for f in files) or 1
        self._bytes = [0]
        self.rows_parsed = 0
        self._parquet_rows = 0
        self._parquet_total = 0
        self._fixed_types: Optional[dict[str, pa.DataType]] = None
        self._empty_schema: Optional[pa.Schema] = None

    def fraction_done(self) -> float:
        """How much of the input has been read, 0..1 (bytes; rows for Parquet).

        With ``rows_parsed`` it estimates the rows in all while reading goes on.
        """
        if self.files and self.files[0].format == "parquet":
            return self._parquet_rows / self._parquet_total if self._parquet_total else 1.0
        return min(1.0, self._bytes[0] / self.total_bytes)

    def __iter__(self) -> Iterator[pa.Table]:
        yielded_rows = 0
        while True:
            try:
                for table in self._chunks(skip=yielded_rows):
                    yielded_rows += table.num_rows
                    yield table
                return
            except _ReadAgain as again:
                if again.why == "block":
                    self.block_bytes *= 4
                    log.debug("%s; reading again with %d-byte blocks", again, self.block_bytes)
                elif again.why == "newlines":
                    self.newlines_in_values = True
                    log.debug("%s; reading again, quoted values spanning lines", again)
                else:
                    log.debug("%s; reading the model's columns as text from the top", again)
                    self.typed_columns = {}
                self._bytes[0] = 0
                self.rows_parsed = 0

    def _chunks(self, skip: int) -> Iterator[pa.Table]:
        """Chunks of ``chunk_rows`` rows, the first ``skip`` rows (whole chunks) left out."""
        pending: list[pa.RecordBatch] = []
        have = 0
        yielded = skip > 0
        n = self.chunk_rows
        for batch in self._batches():
            if batch.num_rows == 0:
                continue
            self.rows_parsed += batch.num_rows
            if skip:
                dropped = min(skip, batch.num_rows)
                skip -= dropped
                batch = batch.slice(dropped)
                if batch.num_rows == 0:
                    continue
            pending.append(batch)
            have += batch.num_rows
            while have >= n:
                table = _concat(pending)
                yield table.slice(0, n)
                yielded = True
                rest = table.slice(n)
                pending = rest.to_batches() if rest.num_rows else []
                have = rest.num_rows
        if have:
            yield _concat(pending)
        elif not yielded and self._empty_schema is not None:
            # An empty input still has columns: one empty chunk carries them.
            yield self._empty_schema.empty_table()

    def _present(self, names: list[str]) -> list[str]:
        """The wanted columns this file has, in the file's order (missing ones: all of them).

        A wanted column the file lacks is left for the signature check to
        report, so the projection never hides a mistake.
        """
        if self.columns is None:
            return list(names)
        wanted = set(self.columns)
        return [n for n in names if n in wanted]

    def _batches(self) -> Iterator[pa.RecordBatch]:
        if self.files and self.files[0].format == "parquet":
            import pyarrow as pa

            handles = [_parquet(f) for f in self.files]
            self._parquet_total = sum(h.metadata.num_rows for h in handles)
            for handle in handles:
                columns = self._present(handle.schema_arrow.names)
                if self._empty_schema is None:
                    schema = handle.schema_arrow
                    self._empty_schema = pa.schema([schema.field(c) for c in columns])
                batches = handle.iter_batches(
                    batch_size=min(self.chunk_rows, 65536), columns=columns
                )
                for batch in batches:
                    self._parquet_rows += batch.num_rows
                    yield batch
                handle.close(force=True)  # a URI's file is ours to close too
            return
        for f in self.files:
            yield from self._text_batches(f)

    def _text_batches(self, f: InputFile) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        stream = _CountingFile(f, self._bytes)
        try:
            reader = self._open_text(f, stream)
            if self._empty_schema is None:
                self._empty_schema = reader.schema
            if self._fixed_types is None:
                self._fixed_types = {field.name: field.type for field in reader.schema}
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    self._read_again(f, exc)
                    raise InputError(f"{f.name}: {exc}") from exc
                yield batch
        finally:
            stream.close()

    def _csv_columns(self, f: InputFile) -> Optional[list[str]]:
        if self.columns is None:
            return None
        return self._present(_csv_header(f))

    def _open_text(self, f: InputFile, stream: _CountingFile) -> Any:
        import pyarrow as pa

        try:
            if f.format == "csv":
                from pyarrow import csv

                types = dict(self._fixed_types or {})
                for name in self.string_columns:
                    types[name] = self.typed_columns.get(name, pa.string())
                return csv.open_csv(
                    stream,
                    read_options=csv.ReadOptions(block_size=self.block_bytes, use_threads=True),
                    parse_options=csv.ParseOptions(newlines_in_values=self.newlines_in_values),
                    convert_options=csv.ConvertOptions(
                        column_types=types,
                        strings_can_be_null=True,
                        include_columns=self._csv_columns(f),
                    ),
                )
            from pyarrow import json

            schema = pa.schema(list(self._fixed_types.items())) if self._fixed_types else None
            return json.open_json(
                stream,
                read_options=json.ReadOptions(block_size=self.block_bytes, use_threads=True),
                parse_options=json.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="infer"
                ),
            )
        except pa.ArrowInvalid as exc:
            self._read_again(f, exc)
            raise InputError(f"cannot read {f.name} as {f.format.upper()}: {exc}") from exc
        except OSError as exc:
            raise InputError(f"cannot read {f.name} as {f.format.upper()}: {exc}") from exc

    def _read_again(self, f: InputFile, exc: pa.ArrowInvalid) -> None:
        """Raise ``_ReadAgain`` when another way of reading may get past ``exc``; else return."""
        if _STRADDLING in str(exc):
            if self.block_bytes >= MAX_BLOCK_BYTES:
                raise InputError(
                    f"{f.name}: a row is longer than {MAX_BLOCK_BYTES >> 20} MiB, the most ame "
                    "reads as one row"
                ) from exc
            raise _ReadAgain("block", f"{f.name}: a row is longer than {self.block_bytes} bytes")
        if f.format == "csv" and _NEWLINES in str(exc) and not self.newlines_in_values:
            raise _ReadAgain("newlines", f"{f.name}: a quoted value spans lines")
        if f.format == "csv" and self.typed_columns:
            raise _ReadAgain("typed", f"{f.name}: {exc}")


def _csv_header(f: InputFile) -> list[str]:
    """The column names of a CSV file, from its first line (parsed as CSV)."""
    import csv
    import io

    with io.TextIOWrapper(f.open_stream(), encoding="utf-8", errors="replace", newline="") as fh:
        return next(csv.reader(fh), [])


def _parquet(f: InputFile) -> Any:
    """A ``ParquetFile`` reading ``f`` (by path on this machine: pyarrow's own reads)."""
    import pyarrow.parquet as pq

    source = str(f.path) if f.filesystem is None else f.open_random()
    return pq.ParquetFile(source, pre_buffer=False)


def _concat(batches: list[pa.RecordBatch]) -> pa.Table:
    import pyarrow as pa

    if len(batches) == 1:
        return pa.Table.from_batches(batches)
    try:
        return pa.Table.from_batches(batches).combine_chunks()
    except pa.ArrowInvalid:
        # Files whose schemas differ (a column typed int in one, double in another).
        tables = [pa.Table.from_batches([b]) for b in batches]
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks()


def count_rows(files: list[InputFile]) -> int:
    """Rows in ``files`` (Parquet from its metadata; text formats by reading them)."""
    if files and files[0].format == "parquet":
        total = 0
        for f in files:
            handle = _parquet(f)
            total += handle.metadata.num_rows
            handle.close(force=True)
        return total
    return sum(t.num_rows for t in ChunkReader(files, 1 << 20))


def estimate_rows(files: list[InputFile]) -> Optional[int]:
    """Rows in the input, cheaply: exact for Parquet, from the first MiB's lines for text."""
    if not files:
        return 0
    if files[0].format == "parquet":
        try:
            return count_rows(files)
        except (OSError, ValueError):
            return None
    with files[0].open_stream() as fh:
        sample = fh.read(_FINGERPRINT_BYTES)
    lines = sample.count(b"\n")
    if not sample or not lines:
        return None
    total = sum(f.size for f in files)
    header = 1 if files[0].format == "csv" else 0
    return max(0, round(total * lines / len(sample)) - header * len(files))
