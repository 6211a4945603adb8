"""Chunked AES-256-GCM: the file format's encryption layer.

Each file is cut into chunks of ``chunk_size`` bytes (the last may be shorter;
an empty file is one empty chunk) and each chunk is sealed on its own, so any
file size is encrypted and decrypted in constant memory and any chunk can be
read without the ones before it. A stored chunk is ``ciphertext || tag``
(16-byte GCM tag), so chunk ``i`` of a file starts at ``i * (chunk_size + 16)``.

Nonce (96 bits): ``file_index (4 bytes) || chunk_index (8 bytes)``, big endian.
It is unique within a package, and each package has its own content key (HKDF
with the random package id as salt), so a (key, nonce) pair never repeats.

AAD: ``"ame-package-v1\\0" || package_id (16) || len(path) (2) || path ||
chunk_index (8) || final (1)``. A chunk therefore authenticates only at its own
place: moved to another file (path), another package (package id), another
position (index), or made to look like the end of a truncated file (final
flag), its tag no longer verifies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Optional

from ame.errors import PackageCorruptError

TAG_BYTES = 16
DEFAULT_CHUNK_SIZE = 1 << 20
MIN_CHUNK_SIZE = 4096
MAX_CHUNK_SIZE = 64 << 20
_MAGIC = b"ame-package-v1\0"

Progress = Callable[[int], None]


def chunk_count(size: int, chunk_size: int) -> int:
    """How many chunks a file of ``size`` bytes is cut into (at least one)."""
    return max(1, -(-size // chunk_size))


def stored_size(size: int, chunk_size: int) -> int:
    """The size of a file once encrypted: its bytes plus one tag per chunk."""
    return size + TAG_BYTES * chunk_count(size, chunk_size)


class _Sealer:
    """Nonce and AAD construction for one file, shared by both directions."""

    def __init__(self, content_key: bytes, package_id: bytes, path: str, file_index: int) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        encoded = path.encode("utf-8")
        if len(encoded) > 0xFFFF or not 0 <= file_index < 2**32 or len(package_id) != 16:
            raise ValueError("path, file index or package id out of range")
        self.path = path
        self._aead: Any = AESGCM(content_key)
        self._nonce_prefix = file_index.to_bytes(4, "big")
        self._aad_prefix = _MAGIC + package_id + len(encoded).to_bytes(2, "big") + encoded

    def nonce(self, index: int) -> bytes:
        return self._nonce_prefix + index.to_bytes(8, "big")

    def aad(self, index: int, final: bool) -> bytes:
        return self._aad_prefix + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


class ChunkEncryptor(_Sealer):
    """Seals the chunks of one file."""

    def seal(self, index: int, plaintext: bytes | memoryview, final: bool) -> bytes:
        return bytes(self._aead.encrypt(self.nonce(index), plaintext, self.aad(index, final)))


class ChunkDecryptor(_Sealer):
    """Opens the chunks of one file; a failed tag is a corrupt (or tampered) package."""

    def open(self, index: int, sealed: bytes | memoryview, final: bool) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return bytes(self._aead.decrypt(self.nonce(index), sealed, self.aad(index, final)))
        except InvalidTag:
            raise PackageCorruptError(
                f"package corrupt: file {self.path} failed authentication (chunk {index})"
            ) from None


def encrypt_stream(
    source: BinaryIO,
    size: int,
    chunk_size: int,
    encryptor: Optional[ChunkEncryptor],
    hasher: Any,
    progress: Optional[Progress] = None,
) -> Iterator[bytes]:
    """Yield the stored bytes of a ``size``-byte file read from ``source``, hashing the plaintext.

    With ``encryptor=None`` the bytes are stored as they are (unencrypted
    packages). ``size`` is fixed in advance because the archive header holds the
    stored size; a file that changes while being read is refused.
    """
    count = chunk_count(size, chunk_size)
    # One reusable buffer: no allocation per chunk, and the cipher reads the
    # plaintext straight from it.
    buffer = memoryview(bytearray(chunk_size))
    for index in range(count):
        want = min(chunk_size, size - index * chunk_size)
        view = buffer[:want]
        got = 0
        while got < want:
            n = source.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                raise OSError(f"file changed while being packaged (expected {size} bytes)")
            got += n
        hasher.update(view)
        if encryptor is None:
            yield bytes(view)
        else:
            yield encryptor.seal(index, view, index == count - 1)
        if progress is not None:
            progress(want)
    if source.read(1):
        raise OSError(f"file grew while being packaged (expected {size} bytes)")


def decrypt_span(
    fd: int,
    offset: int,
    size: int,
    chunk_size: int,
    decryptor: Optional[ChunkDecryptor],
    progress: Optional[Progress] = None,
) -> Iterator[bytes]:
    """Yield the plaintext of a stored file of plaintext ``size`` at ``offset`` of ``fd``.

    Reads with ``os.pread``: one chunk in memory at a time, and no shared file
    position, so several files can be read at once from one descriptor.
    """
    import os

    if decryptor is None:
        pos, end = offset, offset + size
        while pos < end:
            data = os.pread(fd, min(chunk_size, end - pos), pos)
            if not data:
                raise PackageCorruptError("package corrupt: a file ends early")
            pos += len(data)
            if progress is not None:
                progress(len(data))
            yield data
        return
    count = chunk_count(size, chunk_size)
    pos = offset
    buffer = memoryview(bytearray(chunk_size + TAG_BYTES))
    for index in range(count):
        want = min(chunk_size, size - index * chunk_size) + TAG_BYTES
        sealed = buffer[:want]
        if os.preadv(fd, [sealed], pos) != want:
            raise PackageCorruptError(
                f"package corrupt: file {decryptor.path} is truncated (chunk {index})"
            )
        pos += want
        plain = decryptor.open(index, sealed, index == count - 1)
        if progress is not None:
            progress(len(plain))
        yield plain
