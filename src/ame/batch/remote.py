"""Inputs named by URI (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://``), via pyarrow.

A cluster node that does not share this machine's disks still reaches an
object store, so ``ame predict --backend ray -i s3://bucket/exports/`` must
work where a path would not. pyarrow's own filesystems do the talking
(``pyarrow.fs.FileSystem.from_uri``): credentials and endpoints come from
where each filesystem looks (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``,
``~/.aws``, the URI's query: ``s3://b/k?endpoint_override=host:9000&scheme=http``),
nothing of ame's.

A URI names a file, a directory (a prefix: its data files, sorted), or a glob
in its path (``s3://b/exports/2026-*.csv``, matched against the listing of
the part before the first wildcard). What is shown and recorded (progress,
the resume record, the tracked run's ``input``) is the URI without its
credentials or query.
"""

from __future__ import annotations

import fnmatch
import glob
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ame.batch.errors import InputError

SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "az", "hdfs", "viewfs", "file")


def is_uri(text: str) -> bool:
    """True for ``scheme://...`` with a scheme pyarrow may read (not ``C:\\`` or a path)."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def public(uri: str) -> str:
    """``uri`` without user, password or query: safe to print and to record."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def shown(text: str) -> str:
    """An input as it may be printed and recorded: a URI made ``public``, a path as given."""
    return public(text) if is_uri(text) else text


def list_uri(text: str) -> tuple[Any, bool, list[tuple[PurePosixPath, str, Any, str]], str]:
    """The filesystem, whether ``text`` is one file, its entries, and how to name the lot.

    Each entry is (path relative to the listed prefix, path in the filesystem,
    its ``FileInfo``, its URI as shown). Raises ``InputError`` naming the URI
    (without credentials) when the filesystem cannot be reached or nothing is there.
    """
    import pyarrow as pa
    from pyarrow import fs

    shown = public(text)
    base, magic = _split_glob(text)
    try:
        filesystem, root = fs.FileSystem.from_uri(base)
        if magic is None:
            info = filesystem.get_file_info(root)
            if info.type == fs.FileType.File:
                entry = (PurePosixPath(info.base_name), info.path, info, shown)
                return filesystem, True, [entry], shown
            if info.type != fs.FileType.Directory:
                raise InputError(f"input {shown} does not exist")
        listing = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
    except (OSError, pa.ArrowInvalid, ValueError) as exc:
        raise InputError(f"cannot read {shown}: {exc}") from exc
    prefix = public(base).rstrip("/")
    entries = []
    for info in listing:
        if info.type != fs.FileType.File:
            continue
        rel = PurePosixPath(info.path).relative_to(root.rstrip("/") or "/")
        if magic is not None and not _matches(str(rel), magic):
            continue
        # A glob's matches are filtered by their names alone, as on a disk.
        name = PurePosixPath(rel.name) if magic is not None else rel
        entries.append((name, info.path, info, f"{prefix}/{rel}"))
    entries.sort(key=lambda entry: entry[1])
    where = f"glob {shown!r}" if magic is not None else f"directory {shown}"
    return filesystem, False, entries, where


def _split_glob(text: str) -> tuple[str, str | None]:
    """The URI up to the path component with the first wildcard, and the pattern after it."""
    parts = urlsplit(text)
    if not glob.has_magic(parts.path):
        return text, None
    components = parts.path.split("/")
    first = next(i for i, c in enumerate(components) if glob.has_magic(c))
    prefix = "/".join(components[:first]) or "/"
    pattern = "/".join(components[first:])
    return urlunsplit((parts.scheme, parts.netloc, prefix, parts.query, "")), pattern


def _matches(rel: str, pattern: str) -> bool:
    """Glob matching as on a disk: ``*`` stays within one component, ``**`` crosses them."""
    if "**" in pattern:
        return fnmatch.fnmatchcase(rel, pattern.replace("**/", "*").replace("**", "*"))
    names, patterns = rel.split("/"), pattern.split("/")
    return len(names) == len(patterns) and all(
        fnmatch.fnmatchcase(name, part) for name, part in zip(names, patterns, strict=True)
    )
