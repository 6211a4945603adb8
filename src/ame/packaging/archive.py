"""The container: an uncompressed POSIX tar file, written and read by offset.

Why tar and not zip: both give random access here (tar members are contiguous
at known offsets once the few 512-byte headers are read; chunk ``i`` of a file
sits at a computable offset), but zip's format requires a CRC-32 of every
member, computed over every byte on write and (by ``zipfile``) on read. That
would cost about a third of AES-GCM's time on top of the encryption while
adding nothing: GCM tags already authenticate each byte. Tar also writes in one
forward pass with no seeking back (the stored size of an encrypted file is
known before it is encrypted), so a package can be written to a pipe, and
``tar tvf`` lists it anywhere.

Only regular-file members are accepted when reading; links, devices and
directories are refused, and nothing is ever extracted by ``tarfile`` itself:
ame reads member bytes by offset and writes them where the manifest says, after
checking the path.
"""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from ame.errors import PackageCorruptError

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


class TarWriter:
    """Writes members from byte iterables, streaming, with sizes declared up front."""

    def __init__(self, fileobj: BinaryIO, mtime: int | None = None) -> None:
        self._out = fileobj
        self._written = 0
        self._mtime = int(time.time()) if mtime is None else mtime

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def add(self, name: str, size: int, chunks: Iterable[bytes]) -> None:
        """Add a regular file of exactly ``size`` bytes taken from ``chunks``."""
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = self._mtime
        info.type = tarfile.REGTYPE
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict"))
        done = 0
        for chunk in chunks:
            done += len(chunk)
            if done > size:
                raise OSError(f"member {name} is larger than declared ({size} bytes)")
            self._write(chunk)
        if done != size:
            raise OSError(f"member {name} is {done} bytes, declared {size}")
        remainder = size % BLOCK
        if remainder:
            self._write(b"\0" * (BLOCK - remainder))

    def close(self) -> None:
        """Write the end-of-archive marker and pad to a whole record, like ``tar`` does."""
        self._write(b"\0" * (2 * BLOCK))
        remainder = self._written % RECORD
        if remainder:
            self._write(b"\0" * (RECORD - remainder))


@dataclass(frozen=True)
class Member:
    """Where a member's bytes are in the archive."""

    name: str
    offset: int
    size: int


def read_index(path: str) -> dict[str, Member]:
    """Read the member headers of the archive at ``path`` (no member data is read)."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            infos = tar.getmembers()
            end = tar.offset
        # tarfile stops quietly at a damaged or missing header; a complete
        # archive ends with two zero blocks, so their absence means truncation.
        if os.path.getsize(path) < end + 2 * BLOCK:
            raise tarfile.ReadError("the end-of-archive marker is missing")
    except FileNotFoundError:
        raise
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise PackageCorruptError(
            f"package corrupt: {path} is not a readable package archive ({exc})"
        ) from exc
    index: dict[str, Member] = {}
    for info in infos:
        if not info.isreg():
            raise PackageCorruptError(
                f"package refused: member '{info.name}' is not a regular file"
            )
        if info.name in index:
            raise PackageCorruptError(f"package refused: member '{info.name}' appears twice")
        index[info.name] = Member(info.name, info.offset_data, info.size)
    return index


def read_member(fd: int, member: Member, limit: int) -> bytes:
    """Read a whole (small) member, refusing one larger than ``limit``."""
    if member.size > limit:
        raise PackageCorruptError(f"package corrupt: {member.name} is implausibly large")
    data = os.pread(fd, member.size, member.offset)
    if len(data) != member.size:
        raise PackageCorruptError(f"package corrupt: {member.name} is truncated")
    return data
