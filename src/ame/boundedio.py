"""Reading what comes from outside with limits: JSON nesting, file kind and size.

Every JSON document and every file that ame reads on a user's or a client's
behalf (ame.yml, package manifests, key files, request bodies) passes through
here, so that a hostile or mistaken input gets a clear error instead of a
RecursionError traceback, a hang on a fifo, or gigabytes read from /dev/zero.
No ame imports: any layer may use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Union

import orjson

# orjson refuses documents nested deeper than this (its own fixed limit); the
# standard library's json recurses until Python's stack runs out instead.
MAX_JSON_DEPTH = 1024


class InputLimitError(ValueError):
    """An input broke one of the limits here; the message says which, for a person."""


def loads_json(data: Union[bytes, bytearray, memoryview, str]) -> Any:
    """Parse JSON with nesting bounded by ``MAX_JSON_DEPTH``.

    Raises ``InputLimitError`` (a ``ValueError``) with orjson's reason, which
    names the line and column, for invalid or too deeply nested documents.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if "depth limit" in reason or "recursion" in reason.lower():
            raise InputLimitError(
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels ({reason})"
            ) from None
        raise InputLimitError(f"invalid JSON: {reason}") from None


def describe_kind(path: Path) -> str:
    """What ``path`` is, in words, for errors: 'a directory', 'a fifo', 'a dangling symlink'."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a dangling symlink" if path.is_symlink() else "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def read_regular_file(path: Union[str, Path], max_bytes: int, *, what: str = "file") -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``max_bytes``.

    Opens without blocking (a fifo would otherwise wait for a writer), checks
    the kind of the opened file (not the name, which could change in between)
    and reads at most one byte more than the cap, so a device such as
    /dev/zero costs nothing.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        kind = describe_kind(path)
        raise InputLimitError(f"{what} {path} is {kind}") from None
    except IsADirectoryError:
        raise InputLimitError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise InputLimitError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputLimitError(f"{what} {path} is {describe_kind(path)}, not a regular file")
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputLimitError(f"{what} {path} is larger than the limit of {max_bytes} bytes")
    return data
